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

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tui_migrator.common.errors import DecryptionFailed, OperationFailed
from tui_migrator.crypto.ciphers import RowContext, RowSealer, ValueCipher
from tui_migrator.crypto.codec import encode_keys
from tui_migrator.engine import backup
from tui_migrator.engine.collection_pace import paced
from tui_migrator.engine.cpu_pool import BatchContext, CpuPool, kept, processes_for
from tui_migrator.storage import migration_claims, row_metadata
from tui_migrator.storage import migration_records as migrations
from tui_migrator.storage.column_storage import (
    RecordRefused,
    RowShape,
    Shaped,
    TableAccess,
    cell_token,
    drop_companion_columns,
    key_of,
    organization_of,
    reflect,
    row_context,
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

# Told after every batch: the table being restored, rows restored so far, tables finished.
OnRollbackStep = Callable[[str, int, int], None]


class RollbackIncomplete(OperationFailed):
    code = "rollback_incomplete"


@dataclass
class RollbackResult:
    restored_rows: int = 0
    restored_from_backup: int = 0
    kept_newer_values: int = 0
    unrecoverable: list[str] = field(default_factory=list)
    dropped_columns: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, part: RollbackResult) -> None:
        """Count in what a part of a batch (restore_batch's) restored."""
        self.restored_rows += part.restored_rows
        self.restored_from_backup += part.restored_from_backup
        self.kept_newer_values += part.kept_newer_values
        self.unrecoverable += part.unrecoverable

    def to_json(self) -> dict[str, Any]:
        return {
            "restoredRows": self.restored_rows,
            "restoredFromBackup": self.restored_from_backup,
            "keptNewerValues": self.kept_newer_values,
            "unrecoverableRows": self.unrecoverable,
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
) -> RollbackResult:
    """Restore the migration's tables, last first. Every write checks that ``epoch`` (the
    rollback's claim) still holds the migration. ``pool``: worker processes given this
    cipher's keys and ``sealer`` (CpuPool), which open the tokens; without one, this process does."""
    started = time.perf_counter()
    result = RollbackResult()
    pool = pool or CpuPool(BatchContext(cipher, sealer), processes=0)
    for tables_done, progress in enumerate(reversed(record.tables)):
        with engine.connect() as connection:
            access = reflect(connection, mapping.table(progress.name))
        backup_table = None
        if progress.backup_table and sa.inspect(engine).has_table(progress.backup_table):
            backup_table = backup.backup_table(access, progress.backup_table)
        _restore_table(engine, record.id, epoch, access, backup_table, pool, result, on_step, tables_done)
        with serialized_write(engine) as connection:
            migration_claims.check_epoch(connection, record.id, epoch)
            access = reflect(connection, access.mapped)
            added = set(progress.companions_added)
            added |= migrations.companions_left_by_rolled_back(connection, progress.name)
            for name in sorted(added):
                if name in access.table.c:
                    still_used = connection.execute(
                        sa.select(sa.func.count())
                        .select_from(access.table)
                        .where(access.table.c[name].is_not(None))
                    ).scalar_one()
                    if not still_used:
                        result.dropped_columns.append(f"{progress.name}.{name}")
            unused = {c.split(".", 1)[1] for c in result.dropped_columns if c.startswith(progress.name + ".")}
            drop_companion_columns(connection, access, only=unused)
    result.seconds = time.perf_counter() - started
    if result.unrecoverable:
        raise RollbackIncomplete(
            f"{len(result.unrecoverable)} rows could not be restored (first: {result.unrecoverable[0]}); "
            f"{result.restored_rows} rows were restored. The migration stays rollbackable.",
            hint="Check the master key and the backup tables, then run rollback again.",
        )
    return result


def _restore_table(
    engine: Engine,
    migration_id: str,
    epoch: int,
    access: TableAccess,
    backup_table: sa.Table | None,
    pool: CpuPool,
    result: RollbackResult,
    on_step: OnRollbackStep | None,
    tables_done: int,
) -> None:
    name = access.mapped.name
    # Run by the driver's executemany: SQLAlchemy's per-row parameter processing was nearly a
    # tenth of a 100,000-row rollback's time in its profile.
    statement = DriverStatement(access.update_statement())
    shape = kept(RowShape(access.mapped))
    after = None
    while True:
        # Every row is read, not only those holding tokens: a cell the application overwrote
        # with plaintext since is counted as a newer value kept.
        query = access.select_rows(after=after, limit=BATCH)
        if backup_table is not None:
            # Looked up per row, not joined (see TableBatches.pending_query: a join's plan
            # depended on statistics that lag behind the backup copy).
            on = access.same_key(backup_table)
            query = query.add_columns(
                sa.select(backup_table.c[backup.SEALED_COLUMN])
                .where(on)
                .scalar_subquery()
                .label(backup.SEALED_COLUMN)
            )
        with serialized_write(engine) as connection:
            migration_claims.check_epoch(connection, migration_id, epoch)
            if connection.dialect.name == "postgresql":
                # Read and restore in one transaction, the rows locked: an application write in
                # between must not be overwritten by the restore of another column.
                query = query.with_for_update(of=access.table)
            rows = [dict(row) for row in connection.execute(query).mappings()]
            if not rows:
                return
            by_key = dict(zip(encode_keys([key_of(access, row) for row in rows]), rows, strict=True))
            sealed = row_metadata.sealed_rows(connection, migration_id, name, list(by_key))
            # Split among the workers (one part without them), each part opened by one.
            entries = [(by_key[row_key], recorded) for row_key, recorded in sealed.items()]
            size = math.ceil(len(entries) / max(1, pool.processes)) or 1
            parts = [
                pool.submit(restore_batch, shape, entries[start : start + size])
                for start in range(0, len(entries), size)
            ]
            updates = []
            for part in parts:
                restored, counted = part.result()
                updates += restored
                result.add(counted)
            statement.execute(connection, updates)
        if on_step is not None:
            on_step(name, result.restored_rows, tables_done)
        after = key_of(access, rows[-1])


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
        parameters = _restored(shape, row, recorded.digest, cells, context.cipher, context.sealer, counted)
        if parameters is not None:
            updates.append(parameters)
    return updates, counted


def _backup_values(
    access: Shaped, row: Any, digest: str, cells: SealedCells, cipher: ValueCipher, sealer: RowSealer
) -> list[Any] | None:
    """The row's values as its sealed backup holds them, if the backup opens and matches the
    digest this migration took of the cells it sealed; else None."""
    mapped = access.mapped
    sealed = row.get(backup.SEALED_COLUMN)
    if sealed is None:
        return None
    try:
        opened = backup.open_backup(access, row, sealed, sealer)
        organization = organization_of(mapped, row)
    except (DecryptionFailed, RecordRefused):
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
    digest: str,
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
    try:
        base: RowContext | None = row_context(access, row)
    except RecordRefused:
        base = None  # no organization: its tokens cannot open, only the backup can help
    backup_values: list[Any] | None = None
    restored = used_backup = False
    for index, column in enumerate(mapped.columns):
        if column.name not in cells.nonces:
            continue
        token = cell_token(column, row)
        if token is None:
            if row[column.name] is not None:
                result.kept_newer_values += 1
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
                backup_values = _backup_values(access, row, digest, cells, cipher, sealer)
            if backup_values is None:
                result.unrecoverable.append(shown)
                return None
            value = backup_values[index]
            used_backup = True
        parameters[column.name] = value
        if column.companion is not None and column.companion in row:
            parameters[column.companion] = None
        restored = True
    if not restored:
        return None
    result.restored_rows += 1
    result.restored_from_backup += int(used_backup)
    return parameters
