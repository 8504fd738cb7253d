"""The database's disk fills up during a migration.

A migration makes the database grow (backups, tokens longer than the values, row metadata), so
a disk can fill up half way. Then the batch in hand is rolled back whole, the migration ends
failed at once — no retries: a full disk does not empty itself in seconds — and says so in plain
words: the disk is full, nothing is half-written, free space and resume. Once there is room,
resume finishes it and rollback gives back every table byte for byte.

SQLite's ``max_page_count`` stands in for the disk: past it a write fails with the very error a
full disk gives (SQLITE_FULL, "database or disk is full"), and SQLite ends the whole
transaction itself, as on a full disk. PostgreSQL's disk_full is recognised by its sqlstate.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

from tests.support.application_writes import MOTOR, started
from tests.support.faults import BatchGate, sealed_rows
from tests.support.migration_helpers import Background, raw_dump, without_empty_companions
from tui_migrator.common.errors import OperationFailed
from tui_migrator.engine import retry
from tui_migrator.service.facade import MigratorService
from tui_migrator.storage import rollback_progress
from tui_migrator.storage.migration_status import Status

SMALL_BATCHES = {**MOTOR, "batch_size": 20, "max_concurrency": 1}


class DiskSize:
    """Caps the pages the database may have, on every connection the service's engine hands
    out from now on (None: no cap)."""

    def __init__(self, service: MigratorService) -> None:
        self.pages: int | None = None
        self._engine = service.engine
        sa.event.listen(self._engine, "checkout", self._cap)

    def _cap(self, dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        # 1,073,741,823 is SQLite's own largest cap: none.
        dbapi_connection.execute(f"PRAGMA max_page_count = {self.pages or 1_073_741_823}")

    def full_now(self) -> None:
        """No room for more than a page beyond what the database holds now."""
        with self._engine.connect() as connection:
            self.pages = int(connection.exec_driver_sql("PRAGMA page_count").scalar_one()) + 1

    def freed(self) -> None:
        self.pages = None


@pytest.fixture
def retry_sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The waits of the engine's retries (none taken: the test sees each one asked for)."""
    asked: list[float] = []
    monkeypatch.setattr(retry.time, "sleep", asked.append)
    return asked


def assert_says_the_disk_is_full(message: str | None) -> None:
    assert message is not None
    assert "The database's disk is full" in message and "database or disk is full" in message
    assert "nothing is half-written" in message and "then run resume" in message
    assert "savepoint" not in message


def test_a_disk_full_between_batches_fails_the_run_at_once_and_resume_finishes_it(
    service: MigratorService, monkeypatch: pytest.MonkeyPatch, retry_sleeps: list[float]
) -> None:
    before = raw_dump(service.engine)
    disk = DiskSize(service)
    # Two batches (each with its backups) fit; then the disk is full.
    gate = BatchGate(monkeypatch, open_for=2)
    running = Background(lambda: service.start(SMALL_BATCHES))
    assert gate.holding.wait(60)
    disk.full_now()
    gate.release()
    failed = running.join()

    assert failed.status is Status.FAILED
    assert_says_the_disk_is_full(failed.error_message)
    assert retry_sleeps == []
    # The batch that met the full disk left nothing: the rows holding tokens are those counted.
    assert 0 < failed.encrypted_records < failed.total_records
    assert sealed_rows(service.engine, service.mapping()) == failed.encrypted_records
    operations = [e.operation for e in service.audit_entries(limit=None, migration_id=failed.id).entries]
    assert "data_migration_failed" in operations

    disk.freed()
    resumed = service.resume(failed.id)
    assert resumed.status is Status.COMPLETED, resumed.error_message
    assert resumed.verification is not None and resumed.verification["passed"]
    assert resumed.encrypted_records == resumed.total_records
    rolled, result = service.rollback(resumed.id, confirm=True)
    assert rolled.status is Status.ROLLED_BACK and result.unrecoverable == []
    assert raw_dump(service.engine) == before


def test_a_disk_full_at_the_first_batch_fails_the_run_before_any_row_changes(
    service: MigratorService, retry_sleeps: list[float]
) -> None:
    before = raw_dump(service.engine)
    disk = DiskSize(service)
    disk.full_now()
    failed = service.start(SMALL_BATCHES)

    assert failed.status is Status.FAILED
    assert_says_the_disk_is_full(failed.error_message)
    assert retry_sleeps == []
    # The first batch's backups and tokens did not fit: no row changed, none has a backup.
    assert failed.encrypted_records == 0
    assert without_empty_companions(raw_dump(service.engine)) == before

    disk.freed()
    resumed = service.resume(failed.id)
    assert resumed.status is Status.COMPLETED, resumed.error_message
    service.rollback(resumed.id, confirm=True)
    assert raw_dump(service.engine) == before


def test_a_disk_full_during_a_rollback_says_so_and_the_rollback_runs_again_to_its_end(
    service: MigratorService, monkeypatch: pytest.MonkeyPatch, retry_sleeps: list[float]
) -> None:
    before = raw_dump(service.engine)
    record = started(service, SMALL_BATCHES)
    disk = DiskSize(service)
    disk.full_now()
    with pytest.raises(OperationFailed) as stopped:
        service.rollback(record.id, confirm=True)

    message = str(stopped.value)
    assert "The database's disk is full" in message and "database or disk is full" in message
    assert "then run rollback again (what it restored stays restored)" in message
    assert "savepoint" not in message and "[SQL" not in message
    assert retry_sleeps == []
    # The full disk may have kept the rollback from recording that it stopped: its heartbeat
    # then goes stale (15 s; here at once), and the migration can be rolled back again.
    monkeypatch.setattr(rollback_progress, "STALE_SECONDS", 0.0)
    stopped_record = service.status(record.id)
    assert stopped_record.status is Status.COMPLETED and stopped_record.can_rollback

    disk.freed()
    rolled, result = service.rollback(record.id, confirm=True)
    assert rolled.status is Status.ROLLED_BACK
    # Whatever the first run restored before the disk was full is told apart from newer values.
    assert result.restored_rows + result.already_restored == record.encrypted_records
    assert result.kept_newer_values == 0 and result.unrecoverable == []
    assert raw_dump(service.engine) == before


def test_postgresqls_disk_full_is_said_in_the_same_words_and_never_retried() -> None:
    full = sa.exc.OperationalError(
        "UPDATE",
        {},
        psycopg.errors.DiskFull('could not extend file "base/16384/16385": No space left on device'),
    )
    lost = sa.exc.OperationalError("UPDATE", {}, psycopg.errors.AdminShutdown("terminating connection"))
    assert retry.is_disk_full(full) and not retry.is_transient(full)
    assert not retry.is_disk_full(lost) and retry.is_transient(lost)
    message = str(retry.database_failure(full, "writing a batch of demographics"))
    assert "disk is full" in message and "No space left on device" in message
    assert "data directory" in message and "then run resume" in message
