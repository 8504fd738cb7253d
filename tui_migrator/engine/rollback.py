"""Rollback: put back every value a migration encrypted, exactly, and remove what it added.

For each row the migration sealed (it has the migration's row metadata), every cell it sealed
(see storage.sealed_cells) that still holds its token gets its original back: by decrypting the
token (authenticated, so it cannot yield another row's value), or, where a token no longer
opens, from the sealed backup once the backup is proven to match the digest taken before the
migration. A cell the application has overwritten since keeps the application's newer value,
and a cell a later migration sealed again is left to that migration's rollback: rollback never
destroys work done after the migration. Afterwards the companion columns the migration
added are dropped (when empty) and its locks released.

Opening the tokens is Python per value: in a large rollback a batch's rows are split among
worker processes (engine/cpu_pool.py; the same function runs here where there are none), and
every read and write stays in this process, in the batch's one transaction.
"""

from __future__ import annotations

import hmac
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tui_migrator.common.errors import DecryptionFailed, OperationFailed
from tui_migrator.crypto.ciphers import RowSealer, ValueCipher
from tui_migrator.crypto.codec import encode_keys
from tui_migrator.engine import backup, read_sizes
from tui_migrator.engine.collection_pace import paced
from tui_migrator.engine.cpu_pool import BatchContext, CpuPool, kept, processes_for
from tui_migrator.engine.retry import RetryPolicy, with_retries
from tui_migrator.storage import migration_claims, row_metadata
from tui_migrator.storage import migration_records as migrations
from tui_migrator.storage.column_storage import (
    RowShape,
    Shaped,
    TableAccess,
    cell_token,
    drop_companion_columns,
    key_of,
    reflect,
    row_context,
    sealing_organization,
)
from tui_migrator.storage.database import DriverStatement, serialized_write
from tui_migrator.storage.mapping import ResolvedMapping
from tui_migrator.storage.migration_records import MigrationRecord
from tui_migrator.storage.row_metadata import Recorded
from tui_migrator.storage.sealed_cells import SealedCells

BATCH = 500
# From this many sealed rows on, a rollback opens them in worker processes, one per core: below
# it, starting them (a fork server that imports the tool, then the workers) costs more than
# they save. Measured on two cores: 20,000 rows took 0.08 s longer with them, 40,000 rows 0.28 s
# less.
WORKERS_FROM_ROWS = 25_000
# At most this many: each takes a part of a batch of BATCH rows, and the batch's read and write
# in the rollback's own process take turns with them (a part of 125 rows is still worth sending).
WORKERS_AT_MOST = 4

# What carries a stopped rollback on: every batch it committed stays restored, and the next run
# counts those rows as restored already (RollbackResult.already_restored).
ROLL_BACK_AGAIN = "rollback again (what it restored stays restored)"

# Told after every batch: the table being restored, rows back so far (RollbackResult.rows_back),
# tables finished.
OnRollbackStep = Callable[[str, int, int], None]


class RollbackIncomplete(OperationFailed):
    code = "rollback_incomplete"


@dataclass
class RollbackResult:
    restored_rows: int = 0
    restored_from_backup: int = 0
    kept_newer_values: int = 0
    # Rows an earlier run of this rollback restored before it stopped: every cell the migration
    # sealed holds its original value again (their digest is the one taken before sealing).
    already_restored: int = 0
    unrecoverable: list[str] = field(default_factory=list)
    dropped_columns: list[str] = field(default_factory=list)
    seconds: float = 0.0
    # Rows the migration recorded sealing that were found under their key (a batch's count).
    found_rows: int = 0
    # Rows it recorded sealing that no row holds the key of any more: deleted by the application
    # since, or given another key, which leaves the row with tokens only the old key opens.
    not_found_rows: int = 0

    @property
    def rows_back(self) -> int:
        """Rows holding their originals again: restored by this run or by an earlier one that
        stopped (what its progress counts, of the rows the migration sealed)."""
        return self.restored_rows + self.already_restored

    def add(self, part: RollbackResult) -> None:
        """Count in what a part of a batch (restore_batch's) restored."""
        self.restored_rows += part.restored_rows
        self.restored_from_backup += part.restored_from_backup
        self.kept_newer_values += part.kept_newer_values
        self.already_restored += part.already_restored
        self.unrecoverable += part.unrecoverable
        self.found_rows += part.found_rows

    @property
    def warnings(self) -> list[str]:
        if not self.not_found_rows:
            return []
        not_found = (
            f"{self.not_found_rows} rows the migration sealed were not found under their key: "
            "deleted by the application since, or given another key. A row given another key "
            "still holds the migration's tokens, which only its old key opens; their backups and "
            "row metadata stay. Do not purge this migration's backups before such rows are "
            "accounted for."
        )
        return [not_found]

    def to_json(self) -> dict[str, Any]:
        return {
            "restoredRows": self.restored_rows,
            "restoredFromBackup": self.restored_from_backup,
            "keptNewerValues": self.kept_newer_values,
            "alreadyRestoredRows": self.already_restored,
            "unrecoverableRows": self.unrecoverable,
            "notFoundRows": self.not_found_rows,
            "warnings": self.warnings,
            "droppedColumns": self.dropped_columns,
            "durationSeconds": round(self.seconds, 3),
        }


def pool_for(record: MigrationRecord, cipher: ValueCipher, sealer: RowSealer) -> CpuPool:
    """The worker processes that open the tokens of ``record``'s rollback (none for a small
    one; one per core up to WORKERS_AT_MOST), given every data key of the database (a token may
    be under any generation of its organization's key) and the migration's backup key. Close it
    (``with``) when done."""
    processes = processes_for(WORKERS_AT_MOST) if record.encrypted_records >= WORKERS_FROM_ROWS else 0
    keys = cipher.worker_keys((), sealer) if processes else None
    return CpuPool(BatchContext(cipher, sealer), processes, keys)


@paced
def roll_back(
    engine: Engine,
    record: MigrationRecord,
    mapping: ResolvedMapping,
    cipher: ValueCipher,
    sealer: RowSealer,
    *,
    epoch: int,
    on_step: OnRollbackStep | None = None,
    pool: CpuPool | None = None,
    retry: RetryPolicy | None = None,
) -> RollbackResult:
    """Restore the migration's tables, last first. Every write checks that ``epoch`` (the
    rollback's claim) still holds the migration. ``pool``: worker processes given this
    cipher's keys and ``sealer`` (CpuPool), which open the tokens; without one, this process does.
    ``retry``: how each batch (one transaction) is tried again where the database fails it."""
    retry = retry or RetryPolicy()
    started = time.perf_counter()
    result = RollbackResult()
    pool = pool or CpuPool(BatchContext(cipher, sealer), processes=0)
    for tables_done, progress in enumerate(reversed(record.tables)):
        access, backup_table = with_retries(
            retry,
            partial(_table_and_backup, engine, mapping, progress.name, progress.backup_table),
            what=f"reading the columns of {progress.name}",
            again=ROLL_BACK_AGAIN,
        )
        _restore_table(
            engine, record.id, epoch, access, backup_table, pool, retry, result, on_step, tables_done
        )
        result.dropped_columns += with_retries(
            retry,
            partial(_drop_unused_companions, engine, record.id, epoch, access, progress.companions_added),
            what=f"dropping the companion columns of {progress.name}",
            again=ROLL_BACK_AGAIN,
        )
    result.seconds = time.perf_counter() - started
    if result.unrecoverable:
        raise RollbackIncomplete(
            f"{len(result.unrecoverable)} rows could not be restored (first: {result.unrecoverable[0]}); "
            f"{result.restored_rows} rows were restored. The migration stays rollbackable.",
            hint="Check the master key and the backup tables, then run rollback again.",
        )
    return result


def _table_and_backup(
    engine: Engine, mapping: ResolvedMapping, table: str, backup_name: str | None
) -> tuple[TableAccess, sa.Table | None]:
    """The table as it is now, and its backup table where the migration made one that is still there."""
    with engine.connect() as connection:
        access = reflect(connection, mapping.table(table))
        if backup_name is None or not sa.inspect(connection).has_table(backup_name):
            return access, None
    return access, backup.backup_table(access, backup_name)


def _drop_unused_companions(
    engine: Engine, migration_id: str, epoch: int, access: TableAccess, companions_added: Sequence[str]
) -> list[str]:
    """Drop the companion columns of the table that the migration added (or that a migration
    rolled back before it left behind) and that hold nothing now; their names (table.column)."""
    table = access.mapped.name
    with serialized_write(engine) as connection:
        migration_claims.check_epoch(connection, migration_id, epoch)
        access = reflect(connection, access.mapped)
        added = set(companions_added) | migrations.companions_left_by_rolled_back(connection, table)
        unused = set()
        for name in sorted(added):
            if name in access.table.c:
                still_used = connection.execute(
                    sa.select(sa.func.count())
                    .select_from(access.table)
                    .where(access.table.c[name].is_not(None))
                ).scalar_one()
                if not still_used:
                    unused.add(name)
        drop_companion_columns(connection, access, only=unused)
    return [f"{table}.{name}" for name in sorted(unused)]


def _restore_table(
    engine: Engine,
    migration_id: str,
    epoch: int,
    access: TableAccess,
    backup_table: sa.Table | None,
    pool: CpuPool,
    retry: RetryPolicy,
    result: RollbackResult,
    on_step: OnRollbackStep | None,
    tables_done: int,
) -> None:
    name = access.mapped.name
    # Run by the driver's executemany: SQLAlchemy's per-row parameter processing was nearly a
    # tenth of a 100,000-row rollback's time in its profile.
    statement = DriverStatement(access.update_statement())
    shape = kept(RowShape(access.mapped))
    # Each row read with its backup, as large again: fewer rows a batch where they are large,
    # and where they grow past what the sample saw (read_sizes.BatchRows).
    most_rows = with_retries(
        retry,
        lambda: read_sizes.BatchRows.measured(
            engine, access, BATCH, copies=2, also=() if backup_table is None else (backup.SEALED_COLUMN,)
        ),
        what=f"measuring the rows of {name}",
        again=ROLL_BACK_AGAIN,
    )
    after = None
    found_before = result.found_rows
    while True:
        # Every row is read, not only those holding tokens: a cell the application overwrote
        # with plaintext since is counted as a newer value kept.
        query = access.select_rows(after=after, limit=most_rows.rows)
        if backup_table is not None:
            # Looked up per row, not joined (see TableBatches.pending_query: a join's plan
            # depended on statistics that lag behind the backup table).
            on = access.same_key(backup_table)
            query = query.add_columns(
                sa.select(backup_table.c[backup.SEALED_COLUMN])
                .where(on)
                .scalar_subquery()
                .label(backup.SEALED_COLUMN)
            )
        # A batch the database fails (a lost connection, a restarting server) left nothing
        # behind, so it is read and restored again from the start, as a migration's batch is.
        last, counted = with_retries(
            retry,
            partial(
                _restore_batch_of,
                engine,
                migration_id,
                epoch,
                access,
                query,
                shape,
                statement,
                pool,
                most_rows,
            ),
            what=f"restoring a batch of {name}",
            again=ROLL_BACK_AGAIN,
        )
        if last is None:
            recorded = with_retries(
                retry,
                partial(_rows_recorded, engine, migration_id, name),
                what=f"counting the rows the migration sealed in {name}",
                again=ROLL_BACK_AGAIN,
            )
            result.not_found_rows += max(0, recorded - (result.found_rows - found_before))
            return
        result.add(counted)  # once its transaction committed
        if on_step is not None:
            on_step(name, result.rows_back, tables_done)
        after = last


def _rows_recorded(engine: Engine, migration_id: str, table: str) -> int:
    with engine.connect() as connection:
        return row_metadata.rows_recorded(connection, migration_id, table)


def _restore_batch_of(
    engine: Engine,
    migration_id: str,
    epoch: int,
    access: TableAccess,
    query: sa.Select[Any],
    shape: RowShape,
    statement: DriverStatement,
    pool: CpuPool,
    most_rows: read_sizes.BatchRows,
) -> tuple[tuple[Any, ...] | None, RollbackResult]:
    """Read the rows of ``query``, restore them and write them back, in one transaction: the key
    of the last row read (None: there was none) and what was restored. ``most_rows`` follows
    the rows read, for the next batch."""
    counted = RollbackResult()
    with serialized_write(engine) as connection:
        migration_claims.check_epoch(connection, migration_id, epoch)
        if connection.dialect.name == "postgresql":
            # Read and restore in one transaction, the rows locked: an application write in
            # between must not be overwritten by the restore of another column.
            query = query.with_for_update(of=access.table)
        rows = [dict(row) for row in connection.execute(query).mappings()]
        if not rows:
            return None, counted
        most_rows.follow(rows)
        by_key = dict(zip(encode_keys([key_of(access, row) for row in rows]), rows, strict=True))
        sealed = row_metadata.sealed_rows(connection, migration_id, access.mapped.name, list(by_key))
        counted.found_rows = len(sealed)
        # Split among the workers (one part without them), each part opened by one.
        entries = [(by_key[row_key], recorded) for row_key, recorded in sealed.items()]
        size = math.ceil(len(entries) / max(1, pool.processes)) or 1
        parts = [
            pool.submit(restore_batch, shape, entries[start : start + size])
            for start in range(0, len(entries), size)
        ]
        updates = []
        for part in parts:
            restored, part_counted = part.result()
            updates += restored
            counted.add(part_counted)
        statement.execute(connection, updates)
    return key_of(access, rows[-1]), counted


def restore_batch(
    context: BatchContext, shape: RowShape, entries: Sequence[tuple[dict[str, Any], Recorded]]
) -> tuple[list[dict[str, Any]], RollbackResult]:
    """The UPDATE parameters that restore each of these rows (each with what this migration
    recorded of it; rows with nothing to restore give none) and what was restored. A batch
    function (engine/cpu_pool.py): it runs in a worker process or in the rollback's own."""
    assert context.sealer is not None, "a rollback's workers are given the migration's backup key"
    counted = RollbackResult()
    updates = []
    for row, recorded in entries:
        cells = SealedCells.from_metadata(recorded.sealed_columns, shape.mapped)
        parameters = _restored(shape, row, recorded, cells, context.cipher, context.sealer, counted)
        if parameters is not None:
            updates.append(parameters)
    return updates, counted


def _backup_values(
    access: Shaped,
    row: Any,
    digest: str,
    organization: str | None,
    cells: SealedCells,
    cipher: ValueCipher,
    sealer: RowSealer,
) -> list[Any] | None:
    """The row's values as its sealed backup holds them, if the backup opens and matches the
    digest this migration took of the cells it sealed (under ``organization``); else None."""
    mapped = access.mapped
    sealed = row.get(backup.SEALED_COLUMN)
    if sealed is None or organization is None:
        return None
    try:
        opened = backup.open_backup(access, row, sealed, sealer)
    except DecryptionFailed:
        return None
    if opened is None:
        return None
    originals = {column.name: value for column, value in zip(mapped.columns, opened, strict=True)}
    if cells.digest(cipher, mapped, key_of(access, row), organization, originals) != digest:
        return None
    return opened


def _restored(
    access: Shaped,
    row: Any,
    recorded: Recorded,
    cells: SealedCells,
    cipher: ValueCipher,
    sealer: RowSealer,
    result: RollbackResult,
) -> dict[str, Any] | None:
    """UPDATE parameters that put back the cells this migration sealed in ``row``, or None when
    it has nothing to restore (or cannot: then it is listed as unrecoverable).

    A cell that holds a newer value (written by the application since) keeps it, and a token
    beside it is cleared; a token another migration wrote there is left for that migration's
    rollback; a token that does not open — damaged — is restored from the backup, which must
    match the digest taken before the migration.
    """
    mapped = access.mapped
    key = key_of(access, row)
    shown = f"{mapped.name} ({', '.join(map(str, key))})"
    parameters: dict[str, Any] = {f"tm_key_{index}": value for index, value in enumerate(key)}
    for column in mapped.columns:
        parameters[column.name] = row[column.name]
        if column.companion is not None and column.companion in row:
            parameters[column.companion] = row[column.companion]
    digest = recorded.digest
    organization = sealing_organization(access, row, recorded.key_id, cipher)
    # None: no organization known to open its tokens with; only the backup can help.
    base = None if organization is None else row_context(access, row, organization=organization)
    backup_values: list[Any] | None = None
    restored = used_backup = False
    kept_values = 0  # cells holding a value, not the token: newer, or restored already
    for index, column in enumerate(mapped.columns):
        if column.name not in cells.nonces:
            continue
        token = cell_token(column, row)
        if token is None:
            if row[column.name] is not None:
                kept_values += 1
                if column.companion is not None and row.get(column.companion) is not None:
                    parameters[column.companion] = None  # the token of a value since replaced
                    restored = True
            continue
        try:
            if base is None:
                raise DecryptionFailed(f"{shown} has no organization to open its tokens with.")
            value = cipher.decrypt(token, base.with_column(column.name))
            if not cells.owns(column.name, token):
                continue  # sealed again by a later migration: its own rollback restores it
        except DecryptionFailed:
            if backup_values is None:
                backup_values = _backup_values(access, row, digest, organization, cells, cipher, sealer)
            if backup_values is None:
                result.kept_newer_values += kept_values
                result.unrecoverable.append(shown)
                return None
            value = backup_values[index]
            used_backup = True
        parameters[column.name] = value
        if column.companion is not None and column.companion in row:
            parameters[column.companion] = None
        restored = True
    if (
        not restored
        and kept_values
        and _holds_its_originals(access, row, digest, organization, cells, cipher)
    ):
        # Restored by an earlier run of this rollback, which stopped later on: not newer values.
        result.already_restored += 1
        return None
    result.kept_newer_values += kept_values
    if not restored:
        return None
    result.restored_rows += 1
    result.restored_from_backup += int(used_backup)
    return parameters


def _holds_its_originals(
    access: Shaped, row: Any, digest: str, organization: str | None, cells: SealedCells, cipher: ValueCipher
) -> bool:
    """Whether every cell the migration sealed in ``row`` holds the very value it sealed there:
    their digest (verification's rule) is the one the migration took before sealing them."""
    if organization is None:
        return False
    originals = {column.name: row[column.name] for column in access.mapped.columns}
    actual = cells.digest(cipher, access.mapped, key_of(access, row), organization, originals)
    return hmac.compare_digest(actual, digest)
