"""Rollback: put back every value a migration encrypted, exactly, and remove what it added.

For each row the migration sealed (it has the migration's row metadata), every column still
holding a token gets its original back: by decrypting the token (authenticated, so it cannot
yield another row's value), or, where a token no longer opens, from the sealed backup once the
backup is proven to match the digest taken before the migration. A column the application has
overwritten since (it no longer holds a token) keeps the application's newer value: rollback
never destroys work done after the migration. Afterwards the companion columns the migration
added are dropped (when empty) and its locks released.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tui_migrator.common.errors import DecryptionFailed, OperationFailed
from tui_migrator.crypto.ciphers import RowContext, RowSealer, ValueCipher
from tui_migrator.crypto.codec import encode_key
from tui_migrator.crypto.tokens import is_token
from tui_migrator.engine import backup
from tui_migrator.engine.scope import holds_token
from tui_migrator.storage import migration_records as migrations
from tui_migrator.storage.column_storage import (
    RecordRefused,
    TableAccess,
    drop_companion_columns,
    key_of,
    organization_of,
    reflect,
    row_context,
)
from tui_migrator.storage.database import serialized_write
from tui_migrator.storage.mapping import ResolvedMapping
from tui_migrator.storage.migration_records import MigrationRecord

BATCH = 500


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

    def to_json(self) -> dict[str, Any]:
        return {
            "restoredRows": self.restored_rows,
            "restoredFromBackup": self.restored_from_backup,
            "keptNewerValues": self.kept_newer_values,
            "unrecoverableRows": self.unrecoverable,
            "droppedColumns": self.dropped_columns,
            "durationSeconds": round(self.seconds, 3),
        }


def roll_back(
    engine: Engine, record: MigrationRecord, mapping: ResolvedMapping, cipher: ValueCipher, sealer: RowSealer
) -> RollbackResult:
    started = time.perf_counter()
    result = RollbackResult()
    for progress in reversed(record.tables):
        with engine.connect() as connection:
            access = reflect(connection, mapping.table(progress.name))
        backup_table = None
        if progress.backup_table and sa.inspect(engine).has_table(progress.backup_table):
            backup_table = backup.backup_table(access, progress.backup_table)
        _restore_table(engine, record.id, access, backup_table, cipher, sealer, result)
        with serialized_write(engine) as connection:
            access = reflect(connection, access.mapped)
            for name in progress.companions_added:
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
    access: TableAccess,
    backup_table: sa.Table | None,
    cipher: ValueCipher,
    sealer: RowSealer,
    result: RollbackResult,
) -> None:
    name = access.mapped.name
    statement = access.update_statement()
    after = None
    while True:
        query = access.select_rows(after=after, limit=BATCH).where(_holds_token(access))
        if backup_table is not None:
            on = sa.and_(*(access.table.c[n] == backup_table.c[n] for n in access.mapped.primary_key))
            query = query.join_from(access.table, backup_table, on, isouter=True).add_columns(
                backup_table.c[backup.SEALED_COLUMN]
            )
        with serialized_write(engine) as connection:
            rows = connection.execute(query).mappings().all()
            if not rows:
                return
            by_key = {encode_key(key_of(access, row)): row for row in rows}
            digests = migrations.row_digests(connection, migration_id, name, list(by_key))
            updates = []
            for row_key, digest in digests.items():
                parameters = _restored(access, by_key[row_key], digest, cipher, sealer, result)
                if parameters is not None:
                    updates.append(parameters)
            if updates:
                connection.execute(statement, updates)
        after = key_of(access, rows[-1])


def _holds_token(access: TableAccess) -> sa.ColumnElement[bool]:
    parts: list[sa.ColumnElement[bool]] = []
    for column in access.mapped.columns:
        if column.companion is not None:
            if column.companion in access.table.c:
                parts.append(access.table.c[column.companion].is_not(None))
        else:
            parts.append(holds_token(access.table.c[column.name]))
    return sa.or_(*parts) if parts else sa.false()


def _restored(
    access: TableAccess,
    row: Any,
    digest: str,
    cipher: ValueCipher,
    sealer: RowSealer,
    result: RollbackResult,
) -> dict[str, Any] | None:
    mapped = access.mapped
    key = key_of(access, row)
    shown = f"{mapped.name} ({', '.join(map(str, key))})"
    backup_values: list[Any] | None = None
    if backup.SEALED_COLUMN in row and row[backup.SEALED_COLUMN] is not None:
        try:
            opened = backup.open_backup(access, row, row[backup.SEALED_COLUMN], sealer)
        except DecryptionFailed:
            opened = None
        if (
            opened is not None
            and cipher.digest_row(mapped.name, key, organization_of(mapped, row), opened) == digest
        ):
            backup_values = opened
    parameters: dict[str, Any] = {f"tm_key_{index}": value for index, value in enumerate(key)}
    try:
        base: RowContext | None = row_context(access, row)
    except RecordRefused:
        base = None  # no organization: its tokens cannot open, only the backup can help
    used_backup = False
    for index, column in enumerate(mapped.columns):
        stored = row[column.name]
        token = row.get(column.companion) if column.companion else stored
        if column.companion is not None:
            parameters[column.companion] = None
        if token is None or not is_token(token):
            # Sealed columns hold a token or NULL; a value here was written by the application
            # after the migration, and it stays.
            result.kept_newer_values += int(stored is not None)
            parameters[column.name] = stored
            continue
        try:
            if base is None:
                raise DecryptionFailed(f"{shown} has no organization to open its tokens with.")
            parameters[column.name] = cipher.decrypt(token, base.with_column(column.name))
        except DecryptionFailed:
            if backup_values is None:
                result.unrecoverable.append(shown)
                return None
            parameters[column.name] = backup_values[index]
            used_backup = True
    result.restored_rows += 1
    result.restored_from_backup += int(used_backup)
    return parameters
