"""The application keeps writing while a migration is rolled back.

A rollback restores a batch of rows in one transaction: it reads them, opens their tokens (in its
own process or in worker processes) and writes every mapped column of each row back from what it
read. Between that read and that write nobody else may write those rows, or the restore would
overwrite the application's newer value: PostgreSQL locks the batch's rows (and only them),
SQLite holds its one write lock. Between batches the application writes freely: a value written
into a cell not restored yet is the newer value and is kept (and counted), a row restored already
is the application's to change, a row deleted stays deleted — and every other value ends byte for
byte as it was before the migration. Each test runs with the tokens opened in the rollback's own
process and in worker processes.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from tests.support.application_writes import MOTOR, app_write, started, stored_row
from tests.support.databases import BOTH_BACKENDS
from tests.support.migration_helpers import raw_dump, wait_for
from tests.support.rollback_workers import PoolsSeen, assert_opened_where_asked
from tui_migrator.crypto.tokens import is_token
from tui_migrator.engine import rollback
from tui_migrator.reader import RecordReader
from tui_migrator.service.facade import MigratorService
from tui_migrator.storage import row_metadata
from tui_migrator.storage.migration_status import Status

pytestmark = BOTH_BACKENDS

# Batches of 20: the 113 rows of motor_symptoms take six, so a test can stop between them.
ROLLBACK_BATCH = 20
WRITTEN = "written by the application during the rollback"


class HeldAt:
    """Holds the thread that calls ``owner.name`` for the ``at``-th time (before that call) until
    :meth:`release`; the test waits for :attr:`holding`. The wait is bounded, so a test that
    fails before releasing never hangs the suite."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, owner: object, name: str, *, at: int) -> None:
        self.holding = threading.Event()
        self._released = threading.Event()
        self._calls = 0
        real = getattr(owner, name)

        def held(*args: Any, **kwargs: Any) -> Any:
            self._calls += 1
            if self._calls == at:
                self.holding.set()
                self._released.wait(60)
            return real(*args, **kwargs)

        monkeypatch.setattr(owner, name, held)

    def release(self) -> None:
        self._released.set()


class InThread:
    """Runs ``call`` in a thread of its own; :meth:`join` gives its result or raises its error."""

    def __init__(self, call: Callable[[], Any]) -> None:
        self._outcome: list[Any] = []
        self._thread = threading.Thread(target=self._run, args=(call,), daemon=True)
        self._thread.start()

    def _run(self, call: Callable[[], Any]) -> None:
        try:
            self._outcome.append((True, call()))
        except BaseException as error:
            self._outcome.append((False, error))

    def join(self) -> Any:
        self._thread.join(60)
        assert self._outcome, "the call did not finish"
        (succeeded, value) = self._outcome[0]
        if not succeeded:
            raise value
        return value


def motor_ids(service: MigratorService) -> list[int]:
    """The table's keys in the order the rollback reads them: batch n is ids[20n : 20n + 20]."""
    with service.engine.connect() as connection:
        return [int(i) for (i,) in connection.exec_driver_sql("SELECT id FROM motor_symptoms ORDER BY id")]


def first_sealed(service: MigratorService, ids: list[int], *columns: str) -> int:
    """The first of ``ids`` whose ``columns`` all hold tokens (in place or in their companion)."""
    for row_id in ids:
        row = stored_row(service, row_id)
        if all(is_token(row.get(f"{name}__tm_token") or row[name]) for name in columns):
            return row_id
    raise AssertionError(f"no row among {ids[0]}..{ids[-1]} has tokens in {columns}")


def without_row(dump: dict[str, Any], table: str, row_id: int) -> dict[str, Any]:
    """A raw dump (tests/support/migration_helpers.raw_dump) without the row of ``table`` whose id is ``row_id``."""
    info, rows = dump[table]
    at = [column[1] for column in info].index("id")
    return {**dump, table: (info, [row for row in rows if row[at][0] != row_id])}


def test_the_applications_writes_between_a_rollbacks_batches_are_kept(
    service: MigratorService, monkeypatch: pytest.MonkeyPatch, opened_in: PoolsSeen | None
) -> None:
    before = raw_dump(service.engine)
    record = started(service, MOTOR)
    ids = motor_ids(service)
    reader = RecordReader.for_service(service)
    restored_first = first_sealed(service, ids[:ROLLBACK_BATCH], "gait_notes")
    not_yet = first_sealed(service, ids[3 * ROLLBACK_BATCH :], "gait_notes", "updrs_part3")
    deleted = first_sealed(service, [i for i in ids[3 * ROLLBACK_BATCH :] if i != not_yet], "gait_notes")
    originals = {row_id: reader.read_row("motor_symptoms", stored_row(service, row_id)) for row_id in ids}

    monkeypatch.setattr(rollback, "BATCH", ROLLBACK_BATCH)
    # Held before its third batch's transaction begins: two batches restored, four to go.
    gate = HeldAt(monkeypatch, rollback, "serialized_write", at=3)
    rolling = InThread(lambda: service.rollback(record.id, confirm=True))
    assert gate.holding.wait(60)
    # A row restored already: plaintext again, the application's to change.
    app_write(service, restored_first, gait_notes=WRITTEN)
    # A row not restored yet: a text cell holding its token in place, and a score whose token
    # is in its companion column, each given a newer value.
    app_write(service, not_yet, gait_notes=WRITTEN, updrs_part3=77)
    with service.engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM motor_symptoms WHERE id = :id"), {"id": deleted})
    gate.release()
    rolled, result = rolling.join()

    assert rolled.status is Status.ROLLED_BACK
    assert result.unrecoverable == []
    # The two newer values are kept and counted; the deleted row has nothing to restore.
    assert result.kept_newer_values == 2
    assert result.restored_rows == record.encrypted_records - 1
    assert stored_row(service, restored_first)["gait_notes"] == WRITTEN
    kept = stored_row(service, not_yet)
    assert (kept["gait_notes"], kept["updrs_part3"]) == (WRITTEN, 77)
    assert "updrs_part3__tm_token" not in kept  # no token is left, so its companion went
    # Put the application's values back: every other cell of every table is as it was.
    app_write(service, restored_first, gait_notes=originals[restored_first]["gait_notes"])
    app_write(
        service,
        not_yet,
        gait_notes=originals[not_yet]["gait_notes"],
        updrs_part3=originals[not_yet]["updrs_part3"],
    )
    assert raw_dump(service.engine) == without_row(before, "motor_symptoms", deleted)
    assert_opened_where_asked(opened_in)


def test_the_rows_of_a_batch_being_restored_cannot_be_written_until_it_commits(
    service: MigratorService, monkeypatch: pytest.MonkeyPatch, opened_in: PoolsSeen | None
) -> None:
    before = raw_dump(service.engine)
    record = started(service, MOTOR)
    ids = motor_ids(service)
    in_batch = first_sealed(service, ids[ROLLBACK_BATCH : 2 * ROLLBACK_BATCH], "gait_notes")
    elsewhere = ids[4 * ROLLBACK_BATCH]
    original = RecordReader.for_service(service).read_row("motor_symptoms", stored_row(service, in_batch))

    monkeypatch.setattr(rollback, "BATCH", ROLLBACK_BATCH)
    # Held inside the second batch's transaction: its rows read (and, on PostgreSQL, locked),
    # not yet opened nor written.
    gate = HeldAt(monkeypatch, row_metadata, "sealed_rows", at=2)
    rolling = InThread(lambda: service.rollback(record.id, confirm=True))
    assert gate.holding.wait(60)
    if service.engine.dialect.name == "sqlite":
        # The rollback holds the database's one write lock: a writer that will not wait is refused.
        database = service.engine.url.database
        assert database is not None
        refused = sqlite3.connect(database, timeout=0, isolation_level=None)
        try:
            with pytest.raises(sqlite3.OperationalError, match="database is locked"):
                refused.execute("BEGIN IMMEDIATE")
        finally:
            refused.close()
    else:
        # The batch's rows are locked, and only they: a row of a later batch can be written.
        assert not can_lock_at_once(service, in_batch)
        assert can_lock_at_once(service, elsewhere)
    # The application's write of a row in the batch waits for the batch's commit (on
    # PostgreSQL seen waiting for the row's lock), then lands on the restored row.
    writing = InThread(lambda: app_write(service, in_batch, gait_notes=WRITTEN))
    if service.engine.dialect.name == "postgresql":
        wait_for(lambda: waiting_for_a_lock(service))
    gate.release()
    rolled, result = rolling.join()
    writing.join()

    assert rolled.status is Status.ROLLED_BACK
    # Restored before the application wrote: no newer value was there to keep, none lost.
    assert result.kept_newer_values == 0 and result.unrecoverable == []
    assert result.restored_rows == record.encrypted_records
    assert stored_row(service, in_batch)["gait_notes"] == WRITTEN
    app_write(service, in_batch, gait_notes=original["gait_notes"])
    assert raw_dump(service.engine) == before
    assert_opened_where_asked(opened_in)


def can_lock_at_once(service: MigratorService, row_id: int) -> bool:
    """PostgreSQL: whether another session can lock the row for writing without waiting."""
    with service.engine.connect() as connection:
        try:
            connection.exec_driver_sql(
                "SELECT id FROM motor_symptoms WHERE id = %(id)s FOR UPDATE NOWAIT", {"id": row_id}
            ).all()
        except sa.exc.OperationalError as error:
            assert getattr(error.orig, "sqlstate", None) == "55P03"  # lock_not_available
            return False
        finally:
            connection.rollback()
    return True


def waiting_for_a_lock(service: MigratorService) -> bool:
    """PostgreSQL: whether a session's UPDATE of motor_symptoms waits for a lock."""
    with service.engine.connect() as connection:
        waiting = connection.exec_driver_sql(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND query LIKE 'UPDATE motor_symptoms%%'"
        ).scalar_one()
    return bool(waiting)
