"""What the last sweep of a migration did and proved: ``tm_migrations.swept_at`` and ``.sweep``.

The sweep (engine/sweep.py) stores its result here as JSON of names, counts and keyed digests —
never a value — so ``status`` and ``report`` can say whether a migration is swept.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tui_migrator.common.migration_config import MigrationConfig
from tui_migrator.storage.migration_status import Status
from tui_migrator.storage.tables import migrations_table


@dataclass(frozen=True)
class SweepRecord:
    swept_at: datetime
    result: dict[str, Any]


def read(connection: Connection, migration_id: str) -> SweepRecord | None:
    """The last sweep of the migration, or None when none ran since it last changed data."""
    row = connection.execute(
        sa.select(migrations_table.c.swept_at, migrations_table.c.sweep).where(
            migrations_table.c.id == migration_id
        )
    ).one_or_none()
    if row is None or row.swept_at is None or not row.sweep:
        return None
    return SweepRecord(row.swept_at, json.loads(row.sweep))


def write(connection: Connection, migration_id: str, swept_at: datetime, result: dict[str, Any]) -> None:
    connection.execute(
        sa.update(migrations_table)
        .where(migrations_table.c.id == migration_id)
        .values(swept_at=swept_at, sweep=json.dumps(result))
    )


def clear(connection: Connection, migration_id: str) -> None:
    """Forget the last sweep: the migration changed data since, so it proves nothing any more."""
    connection.execute(
        sa.update(migrations_table)
        .where(migrations_table.c.id == migration_id)
        .values(swept_at=None, sweep=None)
    )


def put_off(connection: Connection) -> list[str]:
    """The completed migrations started to be swept later that no sweep has run for since, oldest
    first: the old plaintext their UPDATEs left is still in the database's files."""
    table = migrations_table.c
    rows = connection.execute(
        sa.select(table.id, table.config)
        .where(table.status == Status.COMPLETED.value, table.swept_at.is_(None), table.dry_run.is_(False))
        .order_by(table.created_at, table.id)
    ).all()
    # The one key read, as the configuration's JSON spells it: the dashboard asks every few
    # seconds, and validating every finished migration's whole configuration is not needed here.
    key = str(MigrationConfig.model_fields["sweep_later"].alias)
    return [row.id for row in rows if json.loads(row.config).get(key) is True]
