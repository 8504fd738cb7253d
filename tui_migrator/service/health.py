"""The health report: can a migration run safely here, now? Needs no role: it shows no patient
data, and an operator without one must still be able to see why nothing works."""

from __future__ import annotations

import logging
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tui_migrator.common.errors import MigratorError
from tui_migrator.common.models import ResponseModel
from tui_migrator.crypto.canary import canary_round_trips
from tui_migrator.service.session import Session
from tui_migrator.storage import audit_triggers, operators, sqlite_library, sweep_records
from tui_migrator.storage.database import database_file, redacted
from tui_migrator.storage.migration_status import FINISHED_STATUSES, LIVE_STATUSES
from tui_migrator.storage.tables import migrations_table, utc_now

log = logging.getLogger(__name__)

# The seed's alert threshold: below this much free disk, backups are at risk.
MIN_FREE_DISK_FRACTION = 0.20
# A sealed backup of a table takes about this much more room than the table itself.
BACKUP_SPACE_FACTOR = 1.5


class SystemHealth(ResponseModel):
    migration_engine_online: bool
    running_migrations: int
    encryption_system_ready: bool
    # tm_audit's append-only triggers are in force (changes are refused while they are not).
    audit_trail_protected: bool
    backup_system_ready: bool
    database: str
    database_dialect: str
    data_keys: int
    master_key_source: str
    master_key_fingerprint: str
    free_disk_bytes: int | None
    free_disk_percent: float | None
    database_bytes: int | None
    # The directory whose disk was measured (where backups go).
    disk_checked_path: str
    # The SQLite library this Python links (on SQLite databases; None on PostgreSQL).
    sqlite_version: str | None


class RecentActivity(ResponseModel):
    """Migrations created in the last 24 hours. A migration succeeded when it completed — also
    when it was rolled back afterwards, on purpose; it failed when it ended failed, cancelled
    or interrupted without completing. ``success_rate`` is succeeded / ended, as the seed's
    percentage text, or "n/a" while none has ended (never a made-up 0 % or 100 %)."""

    last24_hours: int
    ended_last24_hours: int
    succeeded_last24_hours: int
    success_rate: str
    average_records_per_migration: int


class OperatorInfo(ResponseModel):
    user: str
    role: str | None
    readonly: bool


class HealthReport(ResponseModel):
    system_health: SystemHealth
    recent_activity: RecentActivity
    operator: OperatorInfo
    alerts: list[str]
    recommendations: list[str]
    last_updated: datetime


class DiskSpace(ResponseModel):
    free_bytes: int
    total_bytes: int
    database_bytes: int | None
    checked_path: str

    @property
    def free_fraction(self) -> float:
        return self.free_bytes / self.total_bytes if self.total_bytes else 0.0

    @property
    def enough_for_backups(self) -> bool:
        needed = (self.database_bytes or 0) * BACKUP_SPACE_FACTOR
        return self.free_fraction >= MIN_FREE_DISK_FRACTION and self.free_bytes >= needed


def measure_disk(directory: Path, database_file: Path | None) -> DiskSpace:
    """Free space where backups will be written (the database file's disk, else the data dir)."""
    target = database_file.parent if database_file is not None else directory
    while not target.exists() and target != target.parent:
        target = target.parent
    usage = shutil.disk_usage(target)
    database_bytes = None
    if database_file is not None and database_file.exists():
        database_bytes = database_file.stat().st_size
    return DiskSpace(
        free_bytes=usage.free,
        total_bytes=usage.total,
        database_bytes=database_bytes,
        checked_path=str(target),
    )


def recent_activity(connection: Connection, now: datetime) -> RecentActivity:
    since = now - timedelta(hours=24)
    table = migrations_table.c
    rows = connection.execute(
        sa.select(table.status, table.total_records, table.completed_at).where(table.created_at >= since)
    ).all()
    ended = [row for row in rows if row.status in FINISHED_STATUSES]
    # completed_at is set once, when a migration completes; a rollback keeps it.
    succeeded = [row for row in ended if row.completed_at is not None]
    return RecentActivity(
        last24_hours=len(rows),
        ended_last24_hours=len(ended),
        succeeded_last24_hours=len(succeeded),
        success_rate=f"{100 * len(succeeded) / len(ended):.1f}%" if ended else "n/a",
        average_records_per_migration=round(sum(row.total_records for row in rows) / len(rows))
        if rows
        else 0,
    )


def running_migrations(connection: Connection) -> int:
    return connection.execute(
        sa.select(sa.func.count())
        .select_from(migrations_table)
        .where(migrations_table.c.status.in_([status.value for status in LIVE_STATUSES]))
    ).scalar_one()


def advice(
    *,
    running: int,
    disk: DiskSpace,
    encryption_ready: bool,
    dialect: str,
    sweeps_put_off: list[str] | None = None,
) -> tuple[list[str], list[str]]:
    """Alerts (something is wrong) and recommendations (what to do next). ``sweeps_put_off``:
    the completed SQLite migrations whose sweep was put off and has not run."""
    alerts: list[str] = []
    # What is left to do first: each migration's plaintext still in the file.
    recommendations = [
        f"Sweep {migration_id}: its sweep was put off, and the old plaintext is still in the "
        f"database file (tui-migrator sweep {migration_id})"
        for migration_id in sweeps_put_off or []
    ]
    # Then the library's defect, when it has one: before the routine advice (README "The SQLite library").
    library_warning = (
        sqlite_library.wal_reset_bug_warning(sqlite_library.linked_version()) if dialect == "sqlite" else None
    )
    if library_warning is not None:
        recommendations.append(library_warning)
    if not encryption_ready:
        alerts.append("Encryption system not ready: the stored data keys cannot be used.")
    if disk.free_fraction < MIN_FREE_DISK_FRACTION:
        alerts.append(
            f"Low disk space: {100 * disk.free_fraction:.1f}% free at {disk.checked_path} "
            f"(below {100 * MIN_FREE_DISK_FRACTION:.0f}%)."
        )
    elif not disk.enough_for_backups:
        alerts.append(f"Not enough free disk at {disk.checked_path} for sealed backups of the database.")
    if running:
        recommendations.append("Migration in progress - avoid system maintenance")
        recommendations.append("Monitor migration progress regularly")
    if dialect == "postgresql":
        recommendations.append("Backups are written on the PostgreSQL server: check its free disk space too")
    recommendations.append("Ensure adequate disk space for backups")
    recommendations.append("Run a dry run and an estimate before migrating production data")
    return alerts, recommendations


def health_report(session: Session) -> HealthReport:
    """Engine, keys, disk and recent activity."""
    now = utc_now()
    engine = session.engine
    with engine.connect() as connection:
        running = running_migrations(connection)
        audit_problems = audit_triggers.problems(connection)
        activity = recent_activity(connection, now)
        sweeps_put_off = sweep_records.put_off(connection) if engine.dialect.name == "sqlite" else []
        try:
            role = operators.role_of(connection, session.user, session.role_key())
            role_problem = None
        except operators.UnauthenticatedRole as refused:
            role, role_problem = None, refused.message
    encryption_ready, key_count = encryption_canary(session)
    disk = measure_disk(session.settings.data_dir, database_file(engine))
    alerts, recommendations = advice(
        running=running,
        disk=disk,
        encryption_ready=encryption_ready,
        dialect=engine.dialect.name,
        sweeps_put_off=sweeps_put_off,
    )
    if role_problem is not None:
        alerts.append(role_problem)
    if audit_problems:
        alerts.append(
            f"The audit trail is not protected ({'; '.join(audit_problems)}): every change is "
            f"refused until it is. {audit_triggers.RESTORE_HINT}"
        )
    return HealthReport(
        system_health=SystemHealth(
            migration_engine_online=True,
            running_migrations=running,
            encryption_system_ready=encryption_ready,
            audit_trail_protected=not audit_problems,
            backup_system_ready=disk.enough_for_backups,
            database=redacted(engine.url),
            database_dialect=engine.dialect.name,
            data_keys=key_count,
            master_key_source=session.master_key.source,
            master_key_fingerprint=session.master_key.fingerprint,
            free_disk_bytes=disk.free_bytes,
            free_disk_percent=round(100 * disk.free_fraction, 1),
            database_bytes=disk.database_bytes,
            disk_checked_path=disk.checked_path,
            sqlite_version=sqlite_library.version_text(sqlite_library.linked_version())
            if engine.dialect.name == "sqlite"
            else None,
        ),
        recent_activity=activity,
        operator=OperatorInfo(
            user=session.user, role=role.value if role else None, readonly=session.settings.readonly
        ),
        alerts=alerts,
        recommendations=recommendations,
        last_updated=now,
    )


def encryption_canary(session: Session) -> tuple[bool, int]:
    """Whether every stored data key unwraps and round-trips the canary, and how many there are."""
    try:
        keys = session.keyring.describe()
        cipher = session.value_cipher()
        if not all(canary_round_trips(cipher, info.organization_id) for info in keys):
            return False, len(keys)
    except MigratorError:
        log.warning("encryption canary failed", exc_info=True)
        return False, 0
    return True, len(keys)
