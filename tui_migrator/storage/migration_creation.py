"""Creating a migration record: its id, its tables' progress rows and its table locks, in one
transaction, retried when concurrent starts collide."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from tui_migrator.common.migration_config import MigrationConfig
from tui_migrator.storage.database import serialized_write
from tui_migrator.storage.migration_status import MigrationKind, Phase, Status
from tui_migrator.storage.table_locks import holders, lock_tables, raise_table_held
from tui_migrator.storage.tables import migration_tables_table, migrations_table, utc_now

# Tries at inserting a new migration when concurrent starts collide (see create).
CREATE_ATTEMPTS = 5


def new_migration_id(connection: Connection, now: datetime) -> str:
    prefix = f"migration_{now:%Y%m%d}_"
    existing = connection.execute(
        sa.select(sa.func.count())
        .select_from(migrations_table)
        .where(migrations_table.c.id.like(prefix + "%"))
    ).scalar_one()
    return f"{prefix}{existing + 1:03d}"


def _retried_when_starts_collide(create_once: Callable[..., str]) -> Callable[..., str]:
    """On PostgreSQL two starts at the same moment both count the day's migrations before either
    inserts, so both pick the same id, or both find the same tables free; the second insert waits
    for the first to commit and then fails. Trying again in a new transaction sees the first one:
    the next id, or the "held by" refusal."""

    @functools.wraps(create_once)
    def create(*args: Any, **kwargs: Any) -> str:
        for attempt in range(CREATE_ATTEMPTS):
            try:
                return create_once(*args, **kwargs)
            except IntegrityError:
                if attempt == CREATE_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    return create


@_retried_when_starts_collide
def create(
    engine: Engine,
    *,
    config: MigrationConfig,
    created_by: str,
    tables: list[tuple[str, str, int]],
    skipped_records: int,
    estimated_seconds: float | None,
    warnings: list[str],
    kind: MigrationKind = MigrationKind.ENCRYPTION,
    also: Callable[[Connection, str], None] | None = None,
) -> str:
    """Insert a planned migration and lock its tables, atomically. Returns its id.

    ``tables`` lists (name, category, rows to migrate). A dry run takes no locks: it writes
    nothing a real migration could collide with. ``also`` writes what must commit with the
    migration, in the same transaction, given the new id (a rotation's new key generations).
    """
    with serialized_write(engine) as connection:
        now = utc_now()
        migration_id = new_migration_id(connection, now)
        if not config.dry_run:
            held = holders(connection, [name for name, _, _ in tables])
            if held:
                raise_table_held(held)
        connection.execute(
            sa.insert(migrations_table).values(
                id=migration_id,
                status=Status.PLANNED.value,
                phase=Phase.PLANNING.value,
                dry_run=config.dry_run,
                config=json.dumps(config.to_json_data()),
                created_by=created_by,
                created_at=now,
                total_records=sum(rows for _, _, rows in tables),
                skipped_records=skipped_records,
                estimated_seconds=estimated_seconds,
                cancel_requested=False,
                pause_requested=False,
                paused_seconds=0.0,
                warnings=json.dumps(warnings),
                phase_seconds="{}",
                kind=kind.value,
            )
        )
        for position, (name, category, rows) in enumerate(tables):
            connection.execute(
                sa.insert(migration_tables_table).values(
                    migration_id=migration_id,
                    table_name=name,
                    category=category,
                    position=position,
                    total_records=rows,
                    encrypted_records=0,
                    done=False,
                    backup_verified=False,
                    companions_added="[]",
                )
            )
        if not config.dry_run:
            lock_tables(connection, migration_id, [name for name, _, _ in tables])
        if also is not None:
            also(connection, migration_id)
        return migration_id
