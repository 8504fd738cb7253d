"""The one-pass forms a batch seals with give exactly what the general forms give.

Sealing a row records two digests (of the values sealed, of the tokens written) and the cells'
nonces; verification and rollback recompute them with the general methods. A batch builds them
while it seals (``TableSealer.seal``, ``SealedCells.metadata_of``): any difference would make
every row it sealed fail verification, so they are compared on any cells."""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tui_migrator.crypto.ciphers import ValueCipher
from tui_migrator.crypto.codec import pack_values
from tui_migrator.crypto.data_keys import ThrowawayKeys
from tui_migrator.crypto.keys import MasterKey
from tui_migrator.crypto.tokens import token_nonce
from tui_migrator.storage.sealed_cells import SealedCells

CIPHER = ValueCipher(ThrowawayKeys(), MasterKey(os.urandom(32), "test"), actor="test")
NAMES = st.text(min_size=1, max_size=12)
KEYS = st.tuples(st.integers() | st.text(max_size=8)) | st.tuples(st.integers(), st.text(max_size=8))
# each cell's value as a token seals it (encoded), by column
CELLS = st.dictionaries(NAMES, st.binary(min_size=1, max_size=40), max_size=6)


@given(table=NAMES, key=KEYS, organization=st.text(max_size=10), cells=CELLS)
def test_the_digests_made_while_sealing_are_the_values_digest_and_the_tokens_digest(
    table: str, key: tuple[object, ...], organization: str, cells: dict[str, bytes]
) -> None:
    sealed = CIPHER.table_sealer(table).seal(
        key, organization, pack_values(key), sorted(cells.items()), digests=True
    )

    assert sealed.digest == CIPHER.digest_encoded_cells(table, key, organization, cells)
    tokens = dict(zip(sorted(cells), sealed.tokens, strict=True))
    assert sealed.tokens_digest == CIPHER.digest_tokens(table, key, organization, tokens)
    assert sealed.nonces == [token_nonce(tokens[name]) for name in sorted(cells)]
    assert sealed.encoded == [cells[name] for name in sorted(cells)]


def test_digests_are_refused_for_cells_out_of_column_order() -> None:
    sealer = CIPHER.table_sealer("t")
    with pytest.raises(ValueError, match="column-name order"):
        sealer.seal((1,), "org", pack_values((1,)), [("b", b"s1"), ("a", b"s2")], digests=True)
    # Without digests, any order (a rotation seals the cells as it found them).
    unordered = sealer.seal((1,), "org", pack_values((1,)), [("b", b"s1"), ("a", b"s2")], digests=False)
    assert len(unordered.tokens) == 2 and unordered.digest is None


@given(nonces=st.dictionaries(NAMES, st.text(max_size=16) | st.none(), max_size=6))
def test_metadata_of_sorted_nonces_is_the_metadata_text(nonces: dict[str, str | None]) -> None:
    assert SealedCells.metadata_of(sorted(nonces.items())) == SealedCells(nonces).to_metadata()
