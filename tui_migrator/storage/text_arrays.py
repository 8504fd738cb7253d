"""PostgreSQL's text form of a ``text[]`` value: how a batch's column of text reaches the server.

A batch's values travel as one ``text[]`` parameter per column (database.text_rows), written
here as the array's text, which the server reads as it reads any array literal. Each element is
double-quoted, so it is taken exactly as written — braces, commas, spaces, the word NULL, any
character PostgreSQL's text can hold — once a double quote or a backslash inside it is escaped
by a backslash; a NULL is the bare word. Where no value holds either character (tokens, digests,
row versions, base64: nearly every batch) the whole array is a few joins done in C.
"""

from __future__ import annotations

from collections.abc import Sequence


def text_array_literal(values: Sequence[str | None]) -> str:
    """``values`` (text, or None for NULL) as the text of a PostgreSQL ``text[]``."""
    if not values:
        return "{}"
    try:
        joined = "".join(values)  # type: ignore[arg-type]  # a None raises: the general form
    except TypeError:
        return "{" + ",".join(_element(value) for value in values) + "}"
    if '"' in joined or "\\" in joined:
        return "{" + ",".join(_element(value) for value in values) + "}"
    return '{"' + '","'.join(values) + '"}'  # type: ignore[arg-type]  # all text: joined above


def _element(value: str | None) -> str:
    if value is None:
        return "NULL"
    if not isinstance(value, str):
        # Named by its type only: the values are patients' data and their tokens.
        raise TypeError(f"a text array holds text or None, not {type(value).__name__}")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
