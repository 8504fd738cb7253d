"""A batch's text[] parameters: the split form (values cut apart at a delimiter no value holds,
NULL a marker no value is) read back exactly as the server reads it, the literal form where no
pair of characters is free; the literal escaped as PostgreSQL's array reader wants it, its quick
form (no value needing an escape) the same text as the general one. The server's reading of both
is tested on PostgreSQL (tests/storage/test_postgresql_batch_statements.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tui_migrator.storage.text_arrays import text_array_literal, text_array_text


def escaped_one_by_one(values: list[str | None]) -> str:
    """Every element on its own, as the array reader's rules say: NULL bare, text quoted, a
    quote or backslash inside preceded by a backslash."""
    elements = []
    for value in values:
        if value is None:
            elements.append("NULL")
            continue
        escaped = "".join("\\" + character if character in '"\\' else character for character in value)
        elements.append(f'"{escaped}"')
    return "{" + ",".join(elements) + "}"


TEXT = st.text(max_size=20) | st.sampled_from(['"', "\\", "NULL", "", "{}", "a,b", " "])
CONTROL_CHARACTERS = [chr(code) for code in (*range(1, 0x20), 0x7F)]
# Text holding the delimiter and marker tried first, and other control characters.
AWKWARD_TEXT = TEXT | st.text(st.sampled_from([*CONTROL_CHARACTERS, "a", "{"]), max_size=6)


def read_as_the_server_does(parameter: str) -> list[str | None]:
    """TEXT_ARRAY_SQL's split branch, step by step as PostgreSQL runs it: string_to_array(what
    follows the marker, the delimiter, the marker), then the array without its first element."""
    assert not parameter.startswith("{"), "a literal, read by the server's array reader"
    delimiter, null, rest = parameter[0], parameter[1], parameter[2:]
    pieces = rest.split(delimiter) if rest else []
    return [None if piece == null else piece for piece in pieces][1:]


@given(values=st.lists(st.none() | TEXT, max_size=20))
def test_any_values_are_written_as_the_rules_say(values: list[str | None]) -> None:
    assert text_array_literal(values) == escaped_one_by_one(values)


@given(
    values=st.lists(st.text(st.characters(exclude_characters='"\\'), max_size=20), min_size=1, max_size=20)
)
def test_values_needing_no_escape_take_the_quick_form_to_the_same_text(values: list[str]) -> None:
    assert text_array_literal(values) == escaped_one_by_one(values)  # type: ignore[arg-type]


def test_no_values_are_an_empty_array_and_a_lone_null_is_bare() -> None:
    assert text_array_literal([]) == "{}"
    assert text_array_literal([None]) == "{NULL}"
    assert text_array_literal([""]) == '{""}'
    assert text_array_literal(["NULL"]) == '{"NULL"}'


def test_a_value_that_is_not_text_is_refused_by_its_type_without_its_value() -> None:
    with pytest.raises(TypeError, match="not bytes") as refused:
        text_array_literal(["a", None, b"secret-7731"])  # type: ignore[list-item]
    assert "secret-7731" not in str(refused.value)
    with pytest.raises(TypeError, match="not int"):
        text_array_literal(["a", 7731])  # type: ignore[list-item]


@given(values=st.lists(st.none() | AWKWARD_TEXT, min_size=1, max_size=20))
def test_any_values_come_back_exactly_from_the_split_form(values: list[str | None]) -> None:
    parameter = text_array_text(values)
    assert read_as_the_server_does(parameter) == values


def test_the_split_form_tells_one_empty_value_and_one_null_from_none() -> None:
    assert read_as_the_server_does(text_array_text([""])) == [""]
    assert read_as_the_server_does(text_array_text([None])) == [None]
    assert read_as_the_server_does(text_array_text(["", None, ""])) == ["", None, ""]
    assert text_array_text([]) == "{}"


def test_tokens_and_nulls_take_the_first_pair_of_control_characters() -> None:
    parameter = text_array_text(["tmenc:v1:k1:AAAA", None, "NULL", '{"a": "b\\"}'])
    assert parameter == "\x1f\x1e" + "\x1ftmenc:v1:k1:AAAA\x1f\x1e\x1fNULL\x1f" + '{"a": "b\\"}'


def test_a_value_holding_the_delimiter_or_the_marker_moves_the_split_to_free_characters() -> None:
    for values in (["a\x1fb", None], ["\x1e", None, "c"], ["\x1f\x1e\x1d", None]):
        parameter = text_array_text(values)
        assert parameter[:2] not in ("\x1f\x1e",)
        assert not set(parameter[:2]) & set("".join(value or "" for value in values))
        assert read_as_the_server_does(parameter) == values


def test_values_holding_every_control_character_take_the_literal_form() -> None:
    values = ["".join(CONTROL_CHARACTERS), None, "x"]
    assert text_array_text(values) == text_array_literal(values) == escaped_one_by_one(values)


def test_one_free_control_character_is_not_enough_for_a_split() -> None:
    # A delimiter and a marker: two characters, both free.
    values = ["".join(character for character in CONTROL_CHARACTERS if character != "\x01"), None]
    assert text_array_text(values) == text_array_literal(values)


def test_the_split_form_refuses_what_is_not_text_by_its_type_without_its_value() -> None:
    with pytest.raises(TypeError, match="not bytes") as refused:
        text_array_text(["a", None, b"secret-7731"])  # type: ignore[list-item]
    assert "secret-7731" not in str(refused.value)
    with pytest.raises(TypeError, match="not int"):
        text_array_text(["a", 7731])  # type: ignore[list-item]
