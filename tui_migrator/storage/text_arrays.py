"""A batch's column of text values, as PostgreSQL's driver is to send it."""

from __future__ import annotations


class TextArray(list[str | None]):
    """Text values (or None) that psycopg sends as one binary ``text[]`` parameter (see
    postgresql_values.send_text_arrays_in_binary): each value's bytes as they are. A plain
    list of strings goes as the text form of an array, which the driver writes, escaping every
    element, in Python, and the server parses again."""
