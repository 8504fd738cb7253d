"""The health report: can a migration run safely here, now?"""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tui_migrator.common.models import ResponseModel
from tui_migrator.storage.tables import migrations_table

# The seed's alert threshold: below this much free disk, backups are at risk.
MIN_FREE_DISK_FRACTION = 0.20
# A sealed backup of a table takes about this much more room than the table itself.
BACKUP_SPACE_FACTOR = 1.5
ACTIVE_STATUSES = ("running", "paused")
FINISHED_STATUSES = ("completed", "failed", "cancelled", "interrupted", "rolled_back")


class SystemHealth(ResponseModel):
    migration_engine_online: bool
    running_migrations: int
    encryption_system_ready: bool
    backup_system_ready: bool
    database: str
    database_dialect: str
    data_keys: int
    master_key_source: str
    master_key_fingerprint: str
    free_disk_bytes: int | None
    free_disk_percent: float | None
    database_bytes: int | None
    disk_checked_at: str


class RecentActivity(ResponseModel):
    last24_hours: int
    success_rate: str | None
    average_records_per_migration: int | None


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
    checked_at: str

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
        checked_at=str(target),
    )


def recent_activity(connection: Connection, now: datetime) -> RecentActivity:
    since = now - timedelta(hours=24)
    rows = connection.execute(
        sa.select(migrations_table.c.status, migrations_table.c.total_records).where(
            migrations_table.c.created_at >= since
        )
    ).all()
    finished = [row for row in rows if row.status in FINISHED_STATUSES]
    succeeded = [row for row in finished if row.status == "completed"]
    return RecentActivity(
        last24_hours=len(rows),
        success_rate=f"{100 * len(succeeded) / len(finished):.1f}%" if finished else None,
        average_records_per_migration=round(sum(row.total_records for row in rows) / len(rows))
        if rows
        else None,
    )


def running_migrations(connection: Connection) -> int:
    return connection.execute(
        sa.select(sa.func.count())
        .select_from(migrations_table)
        .where(migrations_table.c.status.in_(ACTIVE_STATUSES))
    ).scalar_one()


def advice(
    *, running: int, disk: DiskSpace, encryption_ready: bool, dialect: str
) -> tuple[list[str], list[str]]:
    """Alerts (something is wrong) and recommendations (what to do next)."""
    alerts: list[str] = []
    recommendations: list[str] = []
    if not encryption_ready:
        alerts.append("Encryption system not ready: the stored data keys cannot be used.")
    if disk.free_fraction < MIN_FREE_DISK_FRACTION:
        alerts.append(
            f"Low disk space: {100 * disk.free_fraction:.1f}% free at {disk.checked_at} "
            f"(below {100 * MIN_FREE_DISK_FRACTION:.0f}%)."
        )
    elif not disk.enough_for_backups:
        alerts.append(f"Not enough free disk at {disk.checked_at} for sealed backups of the database.")
    if running:
        recommendations.append("Migration in progress - avoid system maintenance")
        recommendations.append("Monitor migration progress regularly")
    if dialect == "postgresql":
        recommendations.append("Backups are written on the PostgreSQL server: check its free disk space too")
    recommendations.append("Ensure adequate disk space for backups")
    recommendations.append("Run a dry run and an estimate before migrating production data")
    return alerts, recommendations
