"""A row's backup packs its values from the encodings sealing made of them: the same bytes as
packing every stored value afresh, for any value of any type, and it opens to them exactly."""

from __future__ import annotations

import hashlib
import os
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.crypto.test_codec_and_tokens import assert_identical, sql_values
from tui_migrator.common.categories import DataCategory
from tui_migrator.crypto.ciphers import RowSealer, ValueCipher
from tui_migrator.crypto.codec import encode_value, pack, pack_values
from tui_migrator.crypto.data_keys import ThrowawayKeys
from tui_migrator.crypto.keys import MasterKey
from tui_migrator.engine import backup, batches
from tui_migrator.engine.cpu_pool import BatchContext
from tui_migrator.storage.column_storage import RowShape
from tui_migrator.storage.mapping import ResolvedColumn, ResolvedTable, Storage

COLUMNS = ("a_text", "b_any", "c_any", "d_text")
SHAPE = RowShape(
    ResolvedTable(
        name="records",
        category=DataCategory.DEMOGRAPHICS,
        primary_key=("id",),
        organization_column="organization_id",
        default_organization=None,
        columns=tuple(ResolvedColumn(name, "TEXT", True, Storage.IN_PLACE) for name in COLUMNS),
    )
)
MASTER = MasterKey(os.urandom(32), "test")

stored_values = st.one_of(st.none(), sql_values)


@settings(max_examples=300, deadline=None)
@given(
    values=st.fixed_dictionaries({name: stored_values for name in COLUMNS}),
    encoded_columns=st.sets(st.sampled_from(COLUMNS)),
)
def test_packing_from_the_encodings_made_gives_the_bytes_of_packing_afresh(
    values: dict[str, Any], encoded_columns: set[str]
) -> None:
    row = {"id": 1, "organization_id": "org_1", **values}
    # As sealing has them: the encoding of the value the row holds, for each cell it sealed.
    encoded = {name: encode_value(values[name]) for name in encoded_columns if values[name] is not None}
    assert backup.packed_row_values(SHAPE, row, encoded) == pack_values(backup.row_values(SHAPE, row))


def _context() -> BatchContext:
    cipher = ValueCipher(ThrowawayKeys(), MASTER, actor="test")
    cipher.prepare(["org_1", "org_2"])
    return BatchContext(cipher, RowSealer(MASTER, "migration_test"))


@settings(max_examples=60, deadline=None)
@given(
    cells=st.lists(
        st.fixed_dictionaries(
            {
                "a_text": st.none() | st.text(),
                "b_any": st.none() | st.text() | st.integers() | st.binary(),
                "c_any": st.none() | st.text(),
                "d_text": st.text(min_size=1),
            }
        ),
        min_size=1,
        max_size=8,
    )
)
def test_a_sealed_batch_backs_each_row_up_as_it_was_read(cells: list[dict[str, Any]]) -> None:
    context = _context()
    rows = [
        {"id": number, "organization_id": f"org_{1 + number % 2}", **values, batches.BACKUP_HELD: None}
        for number, values in enumerate(cells)
    ]
    sealed, failures = batches.seal_batch(context, SHAPE, rows, dry_run=False, with_backups=True)
    assert not failures
    assert context.sealer is not None
    for item in sealed:
        row = rows[item["index"]]
        entry = item["backup"]
        assert entry["id"] == row["id"]
        restored = context.sealer.open("records", (row["id"],), entry[backup.SEALED_COLUMN])
        for original, value in zip(backup.row_values(SHAPE, row), restored, strict=True):
            assert_identical(original, value)


@settings(max_examples=200, deadline=None)
@given(packed_key=st.binary(max_size=64), sealed=st.binary(max_size=300))
def test_a_backup_rows_stored_digest_is_of_its_key_and_sealed_bytes_packed(
    packed_key: bytes, sealed: bytes
) -> None:
    # Summed into each checkpoint's record and compared by the read-back, across versions of
    # the tool (a run resumed by a newer one): the bytes digested must stay pack's.
    expected = int.from_bytes(hashlib.sha256(pack(packed_key, sealed)).digest())
    assert backup.stored_digest(packed_key, sealed) == expected
