"""The migration records in the database: creating, reading, claiming and steering them.

Every process reads and writes migrations only through here, so a migration started by one
process can be followed, paused, cancelled or resumed from any other. Requests (cancel, pause)
are flags the running worker acts on between batches; liveness is a heartbeat.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from tui_migrator.common.errors import StateConflict, UnknownMigration
from tui_migrator.common.migration_config import MigrationConfig
from tui_migrator.storage import rollback_progress
from tui_migrator.storage.built_statements import built_once
from tui_migrator.storage.migration_status import (
    CANCELLABLE_STATUSES,
    CONTINUABLE_STATUSES,
    LIVE_STATUSES,
    PAUSABLE_STATUSES,
    RESUMABLE_STATUSES,
    ROLLBACK_STATUSES,
    MigrationKind,
    Phase,
    Status,
)
from tui_migrator.storage.rollback_progress import RollbackProgress
from tui_migrator.storage.tables import (
    batch_log_table,
    failed_records_table,
    migration_tables_table,
    migrations_table,
    utc_now,
)

# A worker that has not moved its heartbeat for this long is taken to be gone.
HEARTBEAT_STALE_SECONDS = 15.0


@dataclass(frozen=True)
class TableProgress:
    name: str
    category: str
    total_records: int
    encrypted_records: int
    failed_records: int
    done: bool
    backup_table: str | None
    backup_rows: int | None
    # The sum of the backup copy's stored digests when it was last read back (64 hex digits).
    backup_digest: str | None
    backup_verified: bool
    # Where the next pass over the table starts: after this (encoded) primary key.
    resume_key: str | None
    companions_added: list[str]

    @property
    def processed_records(self) -> int:
        return min(self.total_records, self.encrypted_records + self.failed_records)


@dataclass(frozen=True)
class PhaseProgress:
    """How far a phase that is not batch processing (backup, verification) has got: rows done
    of the rows it covers, across all its tables, and its rate over the last few seconds. The
    worker writes it about once a second (engine/phase_progress.py) and clears it when the
    phase ends."""

    phase: str
    done: int
    total: int
    rate_per_second: float | None
    at: datetime

    @property
    def remaining_seconds(self) -> float | None:
        if not self.rate_per_second:
            return None
        return max(0, self.total - self.done) / self.rate_per_second

    def to_json(self) -> dict[str, Any]:
        """As stored in ``tm_migrations.phase_progress``."""
        return {
            "phase": self.phase,
            "done": self.done,
            "total": self.total,
            "ratePerSecond": self.rate_per_second,
            "at": self.at.isoformat(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PhaseProgress:
        return cls(
            phase=data["phase"],
            done=int(data["done"]),
            total=int(data["total"]),
            rate_per_second=data.get("ratePerSecond"),
            at=datetime.fromisoformat(data["at"]),
        )


@dataclass(frozen=True)
class MigrationRecord:
    id: str
    stored_status: Status
    phase: str | None
    dry_run: bool
    config: MigrationConfig
    created_by: str
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    heartbeat_at: datetime | None
    worker: str | None
    total_records: int
    skipped_records: int
    estimated_seconds: float | None
    cancel_requested: bool
    pause_requested: bool
    cancel_reason: str | None
    cancelled_at: datetime | None
    cancelled_by: str | None
    # The time between its start and its last activity that it was not running: paused, or
    # stopped (cancelled, failed, interrupted) until a resume (see claim).
    paused_seconds: float
    rate_per_second: float | None
    batch_size_current: int | None
    error_message: str | None
    warnings: list[str]
    phase_seconds: dict[str, float]
    verification: dict[str, Any] | None
    rolled_back_at: datetime | None
    rollback_seconds: float | None
    tables: list[TableProgress] = field(default_factory=list)
    # Set only while it is in the backup or verification phase.
    phase_progress: PhaseProgress | None = None
    # The last rollback's progress (storage.rollback_progress); None before any rollback.
    rollback_progress: RollbackProgress | None = None
    # The epoch of the latest claim (see migration_claims): the worker holding it may write.
    claim_epoch: int = 0
    # Set while its worker waits for its schedule (common/windows.py): the words status shows.
    # None for an operator's pause, and whenever it is not paused.
    pause_reason: str | None = None
    kind: MigrationKind = MigrationKind.ENCRYPTION

    @property
    def status(self) -> Status:
        """The stored status, except that a live status without a recent heartbeat is interrupted."""
        if self.stored_status in LIVE_STATUSES and not self.worker_alive:
            return Status.INTERRUPTED
        return self.stored_status

    @property
    def worker_alive(self) -> bool:
        if self.heartbeat_at is None:
            return False
        return utc_now() - self.heartbeat_at < timedelta(seconds=HEARTBEAT_STALE_SECONDS)

    @property
    def encrypted_records(self) -> int:
        return sum(table.encrypted_records for table in self.tables)

    @property
    def failed_records(self) -> int:
        return sum(table.failed_records for table in self.tables)

    @property
    def processed_records(self) -> int:
        return sum(table.processed_records for table in self.tables)

    @property
    def is_complete(self) -> bool:
        return self.status in (Status.COMPLETED, Status.ROLLED_BACK)

    @property
    def is_finished(self) -> bool:
        """No worker moves it any more (see Status.is_finished)."""
        return self.status.is_finished

    # What an operator may do with it now (the statuses are in migration_status.py).

    @property
    def skipped_phases(self) -> frozenset[Phase]:
        """The stages this migration does not run: no backup for a dry run, a run without
        backups or a key rotation (no value changes); no verification for a dry run or a run
        told to skip it (a rotation always verifies)."""
        skipped = set()
        config = self.config
        if config.dry_run or not config.create_backups or self.kind is MigrationKind.ROTATION:
            skipped.add(Phase.BACKUP)
        if self.kind is MigrationKind.ENCRYPTION and (config.dry_run or config.skip_integrity_checks):
            skipped.add(Phase.VERIFICATION)
        return frozenset(skipped)

    @property
    def can_cancel(self) -> bool:
        # A rollback is not cancelled: stopped half-way it would leave a mix to explain.
        return self.status in CANCELLABLE_STATUSES and not self.rolling_back

    @property
    def can_pause(self) -> bool:
        return self.status in PAUSABLE_STATUSES

    @property
    def can_continue(self) -> bool:
        return self.status in CONTINUABLE_STATUSES

    @property
    def waits_for_schedule(self) -> bool:
        """Paused by its own schedule (a window closed, a start not yet due), not by an operator."""
        return self.status is Status.PAUSED and self.pause_reason is not None and not self.pause_requested

    @property
    def retries_failed_records(self) -> bool:
        """A completed migration whose failed records a resume would retry."""
        return self.status is Status.COMPLETED and self.failed_records > 0 and not self.dry_run

    @property
    def can_resume(self) -> bool:
        if self.rolling_back:
            return False
        return self.status in RESUMABLE_STATUSES or self.retries_failed_records

    @property
    def rolling_back(self) -> bool:
        """A rollback of it is running now (in whichever process)."""
        return self.rollback_progress is not None and self.rollback_progress.alive

    @property
    def can_rollback(self) -> bool:
        return (
            not self.dry_run
            and self.kind is MigrationKind.ENCRYPTION
            and self.status in ROLLBACK_STATUSES
            and not self.rolling_back
        )

    @property
    def verification_passed(self) -> bool:
        return bool(self.verification and self.verification.get("passed"))

    @property
    def can_purge_backups(self) -> bool:
        """Only once nothing may need them any more: rolled back, or completed and verified. A
        failed, cancelled or interrupted migration may still be rolled back (which falls back on
        them), and an unverified one has not proved its tokens open."""
        if self.rolling_back or self.kind is MigrationKind.ROTATION:
            return False  # a rotation keeps no backups
        return self.status is Status.ROLLED_BACK or (
            self.status is Status.COMPLETED and self.verification_passed
        )

    @property
    def last_active_at(self) -> datetime | None:
        """The last moment a worker was running it: now while one runs it; otherwise its
        completion or its worker's last heartbeat (a paused worker keeps beating, and adds the
        pause to ``paused_seconds`` with each beat). None before it first ran."""
        if self.started_at is None:
            return None
        if self.status is Status.RUNNING:
            return utc_now()
        return self.completed_at or self.heartbeat_at or self.started_at

    @property
    def elapsed_seconds(self) -> float:
        """Active time, the one rule every display uses: from the start to the last moment a
        worker was running it, less the time it was paused or stopped before a resume."""
        end = self.last_active_at
        if self.started_at is None or end is None:
            return 0.0
        return max(0.0, (end - self.started_at).total_seconds() - self.paused_seconds)

    @property
    def remaining_seconds(self) -> float | None:
        """From the recent rate (a moving window), not the average since the start."""
        if self.status is not Status.RUNNING or not self.rate_per_second:
            return None
        remaining = max(0, self.total_records - self.processed_records)
        return remaining / self.rate_per_second

    @property
    def phase_remaining_seconds(self) -> float | None:
        """Time left in the backup or verification under way, from that phase's recent rate;
        None unless a worker is running it."""
        if self.status is not Status.RUNNING or self.phase_progress is None:
            return None
        return self.phase_progress.remaining_seconds


def refuse_during_rollback(record: MigrationRecord, action: str, ticket: str | None = None) -> None:
    """While a rollback runs, no other action may touch the migration (its can_* say so too);
    this says why in words, before a status-based refusal would say something misleading. The
    detached process of a rollback asked for elsewhere passes the ``ticket`` it was given."""
    progress = record.rollback_progress
    if progress is not None and progress.alive and (ticket is None or progress.ticket != ticket):
        raise StateConflict(
            f"A rollback of {record.id} is running, so '{action}' was refused; nothing was changed.",
            hint=f"Follow it with: tui-migrator status {record.id}",
        )


@dataclass(frozen=True)
class Control:
    """The requests a running worker checks between batches (one small query)."""

    cancel_requested: bool
    pause_requested: bool
    paused_seconds: float


def control(engine: Engine, migration_id: str) -> Control:
    with engine.connect() as connection:
        row = connection.execute(
            sa.select(
                migrations_table.c.cancel_requested,
                migrations_table.c.pause_requested,
                migrations_table.c.paused_seconds,
            ).where(migrations_table.c.id == migration_id)
        ).one()
    return Control(bool(row.cancel_requested), bool(row.pause_requested), row.paused_seconds or 0.0)


def worker_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def worker_host(identity: str) -> str:
    """The machine a :func:`worker_identity` names."""
    return identity.rpartition(":")[0]


def unknown_migration(migration_id: str) -> UnknownMigration:
    """The one error for an id no migration of this database has, wherever it is asked for."""
    return UnknownMigration(
        f"There is no migration '{migration_id}' in this database.",
        hint="List migrations with: tui-migrator list",
    )


def exists(connection: Connection, migration_id: str) -> bool:
    query = sa.select(migrations_table.c.id).where(migrations_table.c.id == migration_id)
    return connection.execute(query).first() is not None


def get(engine: Engine, migration_id: str) -> MigrationRecord:
    with engine.connect() as connection:
        return load(connection, migration_id)


def load(connection: Connection, migration_id: str, *, for_update: bool = False) -> MigrationRecord:
    """The migration as stored. ``for_update`` locks its row until the transaction ends, for
    callers that decide on what they read and then write it back: on PostgreSQL two processes
    would otherwise both read the same state (SQLite's write lock already serialises them)."""
    query = sa.select(migrations_table).where(migrations_table.c.id == migration_id)
    if for_update:
        query = query.with_for_update()
    row = connection.execute(query).mappings().one_or_none()
    if row is None:
        raise unknown_migration(migration_id)
    tables = (
        connection.execute(
            sa.select(migration_tables_table)
            .where(migration_tables_table.c.migration_id == migration_id)
            .order_by(migration_tables_table.c.position)
        )
        .mappings()
        .all()
    )
    failed: dict[str, int] = dict(
        connection.execute(
            sa.select(failed_records_table.c.table_name, sa.func.count())
            .where(
                failed_records_table.c.migration_id == migration_id,
                failed_records_table.c.resolved.is_(False),
            )
            .group_by(failed_records_table.c.table_name)
        ).all()
    )
    return _record(row, [_table(t, failed.get(t["table_name"], 0)) for t in tables])


def list_records(
    engine: Engine, *, limit: int | None = None, status: Status | None = None
) -> list[MigrationRecord]:
    with engine.connect() as connection:
        query = sa.select(migrations_table.c.id).order_by(
            migrations_table.c.created_at.desc(), migrations_table.c.id.desc()
        )
        ids = [row.id for row in connection.execute(query)]
        records = [load(connection, migration_id) for migration_id in ids]
    if status is not None:
        records = [record for record in records if record.status is status]
    return records[:limit] if limit is not None else records


def update(connection: Connection, migration_id: str, **values: Any) -> None:
    connection.execute(
        sa.update(migrations_table).where(migrations_table.c.id == migration_id).values(**values)
    )


def update_table(connection: Connection, migration_id: str, table_name: str, **values: Any) -> None:
    connection.execute(
        sa.update(migration_tables_table)
        .where(
            migration_tables_table.c.migration_id == migration_id,
            migration_tables_table.c.table_name == table_name,
        )
        .values(**values)
    )


def count_batch(
    connection: Connection,
    migration_id: str,
    table_name: str,
    *,
    done: int,
    rows_read: int,
    at: datetime,
    backups: BackupChange | None = None,
) -> None:
    """A committed batch's bookkeeping, in its transaction: ``done`` more rows of the table
    processed (encrypted, or re-sealed by a rotation), and its entry in the batch log (none when
    ``rows_read`` is 0: a retry's failures, the calibration) with what it did to the backup copy
    (``backups``; None where the migration keeps none)."""
    # Both statements built once (storage/built_statements.py): a run counts every batch.
    connection.execute(
        built_once(migration_tables_table, "count_batch", _count_batch),
        {"tm_migration": migration_id, "tm_table": table_name, "tm_done": done},
    )
    if rows_read:
        connection.execute(
            built_once(batch_log_table, "insert", lambda: sa.insert(batch_log_table)),
            {
                "migration_id": migration_id,
                "table_name": table_name,
                "rows": rows_read,
                "seconds": 0.0,
                "committed_at": at,
                "backup_rows": None if backups is None else backups.rows,
                "backup_digest": None if backups is None else backups.digest_text,
            },
        )


def _count_batch() -> sa.Update:
    table = migration_tables_table.c
    return (
        sa.update(migration_tables_table)
        .where(
            table.migration_id == sa.bindparam("tm_migration"), table.table_name == sa.bindparam("tm_table")
        )
        .values(encrypted_records=table.encrypted_records + sa.bindparam("tm_done", type_=sa.Integer))
    )


@dataclass(frozen=True)
class BackupChange:
    """What writes made to a backup copy: the backups they added (a row's backup replaced adds
    none) and the change to the sum of the copy's stored digests (engine/backup.stored_digest),
    modulo DIGEST_MODULUS, so that the changes of every batch add up to the copy's own sum."""

    rows: int = 0
    digest: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "digest", self.digest % DIGEST_MODULUS)

    @property
    def digest_text(self) -> str:
        return f"{self.digest:064x}"

    def __add__(self, other: BackupChange) -> BackupChange:
        return BackupChange(self.rows + other.rows, self.digest + other.digest)

    @classmethod
    def of_text(cls, rows: int, digest_text: str) -> BackupChange:
        return cls(rows, int(digest_text, 16))


# Sums of digests are kept modulo this (SHA-256's range): a sum's text has 64 hex digits.
DIGEST_MODULUS = 2**256


def backup_ledger(connection: Connection, migration_id: str, table_name: str) -> BackupChange | None:
    """What the batches of ``table_name`` recorded writing to its backup copy, added up (None:
    no batch recorded any, as none did before schema version 10)."""
    log = batch_log_table.c
    rows = connection.execute(
        sa.select(log.backup_rows, log.backup_digest).where(
            log.migration_id == migration_id, log.table_name == table_name, log.backup_digest.is_not(None)
        )
    ).all()
    if not rows:
        return None
    return sum((BackupChange.of_text(count or 0, digest) for count, digest in rows), BackupChange())


def hold_table_progress(connection: Connection, migration_id: str, table_name: str) -> None:
    """Hold the progress row of ``table_name`` for the rest of ``connection``'s transaction: on
    PostgreSQL it is locked, and every batch updates it (count_batch) before it commits, so no
    batch of the table commits meanwhile; SQLite writes one transaction at a time anyway (this
    reads it there)."""
    table = migration_tables_table.c
    connection.execute(
        sa.select(table.table_name)
        .where(table.migration_id == migration_id, table.table_name == table_name)
        .with_for_update()
    )


def enter_backup_copy(
    connection: Connection, migration_id: str, table_name: str, copied: BackupChange, at: datetime
) -> None:
    """The batch log's first entry for a backup copy a version before schema version 10 made
    (before any batch, then its batches for rows that appeared after it), as this version first
    finds it: the batches' own entries add to it from here on."""
    connection.execute(
        sa.insert(batch_log_table).values(
            migration_id=migration_id,
            table_name=table_name,
            rows=0,
            seconds=0.0,
            committed_at=at,
            backup_rows=copied.rows,
            backup_digest=copied.digest_text,
        )
    )


def companions_left_by_rolled_back(connection: Connection, table_name: str) -> set[str]:
    """Companion columns of ``table_name`` added by migrations rolled back since: a rollback
    that left one in place because a later migration still kept tokens there (rolled back out
    of order) leaves it to whichever rollback empties it."""
    rows = connection.execute(
        sa.select(migration_tables_table.c.companions_added)
        .join(migrations_table, migrations_table.c.id == migration_tables_table.c.migration_id)
        .where(
            migration_tables_table.c.table_name == table_name,
            migrations_table.c.status == Status.ROLLED_BACK.value,
        )
    )
    return {name for (text,) in rows for name in json.loads(text or "[]")}


def failed_records(
    engine: Engine, migration_id: str, *, include_resolved: bool = False
) -> list[dict[str, Any]]:
    condition = failed_records_table.c.migration_id == migration_id
    if not include_resolved:
        condition = sa.and_(condition, failed_records_table.c.resolved.is_(False))
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(failed_records_table)
            .where(condition)
            .order_by(failed_records_table.c.table_name, failed_records_table.c.key_display)
        ).mappings()
        return [dict(row) for row in rows]


def _record(row: sa.RowMapping, tables: list[TableProgress]) -> MigrationRecord:
    return MigrationRecord(
        id=row["id"],
        stored_status=Status(row["status"]),
        phase=row["phase"],
        dry_run=bool(row["dry_run"]),
        config=MigrationConfig.model_validate(json.loads(row["config"])),
        created_by=row["created_by"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        completed_at=row["completed_at"],
        heartbeat_at=row["heartbeat_at"],
        worker=row["worker"],
        total_records=row["total_records"],
        skipped_records=row["skipped_records"],
        estimated_seconds=row["estimated_seconds"],
        cancel_requested=bool(row["cancel_requested"]),
        pause_requested=bool(row["pause_requested"]),
        cancel_reason=row["cancel_reason"],
        cancelled_at=row["cancelled_at"],
        cancelled_by=row["cancelled_by"],
        paused_seconds=row["paused_seconds"] or 0.0,
        rate_per_second=row["rate_per_second"],
        batch_size_current=row["batch_size_current"],
        error_message=row["error_message"],
        warnings=json.loads(row["warnings"] or "[]"),
        phase_seconds=json.loads(row["phase_seconds"] or "{}"),
        verification=json.loads(row["verification"]) if row["verification"] else None,
        rolled_back_at=row["rolled_back_at"],
        rollback_seconds=row["rollback_seconds"],
        tables=tables,
        rollback_progress=rollback_progress.parse(row["rollback_progress"]),
        phase_progress=_phase_progress(row["phase_progress"], row["phase"]),
        claim_epoch=row["claim_epoch"] or 0,
        pause_reason=row["pause_reason"],
        kind=MigrationKind(row["kind"] or MigrationKind.ENCRYPTION.value),
    )


def _phase_progress(text: str | None, phase: str | None) -> PhaseProgress | None:
    """The progress of the phase the migration is in: figures another phase left (which a
    worker that stopped mid-phase may have) are not shown as this one's."""
    if not text:
        return None
    progress = PhaseProgress.from_json(json.loads(text))
    return progress if progress.phase == phase else None


def _table(row: sa.RowMapping, failed: int) -> TableProgress:
    return TableProgress(
        name=row["table_name"],
        category=row["category"],
        total_records=row["total_records"],
        encrypted_records=row["encrypted_records"],
        failed_records=failed,
        done=bool(row["done"]),
        backup_table=row["backup_table"],
        backup_rows=row["backup_rows"],
        backup_digest=row["backup_digest"],
        backup_verified=bool(row["backup_verified"]),
        resume_key=row["checkpoint_key"],
        companions_added=json.loads(row["companions_added"] or "[]"),
    )
