"""Where an estimate's sample is written: temporary tables that shadow the real ones.

The calibration times the migration's own code on a sample of rows, writes included. Writing
into the real tables (even in a transaction rolled back) would add companion columns to the
user's table — an ACCESS EXCLUSIVE lock on PostgreSQL that makes the application's reads wait —
and take SQLite's write lock. Instead the sample is copied into a temporary table of the same
name, with the companion columns the migration would add, and the tool's own tables the batch
writes to get empty temporary twins. Both SQLite and PostgreSQL look a name up in the session's
temporary tables first, so the unchanged statements of the real run write only there; the
calibration's transaction then rolls them back with everything else.

Reading the real table (the sample itself) is the only thing the calibration does to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.schema import CreateTable

from tui_migrator.storage.column_storage import TableAccess, key_of
from tui_migrator.storage.tables import (
    failed_records_table,
    migration_tables_table,
    row_metadata_table,
)

# The tool tables a batch writes (the batch log is written only for a real run's batches).
SHADOWED_TOOL_TABLES = (row_metadata_table, failed_records_table, migration_tables_table)


def create_temporary(connection: Connection, table: sa.Table) -> None:
    """Create ``table`` (a definition, e.g. one of the tool's) as a temporary table."""
    ddl = str(CreateTable(table.to_metadata(sa.MetaData())).compile(dialect=connection.dialect))
    connection.exec_driver_sql(ddl.replace("CREATE TABLE", "CREATE TEMPORARY TABLE", 1))


def shadow(connection: Connection, access: TableAccess, rows: Sequence[Any]) -> TableAccess:
    """In ``connection``'s transaction: the temporary twins of the tool tables, and of the user
    table holding ``rows`` (copied whole, on the server) and the companion columns the migration
    would add. Returns the access to the shadow (same name, so the same statements reach it)."""
    quote = connection.dialect.identifier_preparer.quote
    for table in SHADOWED_TOOL_TABLES:
        create_temporary(connection, table)
    name = quote(access.table.name)
    if connection.dialect.name == "sqlite":
        schema = "main"
        # Same columns with the same affinities (SQLite derives each from the original's); the
        # key gets a unique index: without one, each row's UPDATE by key would scan the whole
        # sample, a cost that grows with the sample (twice the real write's at 1,200 rows) and
        # that no run pays.
        connection.exec_driver_sql(f"CREATE TEMPORARY TABLE {name} AS SELECT * FROM main.{name} WHERE 0")
        key = ", ".join(quote(column) for column in access.mapped.primary_key)
        index = quote(f"tm_shadow_key_{access.table.name}")
        connection.exec_driver_sql(f"CREATE UNIQUE INDEX temp.{index} ON {name} ({key})")
    else:
        schema = connection.exec_driver_sql("SELECT current_schema()").scalar_one()
        # With its indexes: a batch's UPDATE writes an entry in each (timed and measured).
        connection.exec_driver_sql(
            f"CREATE TEMPORARY TABLE {name} (LIKE {quote(schema)}.{name} INCLUDING INDEXES)"
        )
    if rows:
        # The real table named with its schema (the bare name now finds the shadow).
        real = replace(
            access, table=sa.Table(access.table.name, sa.MetaData(), *_columns(access), schema=schema)
        )
        target = sa.Table(access.table.name, sa.MetaData(), *_columns(access))
        connection.execute(
            sa.insert(target).from_select(
                [column.name for column in target.columns],
                sa.select(*real.table.columns).where(real.key_in([key_of(access, row) for row in rows])),
            )
        )
    columns = _columns(access)
    for column in access.mapped.columns:
        if column.companion is not None and not access.has_companion(column):
            connection.exec_driver_sql(f"ALTER TABLE {name} ADD COLUMN {quote(column.companion)} TEXT")
            columns.append(sa.Column(column.companion, sa.Text))
    return replace(access, table=sa.Table(access.table.name, sa.MetaData(), *columns))


def _columns(access: TableAccess) -> list[sa.Column[Any]]:
    return [sa.Column(column.name, column.type, key=column.key) for column in access.table.columns]
