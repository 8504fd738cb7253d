"""What the backups prove, whenever a run stops, and that their check fails loudly.

Each batch seals the backup of every row it changes, opens it as it is sealed (it must give back
the row's values exactly) and writes it in the transaction that writes the row's tokens; the
batch log records what each batch added to the copy. Once the batches are done the copy is read
back: its row count and the sum of each stored row's SHA-256 (packed key, sealed bytes) must
equal what the batches recorded. Here a run is stopped between batches (every row changed has
its backup, opening to its original), the copy is damaged before its read-back (a byte altered,
two rows' backups swapped, a row lost: the migration fails and rolls back byte for byte from
its tokens), a fresh backup does not open (its row is left unchanged), and a migration whose
copy an earlier version made in a stage of its own resumes with that copy counted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from tests.support.application_writes import MOTOR, app_write, first_row_where, stored_row
from tests.support.databases import BOTH_BACKENDS
from tests.support.faults import BatchGate, tampered_token
from tests.support.migration_helpers import FAST, Background, raw_dump, without_empty_companions
from tui_migrator.crypto import ciphers
from tui_migrator.crypto.ciphers import RowSealer
from tui_migrator.crypto.tokens import is_token
from tui_migrator.engine import backup, batches
from tui_migrator.engine.backup import SEALED_COLUMN
from tui_migrator.engine.cpu_pool import BatchContext
from tui_migrator.service.facade import MigratorService
from tui_migrator.storage.column_storage import TableAccess, reflect
from tui_migrator.storage.migration_records import BackupChange, MigrationRecord, TableProgress
from tui_migrator.storage.migration_status import Status
from tui_migrator.storage.tables import batch_log_table, migration_tables_table

pytestmark = BOTH_BACKENDS
DEMOGRAPHICS = {**FAST, "data_categories": ["DEMOGRAPHICS"]}
# Batches small enough for a run to stop between them, one at a time.
ONE_AT_A_TIME = {**DEMOGRAPHICS, "batch_size": 10, "max_concurrency": 1}
Damage = Callable[[sa.Connection, sa.Table], None]
COMPANION = "__tm_token"


class _Stop(Exception):
    """Not a database error: the run fails at once, between two batches."""


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


def _backup_table(service: MigratorService, migration_id: str) -> sa.Table:
    name = backup.backup_table_name(migration_id, "demographics")
    return sa.Table(name, sa.MetaData(), autoload_with=service.engine)


def _access(service: MigratorService) -> TableAccess:
    with service.engine.connect() as connection:
        return reflect(connection, service.mapping().table("demographics"))


def _demographics_progress(record: MigrationRecord) -> TableProgress:
    return next(table for table in record.tables if table.name == "demographics")


def _stopping_after(committed: int) -> Callable[..., None]:
    """TableBatches.write_in that lets ``committed`` batches of the run through (the estimate's
    calibration writes under no claim, and rolls back), then stops the run."""
    real = batches.TableBatches.write_in
    calls = []

    def write_in(self: batches.TableBatches, connection: Any, *args: Any, **kwargs: Any) -> None:
        if self.epoch is not None:
            calls.append(1)
        if len(calls) > committed:
            raise _Stop("stopped between batches")
        real(self, connection, *args, **kwargs)

    return write_in


def _stopped_after(
    service: MigratorService, monkeypatch: pytest.MonkeyPatch, committed: int
) -> MigrationRecord:
    """A migration of the demographics, one batch at a time, stopped after ``committed`` batches."""
    with monkeypatch.context() as stopping:
        stopping.setattr(batches.TableBatches, "write_in", _stopping_after(committed))
        record = service.start(ONE_AT_A_TIME)
    assert record.status is Status.FAILED
    return record


def _resumed_and_rolled_back(service: MigratorService, record: MigrationRecord, before: Any) -> None:
    """Resumed, the migration completes with one backup a row it encrypted, read back; its
    rollback gives back every byte."""
    resumed = service.resume(record.id)
    assert resumed.status is Status.COMPLETED, resumed.error_message
    progress = _demographics_progress(resumed)
    assert progress.backup_verified and progress.backup_rows == resumed.encrypted_records
    service.rollback(record.id, confirm=True)
    assert raw_dump(service.engine) == before


def test_a_run_stopped_between_batches_leaves_every_changed_row_with_a_backup_of_its_original(
    service: MigratorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = raw_dump(service.engine)
    record = _stopped_after(service, monkeypatch, 3)
    assert 0 < record.encrypted_records < record.total_records

    # Every row holding tokens has its backup, which opens to the row as it was; no other has one.
    columns, rows = demographics(before)
    original = {row[0][0]: row for row in rows}
    now = demographics(raw_dump(service.engine))[1]
    changed = [row for row in now if row[: len(columns)] != original[row[0][0]]]
    assert len(changed) == record.encrypted_records
    table = _backup_table(service, record.id)
    with service.engine.connect() as connection:
        stored = {row.id: row for row in connection.execute(sa.select(table))}
    assert sorted(stored) == sorted(row[0][0] for row in changed)
    access = _access(service)
    sealer = RowSealer(service._session.master_key, record.id)
    names = [column[1] for column in columns]
    for key, backed_up in stored.items():
        opened = backup.open_backup(access, {"id": key}, backed_up.tm_sealed, sealer)
        assert opened == [original[key][names.index(column.name)][0] for column in access.mapped.columns]

    # The batch log adds up to the copy as it stands.
    with service.engine.connect() as connection:
        entries = connection.execute(
            sa.select(batch_log_table.c.backup_rows).where(batch_log_table.c.migration_id == record.id)
        ).all()
    assert sum(rows for (rows,) in entries) == len(stored)
    _resumed_and_rolled_back(service, record, before)


@pytest.mark.parametrize(
    "damage", [alter_a_byte, swap_two_rows, lose_a_row], ids=lambda damage: damage.__name__
)
def test_a_backup_damaged_before_its_read_back_fails_the_migration_and_rollback_is_exact(
    service: MigratorService, monkeypatch: pytest.MonkeyPatch, damage: Damage
) -> None:
    before = raw_dump(service.engine)
    read_back = backup.read_back

    def damage_then_read_back(engine: sa.Engine, access: Any, table: sa.Table, *rest: Any) -> Any:
        with engine.begin() as connection:
            damage(connection, table)
        return read_back(engine, access, table, *rest)

    monkeypatch.setattr(backup, "read_back", damage_then_read_back)
    record = service.start(DEMOGRAPHICS)

    assert record.status is Status.FAILED
    message = record.error_message or ""
    assert "The backup copy of demographics" in message and "does not hold what the batches wrote" in message
    assert not _demographics_progress(record).backup_verified
    # The rows were changed, each with its backup; the tokens open without the damaged copy.
    assert record.encrypted_records > 0
    service.rollback(record.id, confirm=True)
    assert raw_dump(service.engine) == before


def test_a_fresh_backup_that_does_not_open_to_its_values_leaves_its_row_unchanged(
    service: MigratorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = raw_dump(service.engine)
    opens_to = ciphers._opens_to

    def not_for_backups(unseal: Any, nonce: bytes, sealed: bytes, associated: bytes, plain: bytes) -> bool:
        return b"tm-backup/v1" not in associated and opens_to(unseal, nonce, sealed, associated, plain)

    with monkeypatch.context() as failing:
        failing.setattr(ciphers, "_opens_to", not_for_backups)
        # One batch at a time: sealed in this process, where the check is the one patched.
        record = service.start({**DEMOGRAPHICS, "max_concurrency": 1})

    failures = service.failed_records(record.id)
    assert record.encrypted_records == 0 and len(failures) == record.total_records > 0
    assert all("did not open to its values" in failure["reason"] for failure in failures)
    # Not a value changed (batch processing added the companion columns tokens need, empty).
    assert demographics(without_empty_companions(raw_dump(service.engine))) == demographics(before)
    _resumed_and_rolled_back(service, record, before)


def test_a_copy_made_before_the_batches_by_an_earlier_version_is_counted_when_it_resumes(
    service: MigratorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = raw_dump(service.engine)
    record = _stopped_after(service, monkeypatch, 2)
    assert record.encrypted_records > 0
    # As a version before schema version 10 left it: batches that recorded nothing of the copy,
    # and the copy's count and digest in the table's progress as its own stage verified them —
    # here of the first rows only, the later ones backed up by its batches (rows that appeared
    # after that copy), which recorded nothing of them either.
    table, access = _backup_table(service, record.id), _access(service)
    context = BatchContext(service._session.value_cipher(), None, service.engine)
    with service.engine.begin() as connection:
        keys = sorted(connection.execute(sa.select(table.c.id)).scalars())
        rows, digests = backup.read_back_window(context, table, access, (keys[0],), (keys[len(keys) // 2],))
        copied = BackupChange(rows, digests)
        connection.execute(
            sa.update(batch_log_table)
            .where(batch_log_table.c.migration_id == record.id)
            .values(backup_rows=None, backup_digest=None)
        )
        connection.execute(
            sa.update(migration_tables_table)
            .where(migration_tables_table.c.migration_id == record.id)
            .values(backup_rows=copied.rows, backup_digest=copied.digest_text, backup_verified=True)
        )
    assert 0 < copied.rows < len(keys)

    _resumed_and_rolled_back(service, record, before)


def test_backups_left_by_an_interrupted_copy_of_an_earlier_version_are_made_again(
    service: MigratorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = raw_dump(service.engine)
    record = _stopped_after(service, monkeypatch, 0)
    assert record.encrypted_records == 0
    # A backup an interrupted copy left, which no batch recorded: not the row's as it is.
    table = _backup_table(service, record.id)
    with service.engine.begin() as connection:
        first = connection.execute(sa.text("SELECT min(id) FROM demographics")).scalar_one()
        connection.execute(sa.insert(table).values(id=first, tm_sealed=b"\x00" * 60))

    _resumed_and_rolled_back(service, record, before)


def test_a_sealed_row_the_application_wrote_back_in_plaintext_gets_a_fresh_backup_with_its_new_token(
    service: MigratorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first batch seals the row (its backup holds the originals); while the third waits,
    the application writes every sealed cell of it back in plaintext. A catch-up pass seals the
    row again and replaces its backup, in the batch's transaction: the batch log takes the old
    backup's digest out of the copy's sum and puts the new one's in, so the read-back still
    matches (the migration completes), and a token of the row damaged later is restored to the
    application's values from the fresh backup (the old one no longer matches what was sealed)."""
    before = raw_dump(service.engine)
    row_id = first_row_where(service, "gait_notes IS NOT NULL AND updrs_part3 IS NOT NULL")
    original = stored_row(service, row_id)
    gate = BatchGate(monkeypatch, open_for=2)
    running = Background(lambda: service.start({**MOTOR, "batch_size": 20, "max_concurrency": 1}))
    assert gate.holding.wait(60)
    sealed = stored_row(service, row_id)
    companions = [name for name in sealed if name.endswith(COMPANION)]
    # Every cell holding a token gets a plaintext value (a companion's token is cleared).
    written = {
        **{name[: -len(COMPANION)]: original[name[: -len(COMPANION)]] for name in companions},
        "updrs_part3": 99,
        "gait_notes": "written back in plaintext",
    }
    app_write(service, row_id, **written, **dict.fromkeys(companions))
    assert not any(is_token(value) for value in stored_row(service, row_id).values())
    gate.release()
    record = running.join()
    assert record.status is Status.COMPLETED, record.error_message
    motor = next(table for table in record.tables if table.name == "motor_symptoms")
    with service.engine.connect() as connection:
        recorded = connection.execute(
            sa.text(
                "SELECT count(*) FROM tm_row_metadata WHERE migration_id = :id AND table_name = 'motor_symptoms'"
            ),
            {"id": record.id},
        ).scalar_one()
    # One backup a row sealed, the row sealed twice included.
    assert motor.backup_verified and motor.backup_rows == recorded

    with service.engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE motor_symptoms SET gait_notes = :bad WHERE id = :id"),
            {"bad": tampered_token(stored_row(service, row_id)["gait_notes"]), "id": row_id},
        )
    _, result = service.rollback(record.id, confirm=True)
    assert result.restored_from_backup == 1 and result.unrecoverable == []
    restored = stored_row(service, row_id)
    assert {name: restored[name] for name in written} == written
    app_write(service, row_id, **{name: original[name] for name in written})  # the application's write undone
    assert raw_dump(service.engine) == before


def test_backups_of_rows_the_database_refused_stay_counted_when_the_migration_resumes(
    service: MigratorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch writes its backups before its UPDATE; where the database then refuses every row
    (a constraint, a trigger), the rows stay as they were, failed, and their backups stay, in
    the batch log too. Resumed, the backup stage keeps them (the batch log has them, though no
    row was changed) and the retried rows find them: the read-back matches."""
    before = raw_dump(service.engine)

    def every_row_refused(
        self: batches.TableBatches, connection: Any, sealed: list[Any], failures: list[Any], **_: Any
    ) -> None:
        failures += [
            (item["row_key"], str(item["row"]["id"]), "the database refused the update") for item in sealed
        ]
        sealed[:] = []

    with monkeypatch.context() as refusing:
        refusing.setattr(batches.TableBatches, "_update_rows", every_row_refused)
        record = service.start(ONE_AT_A_TIME)
    assert record.encrypted_records == 0 and len(service.failed_records(record.id)) == record.total_records
    with service.engine.connect() as connection:
        stored = connection.execute(sa.select(sa.func.count()).select_from(_backup_table(service, record.id)))
        assert stored.scalar_one() == record.total_records
    _resumed_and_rolled_back(service, record, before)


def test_a_lost_connection_while_the_backups_are_read_back_is_retried(
    service: MigratorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The read-back ends batch processing, where every database call is retried with backoff."""
    before = raw_dump(service.engine)
    read_back = backup.read_back
    failures: list[str] = []

    def fails_once(*arguments: Any) -> Any:
        if not failures:
            failures.append("lost")
            raise sa.exc.OperationalError("SELECT …", {}, Exception("server closed the connection"))
        return read_back(*arguments)

    monkeypatch.setattr(backup, "read_back", fails_once)
    record = service.start(DEMOGRAPHICS)

    assert failures == ["lost"]
    assert record.status is Status.COMPLETED, record.error_message
    assert _demographics_progress(record).backup_verified
    service.rollback(record.id, confirm=True)
    assert raw_dump(service.engine) == before


@pytest.mark.backends("postgresql")
def test_a_claimed_batchs_backups_go_in_by_one_statement(service: MigratorService) -> None:
    """On PostgreSQL each claimed batch writes its rows' backups with one INSERT … SELECT (their
    keys taken from the rows, found by version), not one INSERT a row; the copy reads back whole
    and the rollback is exact."""
    before = raw_dump(service.engine)
    inserts: list[tuple[str, bool]] = []  # each INSERT sent, and whether as an executemany

    def seen(_conn: Any, _cursor: Any, statement: str, _parameters: Any, _context: Any, many: bool) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO"):
            inserts.append((statement, many))

    sa.event.listen(service.engine, "before_cursor_execute", seen)
    try:
        record = service.start({**DEMOGRAPHICS, "batch_size": 10, "max_concurrency": 2})
    finally:
        sa.event.remove(service.engine, "before_cursor_execute", seen)
    assert record.status is Status.COMPLETED, record.error_message
    demographics = next(table for table in record.tables if table.name == "demographics")
    assert demographics.backup_verified and demographics.backup_rows == record.encrypted_records
    name = backup.backup_table_name(record.id, "demographics")
    into_the_copy = [
        many for statement, many in inserts if statement.lstrip()[len("INSERT INTO ") :].startswith(name)
    ]
    assert into_the_copy and not any(into_the_copy), "backups were inserted one row at a time"
    assert len(into_the_copy) == -(-record.encrypted_records // 10)  # one per batch
    service.rollback(record.id, confirm=True)
    assert raw_dump(service.engine) == before
