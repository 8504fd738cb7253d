"""Sealed backups: a copy of every row a migration will change, made and verified before it changes any.

Each migration gets one backup table per data table, ``tm_bk_<migration>_<table>``, keyed by the
same primary key columns so a batch can see in the same query whether a row is already backed up.
A backup row holds the row's mapped values sealed with AES-256-GCM under a key derived from the
master key for this migration alone: no plaintext copy of medical data stays in the database.
"""

from __future__ import annotations

from base64 import b64encode
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from hashlib import sha256
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Engine

from tui_migrator.common.errors import DecryptionFailed, OperationFailed
from tui_migrator.crypto.ciphers import RowSealer
from tui_migrator.crypto.codec import UnsupportedValue, pack, pack_values
from tui_migrator.engine.batch_size import BACKUP_COPY_ROWS
from tui_migrator.engine.cpu_pool import BatchContext, CpuPool
from tui_migrator.engine.retry import RetryPolicy, with_retries
from tui_migrator.engine.scope import pending_keys, pending_rows
from tui_migrator.engine.window_steps import Sharing, Summary, WindowStep, run_step
from tui_migrator.storage.column_storage import (
    ROW_VERSION,
    RowShape,
    Shaped,
    TableAccess,
    key_of,
)
from tui_migrator.storage.database import (
    DriverStatement,
    PlainInsertFirst,
    fetch_dicts,
    fetch_tuples,
    insert_ignoring_duplicates,
    key_windows,
    serialized_write,
    text_rows,
    text_rows_parameters,
)
from tui_migrator.storage.identifiers import fit_identifier

SEALED_COLUMN = "tm_sealed"
_BATCH = "tm_batch"
DIGEST_MODULUS = 2**256
# Rows fetched at a time when a backup is read back to be checked.
READ_BACK_ROWS = 1000
# Passes over each row: copying it, then reading the copy back (what its progress counts).
PASSES = 2


class RowCounter(Protocol):
    """What the backup tells about its progress (engine.phase_progress.PhaseMeter is one);
    a protocol, so this module does not import the meter's (batches imports this module)."""

    def add(self, rows: int) -> None: ...


class BackupVerificationFailed(OperationFailed):
    code = "backup_verification_failed"


@dataclass(frozen=True)
class BackupSummary:
    rows: int
    digest: str


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


def backup_entry(
    access: Shaped, key: tuple[Any, ...], values: Sequence[Any], sealer: RowSealer
) -> dict[str, Any]:
    """The insert parameters of one row's backup: its key and its sealed values. Raises
    UnsupportedValue for a value the codec cannot hold exactly."""
    return _backup_entry(access, key, pack_values(values), sealer)


def _backup_entry(
    access: Shaped,
    key: tuple[Any, ...],
    packed_values: bytes,
    sealer: RowSealer,
    packed_key: bytes | None = None,
) -> dict[str, Any]:
    entry = dict(zip(access.mapped.primary_key, key, strict=True))
    entry[SEALED_COLUMN] = sealer.seal_packed(access.mapped.name, key, packed_values, packed_key=packed_key)
    return entry


def stored_digest(packed_key: bytes, sealed: bytes) -> int:
    """SHA-256 of one backup row as it is stored, its packed key then its sealed bytes, as a
    number: summed over a table (order-independent), what was written and what is read back."""
    return int.from_bytes(sha256(pack(packed_key, sealed)).digest())


def _packed_rows(
    access: Shaped, rows: Sequence[Mapping[Any, Any]]
) -> Iterator[tuple[Mapping[Any, Any], bytes]]:
    """Each row whose values the codec can hold exactly, with its values packed (what its backup
    seals); the others are left out: a value the codec cannot hold exactly (a PostgreSQL
    interval, say) cannot be sealed by its batch either, so its row is never changed and needs
    no backup (it is recorded as a failed row instead)."""
    for row in rows:
        try:
            yield row, pack_values(row_values(access, row))
        except UnsupportedValue:
            continue


@dataclass
class CopiedBatch:
    """One batch's backups (insert parameters), the rows they cover (with their versions where
    the rows were read with them: PostgreSQL), and the sum of the backups' stored digests."""

    parameters: list[dict[str, Any]]
    covered: int
    digests: int
    versions: list[tuple[str, str]] | None


def copy_batch(crypto: BatchContext, shape: RowShape, rows: list[dict[str, Any]]) -> CopiedBatch:
    """The backups of one batch of rows, each opened as it is sealed (RowSealer.seal_packed),
    and the sum of their stored digests. A batch function (engine/cpu_pool.py)."""
    assert crypto.sealer is not None, "a backup is sealed with the migration's backup key"
    parameters, covered, total = [], [], 0
    for row, packed in _packed_rows(shape, rows):
        key = key_of(shape, row)
        packed_key = pack_values(key)
        entry = _backup_entry(shape, key, packed, crypto.sealer, packed_key)
        parameters.append(entry)
        covered.append(row)
        total += stored_digest(packed_key, entry[SEALED_COLUMN])
    return CopiedBatch(parameters, len(covered), total, versions_of(covered))


def copy_window(
    context: BatchContext,
    access: TableAccess,
    organizations: tuple[str, ...] | None,
    retry: RetryPolicy,
    first: tuple[Any, ...],
    last: tuple[Any, ...],
) -> tuple[int, CopiedBatch]:
    """Read the rows in scope holding plaintext with keys from ``first`` to ``last`` (with their
    versions on PostgreSQL) and seal their backups (:func:`copy_batch`): the rows read, and
    their backups. A batch function (engine/cpu_pool.py): in a worker it reads through the
    worker's own connection, so the rows never pass through the run's process."""
    engine = context.engine
    query = pending_rows(access, organizations, engine.dialect.name).where(access.key_range(first, last))

    def read() -> list[dict[str, Any]]:
        with engine.connect() as connection:
            return fetch_dicts(connection, query)

    rows = with_retries(retry, read, what=_reading_to_back_up(access))
    return len(rows), copy_batch(context, RowShape(access.mapped), rows)


def _reading_to_back_up(access: TableAccess) -> str:
    return f"reading the rows of {access.mapped.name} to back up"


def versions_of(rows: Sequence[Mapping[Any, Any]]) -> list[tuple[str, str]] | None:
    """The rows' versions, where they were read with them (see CopiedBatch)."""
    if not rows or ROW_VERSION[0] not in rows[0]:
        return None
    return [(row[ROW_VERSION[0]], row[ROW_VERSION[1]]) for row in rows]


def insert_by_row_version(access: TableAccess, table: sa.Table) -> PlainInsertFirst:
    """PostgreSQL: a batch's backups in one statement, each row's key taken on the server from
    the row itself, found by the version it was read at (see TableAccess.update_by_row_version),
    so the key's values never travel and no type can change them. Its parameter is
    :func:`batch_by_row_version`'s. A row changed since it was read is not there any more and
    gets no backup here: the rows inserted are the statement's row count. A row backed up
    already (a batch retried) keeps its first backup: the batch is then made again skipping
    such keys (database.PlainInsertFirst)."""
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
    # The row count of an INSERT is kept only when asked for.
    return PlainInsertFirst(
        statement.execution_options(preserve_rowcount=True),
        statement.on_conflict_do_nothing().execution_options(preserve_rowcount=True),
    )


def batch_by_row_version(copied: CopiedBatch) -> dict[str, str]:
    assert copied.versions is not None
    return text_rows_parameters(
        _BATCH,
        {
            ROW_VERSION[0]: [ctid for ctid, _xmin in copied.versions],
            ROW_VERSION[1]: [xmin for _ctid, xmin in copied.versions],
            SEALED_COLUMN: [b64encode(item[SEALED_COLUMN]).decode() for item in copied.parameters],
        },
    )


def read_back_batch(rows: Sequence[tuple[Any, ...]]) -> int:
    """The sum of the stored digests of backup rows read back (each its key's values, then its
    sealed bytes)."""
    return sum(stored_digest(pack_values(row[:-1]), bytes(row[-1])) for row in rows)


class BackupWriter:
    """Writes a table's backups a batch at a time, as a run does (the estimate times it).

    On PostgreSQL, for rows read with their versions, one statement per batch
    (:func:`insert_by_row_version`); the rows it did not find (changed since they were read)
    and every row elsewhere get one insert each, of the values read."""

    def __init__(self, access: TableAccess, table: sa.Table) -> None:
        self.table = table
        self.by_version = insert_by_row_version(access, table)
        self.per_row: DriverStatement | None = None

    def write(self, connection: Connection, copied: CopiedBatch) -> None:
        inserted = 0
        if copied.versions is not None and connection.dialect.name == "postgresql":
            inserted = self.by_version.execute(connection, batch_by_row_version(copied))
        if inserted != len(copied.parameters):
            # Those inserted already are skipped (a key present is left as it is).
            if self.per_row is None:
                self.per_row = DriverStatement(insert_ignoring_duplicates(connection, self.table))
            self.per_row.execute(connection, copied.parameters)


COPY_STEP = "backup-copy"
READ_BACK_STEP = "backup-read-back"


def copy_step(
    access: TableAccess, table: sa.Table, organizations: tuple[str, ...] | None, retry: RetryPolicy
) -> WindowStep:
    """The copy of ``access``'s rows in scope into the backup ``table``, a window of keys at a
    time (engine/window_steps.py): each window's rows read and sealed by :func:`copy_window`,
    its backups written by whoever holds the window. Summary: the rows read (``rows``, as every
    step's summary has), those with a backup (``covered``) and the sum of their stored digests."""
    writer = BackupWriter(access, table)

    def write(connection: Connection, result: tuple[int, CopiedBatch]) -> Summary:
        rows_read, copied = result
        writer.write(connection, copied)
        return {"rows": rows_read, "covered": copied.covered, "digests": str(copied.digests)}

    return WindowStep(COPY_STEP, access.mapped.name, copy_window, (access, organizations, retry), write=write)


def read_back_step(access: TableAccess, table: sa.Table) -> WindowStep:
    """The read-back of the backup ``table``, a window of its keys at a time
    (:func:`read_back_window`). Summary: its rows and the sum of their stored digests."""

    def summarize(result: tuple[int, int]) -> Summary:
        rows, digests = result
        return {"rows": rows, "digests": str(digests)}

    return WindowStep(READ_BACK_STEP, access.mapped.name, read_back_window, (table, access), summarize)


def copy_and_verify(
    engine: Engine,
    access: TableAccess,
    table: sa.Table,
    organizations: tuple[str, ...] | None,
    pool: CpuPool,
    progress: RowCounter | None = None,
    retry: RetryPolicy | None = None,
    sharing: Sharing | None = None,
) -> BackupSummary:
    """Phase 3: copy every row in scope that holds plaintext, then prove the copy opens to the
    same rows. The rows are read a window of keys at a time by the run's workers
    (:func:`copy_window`), which seal them, and by the workers that joined the migration
    (``sharing``, see engine/window_steps.py).

    In two halves. Each backup is opened as it is sealed and must give back the row's values
    exactly, packed (RowSealer.seal_packed). Once every batch is written, the copy is read back:
    its row count and the sum of the SHA-256 of each row as stored (packed key, sealed bytes)
    must equal those of the backups written, so the table holds those very bytes under those
    keys, and they open to the rows. A sum does not depend on the order rows are read in, nor on
    which worker wrote which window.
    ``progress`` counts the rows of both passes (copying, reading back).
    """
    with serialized_write(engine) as connection:
        connection.execute(sa.delete(table))  # a copy interrupted earlier is redone from scratch
    count = 0
    total = 0
    retry = retry or RetryPolicy()

    def add(summary: Summary) -> None:
        nonlocal count, total
        total += int(summary["digests"])
        count += summary["covered"]
        if progress is not None:
            # A row left out (see _packed_rows) has no copy to read back: its second pass is done.
            progress.add(2 * summary["rows"] - summary["covered"])

    def next_keys(after: tuple[Any, ...] | None) -> sa.Select[Any]:
        return pending_keys(access, organizations, after=after, limit=BACKUP_COPY_ROWS)

    def reading(read: Callable[[], list[tuple[Any, ...]]]) -> list[tuple[Any, ...]]:
        return with_retries(retry, read, what=_reading_to_back_up(access))

    step = copy_step(access, table, organizations, retry)
    try:
        run_step(engine, step, key_windows(engine, next_keys, reading), pool, add, sharing=sharing)
    except DecryptionFailed as error:
        raise BackupVerificationFailed(
            f"{error} Nothing was changed in the table.", hint="Run resume to take the backup again."
        ) from error
    source = BackupSummary(count, _digest_text(total))
    copied = _read_back(engine, access, table, pool, progress, sharing)
    if copied != source:
        raise BackupVerificationFailed(
            f"The backup of {access.mapped.name} does not match the table: {copied.rows} rows "
            f"(digest {copied.digest[:12]}) backed up, {source.rows} rows (digest {source.digest[:12]}) "
            "expected. Nothing was changed in the table.",
            hint="Run resume to take the backup again.",
        )
    return source


def open_backup(
    access: Shaped, row: Mapping[Any, Any], sealed: bytes | None, sealer: RowSealer
) -> list[Any] | None:
    if sealed is None:
        return None
    return sealer.open(access.mapped.name, key_of(access, row), bytes(sealed))


def _read_back(
    engine: Engine,
    access: TableAccess,
    table: sa.Table,
    pool: CpuPool,
    progress: RowCounter | None,
    sharing: Sharing | None,
) -> BackupSummary:
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
        if progress is not None:
            progress.add(summary["rows"])

    def next_keys(after: tuple[Any, ...] | None) -> sa.Select[Any]:
        query = sa.select(*key_columns).order_by(*key_columns).limit(READ_BACK_ROWS)
        # Bound in the key's own type, as the table's keyset pages are (TableAccess.bound_key).
        return query if after is None else query.where(sa.tuple_(*key_columns) > access.key_tuple(after))

    step = read_back_step(access, table)
    run_step(engine, step, key_windows(engine, next_keys), pool, add, sharing=sharing)
    return BackupSummary(count, _digest_text(total))


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
        rows = fetch_tuples(connection, stored_window(table, access, first, last))
    return len(rows), read_back_batch(rows)


def stored_window(
    table: sa.Table, access: TableAccess, first: tuple[Any, ...], last: tuple[Any, ...]
) -> sa.Select[Any]:
    """The backup rows with keys from ``first`` to ``last``, as :func:`read_back_batch` takes
    them. The keys are bound in their own type (TableAccess.key_tuple): the backup's key
    columns hold the table's stored keys in the table's types (see TableAccess.copy_type)."""
    key_columns = [table.c[name] for name in access.mapped.primary_key]
    key = sa.tuple_(*key_columns)
    return sa.select(*key_columns, table.c[SEALED_COLUMN]).where(
        key >= access.key_tuple(first), key <= access.key_tuple(last)
    )


def drop_backup_table(connection: Connection, name: str) -> None:
    quote = connection.dialect.identifier_preparer.quote
    connection.exec_driver_sql(f"DROP TABLE IF EXISTS {quote(name)}")


def _digest_text(total: int) -> str:
    return f"{total % DIGEST_MODULUS:064x}"
