"""What the backup stage proves before any row changes, and that it fails loudly when it cannot.

Each backup is opened as it is sealed and must give back the row's values exactly; the copy is
then read back and its row count and the sum of each stored row's SHA-256 (packed key, sealed
bytes) must equal what was written. Here the copy is damaged between its write and its read-back
(a byte altered, two rows' backups swapped, a row lost), or a fresh backup does not open: the
migration fails at the backup stage with the table untouched, and resumes and rolls back to the
original, byte for byte, once the fault is gone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from tests.support.databases import BOTH_BACKENDS
from tests.support.migration_helpers import FAST, raw_dump
from tui_migrator.crypto import ciphers
from tui_migrator.engine import backup
from tui_migrator.engine.backup import SEALED_COLUMN
from tui_migrator.service.facade import MigratorService
from tui_migrator.storage.migration_status import Status

pytestmark = BOTH_BACKENDS
DEMOGRAPHICS = {**FAST, "data_categories": ["DEMOGRAPHICS"]}
Damage = Callable[[sa.Connection, sa.Table], None]


def _first_two(connection: sa.Connection, table: sa.Table) -> list[Any]:
    return list(connection.execute(sa.select(table).order_by(table.c.id).limit(2)).mappings())


def alter_a_byte(connection: sa.Connection, table: sa.Table) -> None:
    first = _first_two(connection, table)[0]
    sealed = bytearray(first[SEALED_COLUMN])
    sealed[-1] ^= 0x01
    connection.execute(
        sa.update(table).where(table.c.id == first["id"]).values({SEALED_COLUMN: bytes(sealed)})
    )


def swap_two_rows(connection: sa.Connection, table: sa.Table) -> None:
    first, second = _first_two(connection, table)
    for row, other in ((first, second), (second, first)):
        connection.execute(
            sa.update(table).where(table.c.id == row["id"]).values({SEALED_COLUMN: other[SEALED_COLUMN]})
        )


def lose_a_row(connection: sa.Connection, table: sa.Table) -> None:
    first = _first_two(connection, table)[0]
    connection.execute(sa.delete(table).where(table.c.id == first["id"]))


def demographics(dump: dict[str, Any]) -> Any:
    return dump["demographics"]


@pytest.mark.parametrize(
    "damage", [alter_a_byte, swap_two_rows, lose_a_row], ids=lambda damage: damage.__name__
)
def test_a_backup_damaged_before_its_read_back_fails_the_migration_and_changes_nothing(
    service: MigratorService, monkeypatch: pytest.MonkeyPatch, damage: Damage
) -> None:
    before = raw_dump(service.engine)
    read_back = backup._read_back

    def damage_then_read_back(engine: sa.Engine, access: Any, table: sa.Table, *rest: Any) -> Any:
        with engine.begin() as connection:
            damage(connection, table)
        return read_back(engine, access, table, *rest)

    monkeypatch.setattr(backup, "_read_back", damage_then_read_back)
    record = service.start(DEMOGRAPHICS)

    assert record.status is Status.FAILED
    assert "The backup of demographics does not match the table" in (record.error_message or "")
    assert record.encrypted_records == 0
    assert demographics(raw_dump(service.engine)) == demographics(before)

    # The fault gone, resume takes the backup again and completes; rollback gives the original.
    monkeypatch.setattr(backup, "_read_back", read_back)
    resumed = service.resume(record.id)
    assert resumed.status is Status.COMPLETED and resumed.encrypted_records > 0
    service.rollback(record.id, confirm=True)
    assert raw_dump(service.engine) == before


def test_a_fresh_backup_that_does_not_open_to_its_values_stops_the_migration_before_any_change(
    service: MigratorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = raw_dump(service.engine)
    opens_to = ciphers._opens_to

    def not_for_backups(unseal: Any, nonce: bytes, sealed: bytes, associated: bytes, plain: bytes) -> bool:
        return b"tm-backup/v1" not in associated and opens_to(unseal, nonce, sealed, associated, plain)

    copy_and_verify = backup.copy_and_verify

    def copy_with_the_check_failing(*arguments: Any) -> Any:
        # The backup stage's only (the start's calibration seals backups too).
        with monkeypatch.context() as during:
            during.setattr(ciphers, "_opens_to", not_for_backups)
            return copy_and_verify(*arguments)

    monkeypatch.setattr(backup, "copy_and_verify", copy_with_the_check_failing)
    # One batch at a time: sealed in this process, where the check is the one patched.
    record = service.start({**DEMOGRAPHICS, "max_concurrency": 1})

    assert record.status is Status.FAILED
    message = record.error_message or ""
    assert "A fresh backup of demographics row" in message and "did not open to its values" in message
    assert "Nothing was changed in the table" in message
    assert record.encrypted_records == 0
    assert demographics(raw_dump(service.engine)) == demographics(before)

    monkeypatch.setattr(backup, "copy_and_verify", copy_and_verify)
    assert service.resume(record.id).status is Status.COMPLETED
    service.rollback(record.id, confirm=True)
    assert raw_dump(service.engine) == before
