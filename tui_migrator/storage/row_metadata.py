"""The row metadata a migration keeps of every row it sealed: which key, the digest of the
original values, the cells it sealed and the digest of the tokens it wrote in them
(``tm_row_metadata``; see storage/sealed_cells.py).

Written a batch at a time and read back a batch at a time (when a batch meets rows sealed in an
earlier pass, by verification, by rollback), so both are one statement per batch.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection

from tui_migrator.storage.database import (
    DriverStatement,
    PlainInsertFirst,
    text_array,
    text_rows,
    text_rows_parameters,
    upsert,
)
from tui_migrator.storage.keyring import ALGORITHM
from tui_migrator.storage.tables import UtcDateTime, migration_tables_table, row_metadata_table
from tui_migrator.storage.text_arrays import text_array_text

# What each sealed row records (with the migration, the table and the time of the batch).
RECORDED = ("row_key", "key_id", "digest", "sealed_columns", "tokens_digest")
_BATCH = "tm_batch"
# sealed_rows' parameter on PostgreSQL: the keys looked up, as one text[] (storage.text_arrays)
_KEYS = "tm_row_keys"
_UPDATED = ["key_id", "algorithm", "encrypted_at", "digest", "sealed_columns", "tokens_digest"]
# The per-row upsert, by dialect (DriverStatement keeps its compiled forms).
_PER_ROW: dict[str, DriverStatement] = {}


def record(
    connection: Connection,
    migration_id: str,
    table: str,
    sealed: Sequence[dict[str, Any]],
    at: datetime,
) -> None:
    """Record (or replace) the metadata of the ``sealed`` rows (each with the RECORDED keys)."""
    if not sealed:
        return
    if connection.dialect.name == "postgresql":
        batch = text_rows_parameters(_BATCH, {name: [item[name] for item in sealed] for name in RECORDED})
        parameters = {
            **batch,
            "migration_id": migration_id,
            "table_name": table,
            "algorithm": ALGORITHM,
            "encrypted_at": at,
        }
        # A row this migration sealed before (sealed again in a later pass) is replaced.
        _record_batch().execute(connection, parameters)
        return
    dialect = connection.dialect.name
    if dialect not in _PER_ROW:
        _PER_ROW[dialect] = DriverStatement(upsert(connection, row_metadata_table, _UPDATED))
    _PER_ROW[dialect].execute(
        connection,
        sealed,
        {"migration_id": migration_id, "table_name": table, "algorithm": ALGORITHM, "encrypted_at": at},
        names=RECORDED,
    )


@lru_cache(maxsize=1)
def _record_batch() -> PlainInsertFirst:
    """PostgreSQL: the batch's rows as one INSERT … SELECT (see database.text_rows), replacing
    rows recorded before — one statement instead of one per row."""
    statement = _insert_from_batch()
    upsert_statement = statement.on_conflict_do_update(
        index_elements=[column.name for column in row_metadata_table.primary_key.columns],
        set_={name: statement.excluded[name] for name in _UPDATED},
    )
    return PlainInsertFirst(statement, upsert_statement)


def _insert_from_batch() -> postgresql.Insert:
    rows = text_rows(_BATCH, RECORDED)
    shared = {
        name: sa.bindparam(name, type_=row_metadata_table.c[name].type)
        for name in ("migration_id", "table_name", "algorithm")
    }
    shared["encrypted_at"] = sa.bindparam("encrypted_at", type_=UtcDateTime())
    columns = [column.name for column in row_metadata_table.columns]
    source = sa.select(*(shared[name] if name in shared else rows.c[name] for name in columns))
    return postgresql.insert(row_metadata_table).from_select(columns, source)


class Recorded(NamedTuple):
    """What a migration recorded of one row it sealed (see storage.sealed_cells)."""

    digest: str  # of the original values of the cells it sealed
    sealed_columns: str | None  # JSON {column: nonce}; None for a version-1 row
    tokens_digest: str | None  # of the tokens it wrote there; None: not recorded, open them
    # The data key that sealed them (a rotation records its new one): its organization is the
    # one the tokens and the digest are bound to, whatever the row's organization column says now.
    key_id: str | None = None


# What sealed_rows reads of each row: its key, then Recorded's fields in their order.
_LOOKED_UP = (
    row_metadata_table.c.row_key,
    row_metadata_table.c.digest,
    row_metadata_table.c.sealed_columns,
    row_metadata_table.c.tokens_digest,
    row_metadata_table.c.key_id,
)


def sealed_rows(
    connection: Connection, migration_id: str, table: str, row_keys: list[str]
) -> dict[str, Recorded]:
    """The row metadata this migration recorded for these rows; rows it did not seal are absent."""
    if connection.dialect.name == "sqlite":
        rows = _sqlite_sealed_rows(connection, migration_id, table, row_keys)
    else:
        # One index probe per key. An IN list (or = ANY) let PostgreSQL's planner, whose
        # statistics lag behind a table a migration is filling, scan every row this migration
        # recorded for the table and filter them: per batch, so the run grew with the square
        # of the table. A lateral lookup per key cannot be planned that way.
        metadata = row_metadata_table.c
        wanted = [*_LOOKED_UP]
        mine = sa.and_(metadata.migration_id == migration_id, metadata.table_name == table)
        keys = sa.func.unnest(text_array(_KEYS))
        key = keys.table_valued("row_key").render_derived(name="wanted")
        found = sa.select(*wanted).where(mine, metadata.row_key == key.c.row_key).limit(1).lateral("found")
        query = sa.select(*(found.c[column.name] for column in wanted)).select_from(
            key.join(found, sa.true())
        )
        rows = list(connection.execute(query, {_KEYS: text_array_text(row_keys)}).all())
    return {row_key: Recorded(*recorded) for row_key, *recorded in rows}


def _sqlite_sealed_rows(
    connection: Connection, migration_id: str, table: str, row_keys: list[str]
) -> list[tuple[Any, ...]]:
    """SQLite: the statement's text made once per number of keys and run by the driver, the
    rows taken from its cursor (text columns, which SQLAlchemy would not process). For an IN
    list of a thousand keys SQLAlchemy's rendering took longer than the lookup itself, and
    verification looks up the metadata of every row. As many keys per statement as this
    SQLite build allows parameters (two are the migration and the table)."""
    driver = connection.connection.driver_connection
    assert isinstance(driver, sqlite3.Connection)  # a SQLite engine's
    per_statement = driver.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) - 2
    rows: list[tuple[Any, ...]] = []
    for start in range(0, len(row_keys), per_statement):
        chunk = row_keys[start : start + per_statement]
        with connection.exec_driver_sql(_sqlite_lookup(len(chunk)), (migration_id, table, *chunk)) as result:
            rows += result.cursor.fetchall()
    return rows


@lru_cache(maxsize=16)
def _sqlite_lookup(keys: int) -> str:
    """SQLite: :func:`sealed_rows`'s statement for ``keys`` keys, with positional parameters:
    the migration, the table, then each key."""
    metadata = row_metadata_table.c
    wanted = ", ".join(column.name for column in _LOOKED_UP)
    return (
        f"SELECT {wanted} FROM {row_metadata_table.name} WHERE {metadata.migration_id.name} = ? "
        f"AND {metadata.table_name.name} = ? AND {metadata.row_key.name} IN ({', '.join('?' * keys)})"
    )


def rows_recorded(connection: Connection, migration_id: str, table: str) -> int:
    """How many rows of ``table`` the migration recorded sealing."""
    metadata = row_metadata_table.c
    query = sa.select(sa.func.count()).where(
        metadata.migration_id == migration_id, metadata.table_name == table
    )
    return int(connection.execute(query).scalar_one())


def possible_owners(connection: Connection, table: str, excluding: str) -> list[str]:
    """The migrations that may have recorded sealed cells of ``table``: every migration of it
    but ``excluding`` (a key rotation, which re-seals cells and owns none)."""
    tables = migration_tables_table.c
    return list(
        connection.execute(
            sa.select(tables.migration_id)
            .where(tables.table_name == table, tables.migration_id != excluding)
            .order_by(tables.migration_id)
        ).scalars()
    )
