"""The plaintext the sweep looks for: a sample of migrated rows, their tokens opened in memory.

For each sampled value the bytes the database would have stored for it are indexed for the
byte search; the value itself is never written, logged or reported — a found value is named
only by its keyed digest (ValueCipher.digest with the row's context), which cannot be turned
back into the value. Only text (and binary) values are searched: an integer, a float or a date
is stored as a few binary bytes that occur everywhere in a file by chance, so finding them
would prove nothing. Values shorter than MIN_BYTES are skipped for the same reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tui_migrator.common.errors import DecryptionFailed
from tui_migrator.crypto.ciphers import ValueCipher
from tui_migrator.crypto.tokens import is_token
from tui_migrator.engine.byte_search import CHUNK_BYTES, MIN_BYTES, Needles, search
from tui_migrator.engine.scope import holds_token
from tui_migrator.storage.column_storage import RecordRefused, TableAccess, row_context
from tui_migrator.storage.mapping import ResolvedColumn
from tui_migrator.storage.tables import TABLE_PREFIX

DEFAULT_ROWS_PER_TABLE = 200
# PostgreSQL compresses the largest values of a row over about 2 kB (TOAST); compressed, a value
# cannot be found by a byte search. Values of at least PG_COMPRESSIBLE_BYTES in rows whose
# sensitive text passes PG_LARGE_ROW_BYTES may have been, so they are counted, not searched.
PG_LARGE_ROW_BYTES = 1000
PG_COMPRESSIBLE_BYTES = 32


@dataclass
class TableSample:
    """What was sampled from one table and what the search made of it (counts only)."""

    table: str
    sampled_rows: int = 0
    searched_values: int = 0
    short_values: int = 0
    non_text_values: int = 0
    compressible_values: int = 0
    unopened_values: int = 0
    live_values: int = 0
    found_digests: list[str] = field(default_factory=list)

    @property
    def found_values(self) -> int:
        return len(self.found_digests)

    def to_json(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "sampledRows": self.sampled_rows,
            "searchedValues": self.searched_values,
            "skippedShortValues": self.short_values,
            "skippedNonTextValues": self.non_text_values,
            "skippedMaybeCompressedValues": self.compressible_values,
            "unopenedTokens": self.unopened_values,
            "skippedLiveValues": self.live_values,
            "foundValues": self.found_values,
            # Keyed digests (HMAC bound to table, column, key and organization) of values
            # found: enough to tell which cells they were, useless for learning the values.
            "foundDigests": self.found_digests[:20],
        }


@dataclass
class PlaintextSample:
    needles: Needles = field(default_factory=Needles)
    tables: list[TableSample] = field(default_factory=list)
    # For each value number of ``needles``: its table sample, its keyed digest and its bytes
    # (kept in memory only, to tell a leftover from live data; see live_copies).
    owners: list[tuple[TableSample, str, bytes]] = field(default_factory=list)

    @property
    def searched_values(self) -> int:
        return self.needles.values


def text_encoding(connection: Connection) -> str | None:
    """The Python codec of the bytes the database stores text as, or None if unknown."""
    if connection.dialect.name == "sqlite":
        name = str(connection.exec_driver_sql("PRAGMA encoding").scalar_one())
        return {"UTF-8": "utf-8", "UTF-16le": "utf-16-le", "UTF-16be": "utf-16-be"}.get(name)
    name = str(connection.exec_driver_sql("SHOW server_encoding").scalar_one()).upper()
    # SQL_ASCII stores the client's bytes as sent, and the tool's client encoding is UTF-8.
    return {"UTF8": "utf-8", "SQL_ASCII": "utf-8", "LATIN1": "latin-1"}.get(name)


def sample_table(
    connection: Connection,
    access: TableAccess,
    cipher: ValueCipher,
    sample: PlaintextSample,
    *,
    rows: int,
    encoding: str,
) -> None:
    """Open the tokens of up to ``rows`` rows of the table that hold any, and index the bytes
    of their text values in ``sample``."""
    found = TableSample(access.mapped.name)
    sample.tables.append(found)
    columns = [
        (column, column.companion or column.name)
        for column in access.mapped.columns
        if column.companion is None or access.has_companion(column)
    ]
    if not columns:
        return
    postgres = connection.dialect.name == "postgresql"
    for row in connection.execute(_spread_rows(connection, access, columns, rows)).mappings():
        found.sampled_rows += 1
        try:
            base = row_context(access, row)
        except RecordRefused:
            found.unopened_values += sum(1 for _, where in columns if is_token(row[where]))
            continue
        opened: list[tuple[str, Any, str]] = []
        for column, where in columns:
            token = row[where]
            if not is_token(token):
                continue
            context = base.with_column(column.name)
            try:
                value = cipher.decrypt(token, context)
            except DecryptionFailed:
                found.unopened_values += 1
                continue
            opened.append((column.name, value, cipher.digest(value, context)))
        stored = [(_stored_bytes(access, name, value, encoding), digest) for name, value, digest in opened]
        row_bytes = sum(len(data) for data, _ in stored if data is not None)
        for data, digest in stored:
            if data is None:
                found.non_text_values += 1
            elif len(data) < MIN_BYTES:
                found.short_values += 1
            elif postgres and row_bytes > PG_LARGE_ROW_BYTES and len(data) >= PG_COMPRESSIBLE_BYTES:
                found.compressible_values += 1
            else:
                sample.needles.add(data)
                sample.owners.append((found, digest, data))
                found.searched_values += 1


def live_copies(
    connection: Connection, values: list[bytes], encoding: str, tables: list[str] | None
) -> set[int]:
    """Which of ``values`` (by position) occur in live data: in any text or binary value of the
    ``tables`` whose files were searched (None: every table but the tool's). A byte search cannot
    tell their copies in the files from that live data (a patient's surname in a contact's name,
    a category not migrated), so they prove nothing either way. Reads those tables whole: it runs
    only when something was found."""
    needles = Needles()
    for value in values:
        needles.add(value)
    if tables is None:
        tables = [
            name for name in sa.inspect(connection).get_table_names() if not name.startswith(TABLE_PREFIX)
        ]
    return search(needles, _live_bytes(connection, tables, encoding)).found_values(needles)


def _live_bytes(connection: Connection, tables: list[str], encoding: str) -> Iterator[bytes]:
    """Every text and binary value of ``tables``, as stored, in chunks."""
    quote = connection.dialect.identifier_preparer.quote
    postgres = connection.dialect.name == "postgresql"
    pending: list[bytes] = []
    size = 0
    for name in tables:
        # PostgreSQL: every column but bytea as its text, so JSON and arrays are searched too.
        selected = ", ".join(
            f"{quote(c['name'])}::text"
            if postgres and not isinstance(c["type"], sa.LargeBinary)
            else quote(c["name"])
            for c in sa.inspect(connection).get_columns(name)
        )
        for row in connection.exec_driver_sql(f"SELECT {selected} FROM {quote(name)}"):
            for value in row:
                data = value.encode(encoding) if isinstance(value, str) else value
                if isinstance(data, bytes):
                    pending.append(data)
                    size += len(data) + 1
            if size >= CHUNK_BYTES:
                yield b"\x00".join(pending)
                pending, size = [], 0
    yield b"\x00".join(pending)


def _spread_rows(
    connection: Connection, access: TableAccess, columns: list[tuple[ResolvedColumn, str]], rows: int
) -> sa.Select[Any]:
    """Up to ``rows`` rows holding tokens, spread evenly over the table in key order: every
    n-th one. The same on every run (a random sample would make two sweeps of one database
    disagree for no reason), and from the whole table rather than its first rows."""
    holding = sa.or_(*(holds_token(access.table.c[where]) for _, where in columns))
    total = connection.execute(
        sa.select(sa.func.count()).select_from(access.table).where(holding)
    ).scalar_one()
    step = max(1, -(-int(total) // rows))
    numbered = (
        access.select_rows()
        .where(holding)
        .add_columns(sa.func.row_number().over(order_by=access.key_columns).label("tm_sample_number"))
        .subquery()
    )
    wanted = [column for column in numbered.c if column.name != "tm_sample_number"]
    return (
        sa.select(*wanted)
        .where((numbered.c.tm_sample_number - 1) % step == 0)
        .order_by(numbered.c.tm_sample_number)
        .limit(rows)
    )


def _stored_bytes(access: TableAccess, name: str, value: Any, encoding: str) -> bytes | None:
    """The bytes the database stores ``value`` as in column ``name``; None where they are not
    searchable (numbers, dates, booleans, JSON; jsonb is a binary format)."""
    column_type = access.table.c[name].type
    if isinstance(value, str) and isinstance(column_type, sa.String) and not isinstance(column_type, sa.Enum):
        return value.encode(encoding)
    if isinstance(value, bytes) and isinstance(column_type, sa.LargeBinary):
        return value
    return None
