"""Claiming a migration: the one place that decides whether a worker run or a rollback may take
it now, and that fences out whoever held it before.

A claim checks the status it needs, takes the migration's table locks again and raises the
migration's claim epoch, all in the transaction that holds the migration's row. Every write of a
worker checks, in its own transaction, that the epoch is still the one its claim set
(:func:`check_epoch`, :func:`fenced_update`). A worker that only looked dead — its heartbeat
stale while it waited on a lock — and wakes after a resume or a rollback took over therefore
writes nothing: its next write raises :class:`ClaimLost` and it stops.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from tui_migrator.common.errors import BadInput, OperationFailed
from tui_migrator.storage import migration_records as migrations
from tui_migrator.storage import table_locks
from tui_migrator.storage.built_statements import built_once
from tui_migrator.storage.database import serialized_write
from tui_migrator.storage.migration_records import MigrationRecord
from tui_migrator.storage.migration_status import LIVE_STATUSES, RESUMABLE_STATUSES, Status
from tui_migrator.storage.tables import migrations_table, utc_now

# What a worker may run: a planned migration, one that stopped before completing, or a
# completed one whose failed records a resume has put back to work (tables not done again).
RUNNABLE_WORDS = (
    "a planned, failed, cancelled or interrupted migration (or a completed one whose failed "
    "records 'resume' is retrying)"
)


class ClaimLost(OperationFailed):
    """Another process claimed the migration since this worker did: it must not write again."""

    code = "claim_lost"


@dataclass(frozen=True)
class Claim:
    """What a worker holds after claiming: the migration as it now is, and its epoch."""

    record: MigrationRecord
    epoch: int
    # The migration had run before (this run continues earlier work).
    resumed: bool


def runnable(record: MigrationRecord) -> bool:
    if record.stored_status is Status.COMPLETED:
        return not record.dry_run and any(not table.done for table in record.tables)
    return record.status in RESUMABLE_STATUSES


def claim_for_run(engine: Engine, migration_id: str, worker: str) -> Claim:
    """Make ``worker`` the one running this migration, if it may run and no live worker runs it."""
    with serialized_write(engine) as connection:
        record = migrations.load(connection, migration_id, for_update=True)
        migrations.refuse_during_rollback(record, "worker")
        if record.stored_status in LIVE_STATUSES and record.worker_alive and record.worker != worker:
            raise OperationFailed(
                f"Migration {migration_id} is already being run by {record.worker}.",
                hint=f"Follow it with: tui-migrator status {migration_id}",
            )
        if record.cancel_requested:
            # Cancelled before this worker took it (a start's worker that was slow to come up):
            # only a resume, which withdraws the request, runs it again.
            raise BadInput(
                f"Migration {migration_id} was cancelled before this worker took it "
                f"({record.cancel_reason or 'no reason given'}); nothing was run.",
                hint=f"Run it after all with: tui-migrator resume {migration_id}",
            )
        if not runnable(record):
            raise BadInput(
                f"Migration {migration_id} is {record.status.value}; a worker runs only "
                f"{RUNNABLE_WORDS}. Nothing was run.",
                hint=f"See what it did with: tui-migrator status {migration_id}",
            )
        epoch = take_over(connection, record)
        now = utc_now()
        migrations.update(
            connection,
            migration_id,
            status=Status.RUNNING.value,
            worker=worker,
            heartbeat_at=now,
            started_at=record.started_at or now,
            completed_at=None,
            error_message=None,
            cancel_requested=False,
            cancel_reason=None,
            cancelled_at=None,
            cancelled_by=None,
            pause_requested=False,
            pause_reason=None,
            paused_seconds=record.paused_seconds + _stopped_seconds(record, now),
            # What a worker that died in the backup or verification left is no longer true.
            phase_progress=None,
        )
        return Claim(migrations.load(connection, migration_id), epoch, resumed=record.started_at is not None)


def take_over(connection: Connection, record: MigrationRecord) -> int:
    """In the claim's transaction (``record`` loaded for update): take the migration's table
    locks again and raise its epoch, which fences out any earlier holder. Returns the new epoch.

    The caller's load for update (``migrations.load(..., for_update=True)``) is the lock that
    waits, on PostgreSQL, for every batch in flight (see check_epoch)."""
    if not record.dry_run:
        table_locks.retake(connection, record.id, [table.name for table in record.tables])
    epoch = record.claim_epoch + 1
    migrations.update(connection, record.id, claim_epoch=epoch)
    return epoch


def check_epoch(connection: Connection, migration_id: str, epoch: int) -> None:
    """Raise :class:`ClaimLost` unless ``epoch`` is still the migration's, in the caller's write
    transaction. SQLite's write lock already excludes a claim while this transaction runs.

    On PostgreSQL the row is read FOR KEY SHARE: a claim (its load FOR UPDATE) waits for this
    transaction to end, so no write can slip in after a takeover, and a check made while a claim
    is open waits for it and then reads the new epoch. The heartbeat's and progress's UPDATEs,
    which change other columns (FOR NO KEY UPDATE), wait for no batch: under FOR SHARE a
    heartbeat waited for every batch in flight, and every batch after it waited behind the
    heartbeat (100-300 ms a beat at 100,000 rows, tests/storage/test_claim_fence_postgresql.py)."""
    dialect = connection.dialect.name
    query = built_once(migrations_table, ("check_epoch", dialect), lambda: _epoch_query(dialect))
    current = connection.execute(query, {"tm_migration": migration_id}).scalar_one_or_none() or 0
    if current != epoch:
        raise _lost(migration_id, current, epoch)


def _epoch_query(dialect: str) -> sa.Select[Any]:
    query = sa.select(migrations_table.c.claim_epoch).where(
        migrations_table.c.id == sa.bindparam("tm_migration")
    )
    if dialect == "postgresql":
        query = query.with_for_update(read=True, key_share=True)
    return query


def fenced_update(connection: Connection, migration_id: str, epoch: int, **values: Any) -> None:
    """Update the migration's record only while ``epoch`` is still its claim."""
    updated = connection.execute(
        sa.update(migrations_table)
        .where(
            migrations_table.c.id == migration_id,
            sa.func.coalesce(migrations_table.c.claim_epoch, 0) == epoch,
        )
        .values(**values)
    )
    if updated.rowcount == 0:
        current = connection.execute(
            sa.select(migrations_table.c.claim_epoch).where(migrations_table.c.id == migration_id)
        ).scalar_one_or_none()
        raise _lost(migration_id, current or 0, epoch)


def _lost(migration_id: str, current: int, epoch: int) -> ClaimLost:
    return ClaimLost(
        f"Migration {migration_id} was taken over while this worker looked stopped (claim "
        f"{current} now, this worker held claim {epoch}); this worker writes nothing more and stops.",
        hint=f"Follow it with: tui-migrator status {migration_id}",
    )


def _stopped_seconds(record: MigrationRecord, now: datetime) -> float:
    """How long a migration about to run again was stopped: not active time, so it is counted
    with the paused time, and elapsed time leaves it out."""
    stopped_at = record.last_active_at
    if record.status.is_live or stopped_at is None:
        return 0.0
    return max(0.0, (now - stopped_at).total_seconds())
