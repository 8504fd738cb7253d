"""The text form of a batch's text[] parameters: every value escaped as PostgreSQL's array reader
wants it, the quick form (no value needing an escape) the same text as the general one."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tui_migrator.storage.text_arrays import text_array_literal


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
