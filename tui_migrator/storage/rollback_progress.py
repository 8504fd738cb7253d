"""A rollback under way, as every process sees it: how far it got, and whether it is alive.

A rollback runs in a process of its own (so it survives the terminal, and the TUI that asked for
it stays responsive); the monitor, ``status`` and the list follow it through this record in
``tm_migrations.rollback_progress``. Like a migration's worker, it proves it is alive with a
heartbeat: a record whose heartbeat has gone stale is a rollback that stopped part-way (killed,
or its machine went down), which the operator can run again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from tui_migrator.storage.database import serialized_write
from tui_migrator.storage.tables import migrations_table, utc_now

# Same rule as a migration's worker (storage.migration_records.HEARTBEAT_STALE_SECONDS): a
# rollback writes at least this often while it works, so silence this long means it is gone.
STALE_SECONDS = 15.0
# Progress is written at most this often: one small UPDATE a second costs nothing beside the
# rollback's own writes, and the monitor polls once a second.
WRITE_EVERY_SECONDS = 1.0


@dataclass(frozen=True)
class RollbackProgress:
    started_at: datetime
    heartbeat_at: datetime
    restored_rows: int
    rows_to_restore: int
    table: str | None
    tables_done: int
    tables_total: int
    finished: bool = False
    error: str | None = None
    # Set when the rollback was asked for in one process and runs in a detached one: the
    # detached process shows it to claim the rollback its requester marked as starting.
    ticket: str | None = None

    @property
    def alive(self) -> bool:
        """Under way now: not finished, not failed, and its heartbeat is recent."""
        if self.finished or self.error is not None:
            return False
        return utc_now() - self.heartbeat_at < timedelta(seconds=STALE_SECONDS)

    @property
    def stopped_part_way(self) -> bool:
        """Started, and neither finished nor alive: failed, killed or lost with its machine."""
        return not self.finished and not self.alive

    def to_json(self) -> dict[str, Any]:
        return {
            "startedAt": self.started_at.isoformat(),
            "heartbeatAt": self.heartbeat_at.isoformat(),
            "restoredRows": self.restored_rows,
            "rowsToRestore": self.rows_to_restore,
            "table": self.table,
            "tablesDone": self.tables_done,
            "tablesTotal": self.tables_total,
            "finished": self.finished,
            "error": self.error,
            "ticket": self.ticket,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RollbackProgress:
        return cls(
            started_at=datetime.fromisoformat(data["startedAt"]),
            heartbeat_at=datetime.fromisoformat(data["heartbeatAt"]),
            restored_rows=int(data["restoredRows"]),
            rows_to_restore=int(data["rowsToRestore"]),
            table=data.get("table"),
            tables_done=int(data["tablesDone"]),
            tables_total=int(data["tablesTotal"]),
            finished=bool(data.get("finished", False)),
            error=data.get("error"),
            ticket=data.get("ticket"),
        )


def parse(text: str | None) -> RollbackProgress | None:
    return None if not text else RollbackProgress.from_json(json.loads(text))


def write(engine: Engine, migration_id: str, progress: RollbackProgress) -> None:
    with serialized_write(engine) as connection:
        write_on(connection, migration_id, progress)


def write_on(connection: Connection, migration_id: str, progress: RollbackProgress) -> None:
    """In the caller's transaction (the one that marks the migration rolled back)."""
    connection.execute(
        sa.update(migrations_table)
        .where(migrations_table.c.id == migration_id)
        .values(rollback_progress=json.dumps(progress.to_json()))
    )


def starting(rows_to_restore: int, tables_total: int, ticket: str | None = None) -> RollbackProgress:
    now = utc_now()
    return RollbackProgress(
        started_at=now,
        heartbeat_at=now,
        restored_rows=0,
        rows_to_restore=rows_to_restore,
        table=None,
        tables_done=0,
        tables_total=tables_total,
        ticket=ticket,
    )
