"""SealedCells' metadata text: what json.dumps gives (keys sorted, no spaces) for any nonces,
written out by hand for the plain base64url nonces a run writes."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from tui_migrator.storage.sealed_cells import SealedCells

PLAIN = st.text(st.sampled_from("ABCXYZabcxyz0189_-"), max_size=16)


@given(nonces=st.dictionaries(st.text(max_size=12), PLAIN | st.none() | st.text(max_size=16), max_size=6))
def test_metadata_text_is_what_json_gives_for_any_nonces(nonces: dict[str, str | None]) -> None:
    text = SealedCells(nonces).to_metadata()
    assert text == json.dumps(nonces, sort_keys=True, separators=(",", ":"))
    assert json.loads(text) == nonces


def test_one_nonce_that_is_not_plain_sends_them_all_through_json() -> None:
    nonces = {"a": "AAAA", "b": 'quote"d', "c": "BBBB"}
    assert SealedCells(nonces).to_metadata() == json.dumps(nonces, sort_keys=True, separators=(",", ":"))
