"""Sealed backups: a copy of every row a migration changes, written in the transaction that changes it.

Each migration gets one backup table per data table, ``tm_bk_<migration>_<table>``, keyed by the
same primary key columns so a batch can see in the same query whether a row is already backed up.
A backup row holds the row's mapped values sealed with AES-256-GCM under a key derived from the
master key for this migration alone: no plaintext copy of medical data stays in the database.

A batch seals each row's backup from the values it encrypts, opens it as it is sealed (it must
give those values back exactly), and writes it in the same transaction as the row's tokens: no
row is ever changed without its backup, whenever the run stops. Each batch also enters in the
batch log what it added to the copy (storage.migration_records.BackupChange); once the batches
are done the copy is read back (:func:`verify_copy`), and its row count and the sum of its rows'
stored digests must equal what the batches entered.
"""

from __future__ import annotations

from base64 import b64encode
from collections.abc import Mapping, Sequence
from hashlib import sha256
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Engine

from tui_migrator.common.errors import OperationFailed
from tui_migrator.crypto.ciphers import RowSealer
from tui_migrator.crypto.codec import LENGTH, encode_value, pack_values
from tui_migrator.engine import read_sizes
from tui_migrator.engine.cpu_pool import BatchContext, CpuPool
from tui_migrator.engine.window_steps import Sharing, Summary, WindowStep, run_step
from tui_migrator.storage import migration_records as migrations
from tui_migrator.storage.built_statements import built_once
from tui_migrator.storage.column_storage import (
    AFTER_KEY,
    FIRST_KEY,
    LAST_KEY,
    LIMIT_PARAMETER,
    ROW_VERSION,
    KeyParameters,
    Shaped,
    TableAccess,
    key_of,
    next_keys_query,
    piece_parameters,
)
from tui_migrator.storage.database import (
    KeysQuery,
    PlainInsertFirst,
    fetch_tuples,
    key_windows,
    text_rows,
    text_rows_parameters,
)
from tui_migrator.storage.identifiers import fit_identifier
from tui_migrator.storage.migration_records import BackupChange

SEALED_COLUMN = "tm_sealed"
# Rows fetched at a time when a backup is read back to be checked.
READ_BACK_ROWS = 1000


class BackupVerificationFailed(OperationFailed):
    code = "backup_verification_failed"


def backup_table_name(migration_id: str, table: str) -> str:
    """``tm_bk_<migration>_<table>``, shortened with a hash where it is longer than PostgreSQL
    allows (on every backend, as it always was: existing backups keep their names)."""
    return fit_identifier(f"tm_bk_{migration_id.removeprefix('migration_')}_{table}")


def backup_table(access: TableAccess, name: str) -> sa.Table:
    """The backup table's shape: the data table's key columns (same types) and the sealed row."""
    key_columns = [
        sa.Column(name, access.copy_type(name), primary_key=True) for name in access.mapped.primary_key
    ]
    return sa.Table(
        name, sa.MetaData(), *key_columns, sa.Column(SEALED_COLUMN, sa.LargeBinary, nullable=False)
    )


def create_backup_table(connection: Connection, access: TableAccess, name: str) -> sa.Table:
    table = backup_table(access, name)
    table.create(connection, checkfirst=True)
    return table


def row_values(access: Shaped, row: Mapping[Any, Any]) -> list[Any]:
    """The stored values of the mapped columns, in mapping order (what a backup keeps)."""
    return [row[column.name] for column in access.mapped.columns]


def packed_row_values(access: Shaped, row: Mapping[Any, Any], encoded: Mapping[str, bytes]) -> bytes:
    """pack_values(row_values(access, row)), taking the encodings already made of some of its
    values (``encoded``, by column: the values sealing just encoded, each the encoding of the
    value the row holds there) instead of encoding them again. Raises UnsupportedValue for a
    value the codec cannot hold exactly."""
    parts: list[bytes] = []
    for column in access.mapped.columns:
        name = column.name
        part = encoded.get(name)
        if part is None:
            value = row[name]
            part = b"" if value is None else encode_value(value)
        # pack's parts, written out: each after its length
        parts += (LENGTH(len(part)), part)
    return b"".join(parts)


def fresh_backup(
    access: Shaped,
    key: tuple[Any, ...],
    packed_values: bytes,
    sealer: RowSealer,
    replaced: bytes | None,
    *,
    packed_key: bytes | None = None,
) -> tuple[dict[str, Any], int]:
    """The insert parameters of one row's backup, its key and its values (``packed_values``:
    packed_row_values) sealed (and opened as they are sealed: RowSealer.seal_packed), and what
    writing it changes in the sum of the copy's stored digests, where it takes the place of
    ``replaced`` (the row's backup until now; None: it had none). ``packed_key``: ``key``
    packed already (pack_values), where the caller has it."""
    if packed_key is None:
        packed_key = pack_values(key)
    entry = dict(zip(access.mapped.primary_key, key, strict=True))
    sealed = sealer.seal_packed(access.mapped.name, key, packed_values, packed_key=packed_key)
    entry[SEALED_COLUMN] = sealed
    change = stored_digest(packed_key, sealed)
    if replaced is not None:
        change -= stored_digest(packed_key, bytes(replaced))
    return entry, change


# The batch of backups insert_by_row_version reads, as database.text_rows names it.
_BATCH = "tm_backups"


def insert_by_row_version(access: TableAccess, table: sa.Table) -> PlainInsertFirst:
    """PostgreSQL: a claimed batch's backups in one statement instead of one INSERT a row. Each
    row's key is taken on the server from the row itself, found by the version the batch read
    it at (TableAccess.row_version_matches, as the batch's UPDATE finds it), so the key's values
    never travel and no type can change them; the sealed bytes travel as base64 text. Its
    parameters are :func:`batch_by_row_version`'s; the rows it inserted are its row count. Run
    before the batch's UPDATE, which gives its rows new versions. A row with a backup already (one
    the application's write made out of date, see seal_batch) has it replaced: the batch is then
    made again with ON CONFLICT (database.PlainInsertFirst)."""
    batch = text_rows(_BATCH, [*ROW_VERSION, SEALED_COLUMN])
    key_names = list(access.mapped.primary_key)
    source = (
        sa.select(
            *(access.value(name) for name in key_names),
            sa.func.decode(batch.c[SEALED_COLUMN], "base64"),
        )
        .select_from(access.table)
        .join(batch, sa.and_(*access.row_version_matches(batch.c)))
    )
    statement = postgresql.insert(table).from_select([*key_names, SEALED_COLUMN], source)
    replacing = statement.on_conflict_do_update(
        index_elements=key_names, set_={SEALED_COLUMN: statement.excluded[SEALED_COLUMN]}
    )
    # An INSERT's row count is kept only when asked for.
    return PlainInsertFirst(
        statement.execution_options(preserve_rowcount=True),
        replacing.execution_options(preserve_rowcount=True),
    )


def batch_by_row_version(written: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """The parameters of :func:`insert_by_row_version` for a batch's sealed rows ``written``,
    each with its row as read (with its version) and its backup (fresh_backup)."""
    return text_rows_parameters(
        _BATCH,
        {
            ROW_VERSION[0]: [item["row"][ROW_VERSION[0]] for item in written],
            ROW_VERSION[1]: [item["row"][ROW_VERSION[1]] for item in written],
            SEALED_COLUMN: [b64encode(item["backup"][SEALED_COLUMN]).decode("ascii") for item in written],
        },
    )


def stored_digest(packed_key: bytes, sealed: bytes) -> int:
    """SHA-256 of one backup row as it is stored, its packed key then its sealed bytes, as a
    number: summed over a table (order-independent), what was written and what is read back."""
    # pack(packed_key, sealed), written out
    return int.from_bytes(
        sha256(LENGTH(len(packed_key)) + packed_key + LENGTH(len(sealed)) + sealed).digest()
    )


def read_back_batch(rows: Sequence[tuple[Any, ...]]) -> int:
    """The sum of the stored digests of backup rows read back (each its key's values, then its
    sealed bytes)."""
    return sum(stored_digest(pack_values(row[:-1]), bytes(row[-1])) for row in rows)


READ_BACK_STEP = "backup-read-back"


def read_back_step(access: TableAccess, table: sa.Table) -> WindowStep:
    """The read-back of the backup ``table``, a window of its keys at a time
    (:func:`read_back_window`). Summary: its rows and the sum of their stored digests."""

    def summarize(result: tuple[int, int]) -> Summary:
        rows, digests = result
        return {"rows": rows, "digests": str(digests)}

    return WindowStep(READ_BACK_STEP, access.mapped.name, read_back_window, (table, access), summarize)


def verify_copy(
    engine: Engine,
    migration_id: str,
    access: TableAccess,
    table: sa.Table,
    pool: CpuPool,
    sharing: Sharing | None = None,
) -> BackupChange:
    """Prove the backup ``table`` holds what the batches of ``access``'s table wrote to it: its
    row count and the sum of its rows' stored digests (:func:`read_back`) must equal what the
    batches entered in the batch log. Each backup was opened as it was sealed and gave back its
    row's values exactly, so the copy holds those very bytes under those keys, and they open to
    the rows as they were. A sum does not depend on the order rows are read in, nor on which
    worker wrote or read which rows.

    The table's progress row is held meanwhile (on PostgreSQL, locked: every batch updates it
    before it commits), so no batch of a joined worker commits between the read-back and the
    batch log's sum. Returns the copy's count and digest sum; raises BackupVerificationFailed."""
    name = access.mapped.name
    with engine.connect() as connection, connection.begin():
        migrations.hold_table_progress(connection, migration_id, name)
        copied = read_back(engine, access, table, pool, sharing)
        written = migrations.backup_ledger(connection, migration_id, name) or BackupChange()
    if copied != written:
        raise BackupVerificationFailed(
            f"The backup copy of {name} ({table.name}) does not hold what the batches wrote to it: "
            f"{copied.rows} rows (digest {copied.digest_text[:12]}) read back where {written.rows} rows "
            f"(digest {written.digest_text[:12]}) were written: something changed the copy after "
            "its batches committed, or one of their writes did not land as recorded.",
            hint="The rows encrypted so far keep their tokens, which open without the backup: "
            "rollback restores every row whose token opens. Find out what changed the backup "
            "table before going on.",
        )
    return copied


def open_backup(
    access: Shaped, row: Mapping[Any, Any], sealed: bytes | None, sealer: RowSealer
) -> list[Any] | None:
    if sealed is None:
        return None
    return sealer.open(access.mapped.name, key_of(access, row), bytes(sealed))


def read_back(
    engine: Engine, access: TableAccess, table: sa.Table, pool: CpuPool, sharing: Sharing | None
) -> BackupChange:
    """The backup copy's row count and the sum of its rows' stored digests, as stored: each
    window of its keys read and digested by the run's workers (or a joined worker) while the
    next window's keys are read here (the copy's rows never pass through this process)."""
    key_columns = [table.c[name] for name in access.mapped.primary_key]
    count = 0
    total = 0

    def add(summary: Summary) -> None:
        nonlocal count, total
        total += int(summary["digests"])
        count += summary["rows"]

    # A window's sealed rows are read whole in a worker process: fewer where the table's rows
    # are large (a row's backup holds as much as the row).
    rows = read_sizes.rows_per_read(engine, access, READ_BACK_ROWS)

    def keys_after(bound: KeyParameters | None) -> sa.Select[Any]:
        query = sa.select(*key_columns).order_by(*key_columns).limit(rows)
        # Bound in the key's own type, as the table's keyset pages are (TableAccess.bound_key).
        return query if bound is None else query.where(sa.tuple_(*key_columns) > access.key_tuple(bound))

    def next_keys(after: tuple[Any, ...] | None) -> KeysQuery:
        return next_keys_query(access, ("backup_keys", table, rows), keys_after, after)

    step = read_back_step(access, table)
    run_step(engine, step, key_windows(engine, next_keys), pool, add, sharing=sharing)
    return BackupChange(count, total)


def read_back_window(
    context: BatchContext,
    table: sa.Table,
    access: TableAccess,
    first: tuple[Any, ...],
    last: tuple[Any, ...],
) -> tuple[int, int]:
    """The rows of the backup ``table`` (of ``access``'s table) with keys from ``first`` to
    ``last``, as stored: how many, and the sum of their stored digests. A batch function
    (engine/cpu_pool.py)."""
    with context.engine.connect() as connection:
        return read_back_rows(connection, table, access, first, last)


def read_back_rows(
    connection: Connection,
    table: sa.Table,
    access: TableAccess,
    first: tuple[Any, ...],
    last: tuple[Any, ...],
) -> tuple[int, int]:
    """:func:`read_back_window` through ``connection`` (what the estimate's calibration times).
    The window is read a piece at a time (read_sizes.pieces): a backup holds as much as its
    row, and rows grown large in the middle of the table are not held a thousand at once."""
    keys = len(access.mapped.primary_key)

    def read(after: tuple[Any, ...] | None, limit: int) -> list[tuple[Any, ...]]:
        query = built_once(
            access, ("stored_piece", table, after is None), lambda: stored_piece(table, access, after is None)
        )
        return fetch_tuples(connection, query, piece_parameters(first, last, after, limit))

    count = digests = 0
    for rows in read_sizes.pieces(
        read, lambda row: tuple(row[:keys]), lambda row: len(row[-1]), last, READ_BACK_ROWS
    ):
        count += len(rows)
        digests += read_back_batch(rows)
    return count, digests


def stored_piece(table: sa.Table, access: TableAccess, first_piece: bool) -> sa.Select[Any]:
    """A piece of the backup rows of a window, in key order, as :func:`read_back_batch` takes
    them: its first (``first_piece``: keys from FIRST_KEY) or a next one (after AFTER_KEY), up
    to LAST_KEY, LIMIT_PARAMETER rows (column_storage.piece_parameters). The keys are bound in
    their own type (TableAccess.key_tuple): the backup's key columns hold the table's stored
    keys in the table's types (see TableAccess.copy_type)."""
    key_columns = [table.c[name] for name in access.mapped.primary_key]
    key = sa.tuple_(*key_columns)
    lower = key >= access.key_tuple(FIRST_KEY) if first_piece else key > access.key_tuple(AFTER_KEY)
    return (
        sa.select(*key_columns, table.c[SEALED_COLUMN])
        .where(lower, key <= access.key_tuple(LAST_KEY))
        .order_by(*key_columns)
        .limit(sa.bindparam(LIMIT_PARAMETER))
    )


def drop_backup_table(connection: Connection, name: str) -> None:
    quote = connection.dialect.identifier_preparer.quote
    connection.exec_driver_sql(f"DROP TABLE IF EXISTS {quote(name)}")
