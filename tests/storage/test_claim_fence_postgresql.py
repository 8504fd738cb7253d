"""The claim fence on PostgreSQL, lock by lock.

A batch checks the migration's claim epoch inside its write transaction and keeps the
migration's row locked FOR KEY SHARE until it commits (migration_claims.check_epoch); a claim (a
resume's, a rollback's, a takeover's) loads the row FOR UPDATE before it raises the epoch
(migrations.load, then migration_claims.take_over). So a claim waits for every batch in flight, and a batch that
checks while a claim is open waits for it and is refused. The heartbeat and progress updates
change other columns of the row and take no lock a batch holds: with FOR SHARE, one heartbeat
waited for the batches in flight and every later batch waited behind the heartbeat.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from tests.support.migration_helpers import wait_for
from tui_migrator.service.facade import MigratorService
from tui_migrator.storage import migration_claims
from tui_migrator.storage import migration_records as migrations
from tui_migrator.storage.database import serialized_write
from tui_migrator.storage.tables import utc_now

pytestmark = pytest.mark.backends("postgresql")


class InThread:
    """``call(connection)`` on a connection of its own, in a thread: its backend's pid, and
    what it returned or raised."""

    def __init__(self, engine: sa.Engine, call: Callable[[sa.Connection], Any]) -> None:
        self.pid: int | None = None
        self.result: Any = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(engine, call), daemon=True)
        self._thread.start()

    def _run(self, engine: sa.Engine, call: Callable[[sa.Connection], Any]) -> None:
        try:
            with serialized_write(engine) as connection:
                self.pid = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
                self.result = call(connection)
        except BaseException as error:  # handed to the test
            self.error = error

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def join(self) -> None:
        self._thread.join(60)
        assert self.done, "still running"


def waiting_on_a_lock(engine: sa.Engine, pid: int | None) -> bool:
    with engine.connect() as connection:
        return (
            pid is not None
            and connection.execute(
                sa.text("SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = :pid"),
                {"pid": pid},
            ).scalar_one_or_none()
            is True
        )


def claim(connection: sa.Connection, migration_id: str) -> int:
    """What a resume's or a rollback's claim does to the fence (see claim_for_run)."""
    return migration_claims.take_over(connection, migrations.load(connection, migration_id, for_update=True))


@pytest.fixture
def migration(service: MigratorService) -> tuple[str, int]:
    record = service.start({"batch_size": 50})
    return record.id, record.claim_epoch


def test_a_heartbeat_does_not_wait_for_a_batch_in_flight(
    service: MigratorService, migration: tuple[str, int]
) -> None:
    migration_id, epoch = migration
    engine = service.engine
    with engine.connect() as batch, batch.begin():
        migration_claims.check_epoch(batch, migration_id, epoch)
        beat = InThread(
            engine,
            lambda connection: migration_claims.fenced_update(
                connection, migration_id, epoch, heartbeat_at=utc_now()
            ),
        )
        wait_for(lambda: beat.done or waiting_on_a_lock(engine, beat.pid))
        # Done while the batch is still open: it never waited.
        assert beat.done
    assert beat.error is None


def test_a_claim_waits_for_a_batch_in_flight(service: MigratorService, migration: tuple[str, int]) -> None:
    migration_id, epoch = migration
    engine = service.engine
    with engine.connect() as batch:
        transaction = batch.begin()
        migration_claims.check_epoch(batch, migration_id, epoch)
        taking = InThread(engine, lambda connection: claim(connection, migration_id))
        wait_for(lambda: waiting_on_a_lock(engine, taking.pid))
        assert not taking.done
        transaction.commit()
    taking.join()
    assert taking.error is None and taking.result == epoch + 1


def test_a_batch_that_checks_during_a_claim_waits_and_is_refused(
    service: MigratorService, migration: tuple[str, int]
) -> None:
    migration_id, epoch = migration
    engine = service.engine
    with engine.connect() as claiming:
        transaction = claiming.begin()
        assert claim(claiming, migration_id) == epoch + 1
        batch = InThread(
            engine, lambda connection: migration_claims.check_epoch(connection, migration_id, epoch)
        )
        wait_for(lambda: waiting_on_a_lock(engine, batch.pid))
        assert not batch.done
        transaction.commit()
    batch.join()
    assert isinstance(batch.error, migration_claims.ClaimLost)
