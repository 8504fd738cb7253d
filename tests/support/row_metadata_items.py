"""Hypothesis: batches of row metadata as a run records them (tests/storage), each field any text
the backend can hold."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st


def recorded_items(text: st.SearchStrategy[str]) -> st.SearchStrategy[list[dict[str, Any]]]:
    """One to five rows' metadata with distinct row keys, every field drawn from ``text`` (the
    cells and the tokens' digest may also be NULL)."""
    return st.lists(
        st.fixed_dictionaries(
            {
                "row_key": text,
                "key_id": text,
                "digest": text,
                "sealed_columns": text | st.none(),
                "tokens_digest": text | st.none(),
            }
        ),
        min_size=1,
        max_size=5,
        unique_by=lambda item: item["row_key"],
    )
