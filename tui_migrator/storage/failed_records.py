"""The rows a migration could not process (``tm_failed_records``): recorded with the reason,
counted again when they fail again, and marked resolved when a later batch processes them.

A failure is (encoded row key, the key as shown to people, the reason)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tui_migrator.storage.built_statements import built_once
from tui_migrator.storage.tables import failed_records_table

Failure = tuple[str, str, str]


def record(
    connection: Connection, migration_id: str, table: str, failures: Sequence[Failure], now: datetime
) -> None:
    """Record ``failures`` of ``table``: new rows, or one more attempt of rows listed before."""
    failed = failed_records_table.c
    mine = sa.and_(failed.migration_id == migration_id, failed.table_name == table)
    existing = set(
        connection.execute(
            sa.select(failed.row_key).where(mine, failed.row_key.in_([f[0] for f in failures]))
        ).scalars()
    )
    for row_key, shown, reason in failures:
        if row_key in existing:
            connection.execute(
                sa.update(failed_records_table)
                .where(mine, failed.row_key == row_key)
                .values(reason=reason, attempts=failed.attempts + 1, resolved=False, last_failed_at=now)
            )
        else:
            connection.execute(
                sa.insert(failed_records_table).values(
                    migration_id=migration_id,
                    table_name=table,
                    row_key=row_key,
                    key_display=shown,
                    reason=reason,
                    attempts=1,
                    resolved=False,
                    last_failed_at=now,
                )
            )


def has_unresolved(connection: Connection, migration_id: str, table: str) -> bool:
    """Whether any row of ``table`` is listed as failed and not yet resolved: only then can a
    batch resolve one (the usual case, none, spares an UPDATE over a thousand keys)."""
    query = built_once(failed_records_table, "has_unresolved", _unresolved)
    return connection.execute(query, {"tm_migration": migration_id, "tm_table": table}).first() is not None


def _unresolved() -> sa.Select[Any]:
    failed = failed_records_table.c
    return (
        sa.select(sa.literal(1))
        .where(
            failed.migration_id == sa.bindparam("tm_migration"),
            failed.table_name == sa.bindparam("tm_table"),
            failed.resolved.is_(False),
        )
        .limit(1)
    )


def resolve(connection: Connection, migration_id: str, table: str, row_keys: list[str]) -> None:
    """Rows listed as failed that a batch has now processed."""
    if not row_keys or not has_unresolved(connection, migration_id, table):
        return
    failed = failed_records_table.c
    connection.execute(
        sa.update(failed_records_table)
        .where(failed.migration_id == migration_id, failed.table_name == table, failed.row_key.in_(row_keys))
        .values(resolved=True)
    )
