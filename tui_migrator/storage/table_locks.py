"""Which migration holds which table: one migration at a time may change a table, from the
moment it is created until it completes or is rolled back."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tui_migrator.common.errors import StateConflict
from tui_migrator.storage.tables import table_locks_table


def holders(connection: Connection, table_names: list[str]) -> dict[str, str]:
    rows = connection.execute(
        sa.select(table_locks_table.c.table_name, table_locks_table.c.migration_id).where(
            table_locks_table.c.table_name.in_(table_names)
        )
    )
    return {row.table_name: row.migration_id for row in rows}


def raise_table_held(held: dict[str, str]) -> None:
    table, migration_id = next(iter(sorted(held.items())))
    raise StateConflict(
        f"Table '{table}' is held by migration {migration_id}"
        + (f" (and {len(held) - 1} more tables)" if len(held) > 1 else "")
        + "; only one migration at a time may work on a table. Nothing was changed.",
        hint=f"Wait for it to complete, or resume or roll back {migration_id} first "
        f"(tui-migrator status {migration_id}).",
    )


def lock_tables(connection: Connection, migration_id: str, table_names: list[str]) -> None:
    for name in table_names:
        connection.execute(sa.insert(table_locks_table).values(table_name=name, migration_id=migration_id))


def release_locks(connection: Connection, migration_id: str) -> None:
    connection.execute(sa.delete(table_locks_table).where(table_locks_table.c.migration_id == migration_id))


def retake(connection: Connection, migration_id: str, table_names: list[str]) -> None:
    """Hold ``table_names`` for the migration again (a claim: a run, a resume, a rollback):
    those it still holds stay held, those released since are taken, and a table another
    migration holds now refuses the claim."""
    held = holders(connection, table_names)
    others = {table: holder for table, holder in held.items() if holder != migration_id}
    if others:
        raise_table_held(others)
    lock_tables(connection, migration_id, [name for name in table_names if name not in held])
