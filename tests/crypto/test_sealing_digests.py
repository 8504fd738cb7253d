"""The one-pass forms a batch seals with give exactly what the general forms give.

Sealing a row records two digests (of the values sealed, of the tokens written) and the cells'
nonces; verification and rollback recompute them with the general methods. The batch computes
them in one pass (``ValueCipher.digest_sealed``, ``SealedCells.metadata_of``): any difference
would make every row it sealed fail verification, so they are compared on any cells."""

from __future__ import annotations

import os

from hypothesis import given
from hypothesis import strategies as st

from tui_migrator.crypto.ciphers import ValueCipher
from tui_migrator.crypto.codec import pack_values
from tui_migrator.crypto.data_keys import ThrowawayKeys
from tui_migrator.crypto.keys import MasterKey
from tui_migrator.storage.sealed_cells import SealedCells

CIPHER = ValueCipher(ThrowawayKeys(), MasterKey(os.urandom(32), "test"), actor="test")
NAMES = st.text(min_size=1, max_size=12)
KEYS = st.tuples(st.integers() | st.text(max_size=8)) | st.tuples(st.integers(), st.text(max_size=8))
# (encoded value, token text) of each cell, by column
CELLS = st.dictionaries(NAMES, st.tuples(st.binary(max_size=40), st.text(max_size=60)), max_size=6)


@given(table=NAMES, key=KEYS, organization=st.text(max_size=10) | st.none(), cells=CELLS)
def test_digest_sealed_is_the_values_digest_and_the_tokens_digest(
    table: str, key: tuple[object, ...], organization: str | None, cells: dict[str, tuple[bytes, str]]
) -> None:
    items = sorted((name, encoded, token) for name, (encoded, token) in cells.items())

    digest, tokens_digest = CIPHER.digest_sealed(table, pack_values(key), organization, items)

    assert digest == CIPHER.digest_encoded_cells(
        table, key, organization, {name: encoded for name, (encoded, _token) in cells.items()}
    )
    assert tokens_digest == CIPHER.digest_tokens(
        table, key, organization, {name: token for name, (_encoded, token) in cells.items()}
    )


@given(nonces=st.dictionaries(NAMES, st.text(max_size=16) | st.none(), max_size=6))
def test_metadata_of_sorted_nonces_is_the_metadata_text(nonces: dict[str, str | None]) -> None:
    assert SealedCells.metadata_of(sorted(nonces.items())) == SealedCells(nonces).to_metadata()
