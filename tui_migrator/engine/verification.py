"""Integrity verification: every row a migration wrote is read back, decrypted and checked
against the digest taken of its original values; then every row in scope must be encrypted or
listed as failed, and every value in token form must open.

A row checks the cells the migration itself sealed (see storage.sealed_cells): a cell that holds
a newer value since (written by the application, or sealed again by a later migration) makes the
row "changed", not a mismatch; a cell whose token does not open is a mismatch."""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tui_migrator.common.errors import DecryptionFailed, OperationFailed
from tui_migrator.crypto.ciphers import RowContext, ValueCipher
from tui_migrator.crypto.codec import encode_key
from tui_migrator.crypto.tokens import TOKEN_PREFIX
from tui_migrator.engine.phase_progress import PhaseMeter
from tui_migrator.engine.scope import organization_condition, pending_condition
from tui_migrator.storage import migration_records as migrations
from tui_migrator.storage.column_storage import (
    RecordRefused,
    TableAccess,
    cell_token,
    key_of,
    organization_of,
    reflect,
    row_context,
)
from tui_migrator.storage.migration_records import MigrationRecord
from tui_migrator.storage.sealed_cells import SealedCells
from tui_migrator.storage.tables import row_metadata_table

BATCH = 1000


class VerificationFailed(OperationFailed):
    code = "verification_failed"


@dataclass
class VerificationResult:
    verified_rows: int = 0
    mismatched_rows: int = 0
    unverifiable_rows: int = 0  # rows the migration encrypted that no longer hold its tokens
    plaintext_rows_left: int = 0
    failed_rows: int = 0
    damaged_rows: int = 0  # rows holding text in token form that does not open
    problem: str | None = None
    by_table: dict[str, int] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.problem is None

    def to_json(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "verifiedRows": self.verified_rows,
            "mismatchedRows": self.mismatched_rows,
            "unverifiableRows": self.unverifiable_rows,
            "plaintextRowsLeft": self.plaintext_rows_left,
            "failedRows": self.failed_rows,
            "damagedRows": self.damaged_rows,
            "verifiedByTable": self.by_table,
            "problem": self.problem,
        }


def original_values(access: TableAccess, row: Any, cipher: ValueCipher) -> list[Any]:
    """The values the row's mapped columns stand for: tokens opened, everything else as stored."""
    base: RowContext | None = None
    values = []
    for column in access.mapped.columns:
        token = cell_token(column, row)
        if token is None:
            values.append(row[column.name])
            continue
        base = base or row_context(access, row)
        values.append(cipher.decrypt(token, base.with_column(column.name)))
    return values


class RowCheck(Enum):
    VERIFIED = "verified"  # every cell the migration sealed opens to the value it digested
    CHANGED = "changed"  # a cell it sealed holds something newer (the application, a later run)
    MISMATCHED = "mismatched"  # a cell it sealed does not open, or opens to another value


def check_row(
    access: TableAccess, row: Any, cells: SealedCells, digest: str, cipher: ValueCipher
) -> RowCheck:
    """Does ``row`` still hold, in the cells one migration sealed, tokens that open to the
    values that migration digested?"""
    mapped = access.mapped
    if cells.whole_row:
        try:
            values = original_values(access, row, cipher)
        except (DecryptionFailed, RecordRefused):
            return RowCheck.MISMATCHED
        originals = {column.name: value for column, value in zip(mapped.columns, values, strict=True)}
    else:
        originals = {}
        base: RowContext | None = None
        for column in mapped.columns:
            if column.name not in cells.nonces:
                continue
            token = cell_token(column, row)
            if token is None:
                return RowCheck.CHANGED
            try:
                base = base or row_context(access, row)
                value = cipher.decrypt(token, base.with_column(column.name))
            except (DecryptionFailed, RecordRefused):
                return RowCheck.MISMATCHED
            if not cells.owns(column.name, token):
                return RowCheck.CHANGED  # a token that opens, written by a later migration
            originals[column.name] = value
    actual = cells.digest(cipher, mapped, key_of(access, row), organization_of(mapped, row), originals)
    return RowCheck.VERIFIED if hmac.compare_digest(actual, digest) else RowCheck.MISMATCHED


def damaged_cells(
    access: TableAccess, row: Any, cipher: ValueCipher, skip: tuple[str, ...] = ()
) -> list[str]:
    """The columns of ``row`` (other than ``skip``) holding text in token form that does not
    open: a damaged token, or plaintext that only looks like a token. Neither is ever taken
    for plaintext; both are reported."""
    damaged = []
    base: RowContext | None = None
    for column in access.mapped.columns:
        if column.name in skip:
            continue
        token = cell_token(column, row)
        if token is None:
            continue
        try:
            base = base or row_context(access, row)
            cipher.decrypt(token, base.with_column(column.name))
        except (DecryptionFailed, RecordRefused):
            damaged.append(column.name)
    return damaged


def verify_migration(
    engine: Engine,
    record: MigrationRecord,
    tables: dict[str, TableAccess],
    cipher: ValueCipher,
    organizations: tuple[str, ...] | None,
    meter: PhaseMeter | None = None,
) -> VerificationResult:
    """``meter`` counts the rows read back, of all the rows holding tokens in scope."""
    result = VerificationResult()
    failed_by_table = {table.name: table.failed_records for table in record.tables}
    with engine.connect() as connection:
        accesses = [reflect(connection, tables[progress.name].mapped) for progress in record.tables]
        if meter is not None:
            meter.begin(sum(_rows_to_verify(connection, access, organizations) for access in accesses))
    for progress, access in zip(record.tables, accesses, strict=True):
        _verify_table(engine, record.id, access, cipher, organizations, result, meter)
        with engine.connect() as connection:
            pending = connection.execute(
                sa.select(sa.func.count())
                .select_from(access.table)
                .where(pending_condition(access), organization_condition(access, organizations))
            ).scalar_one()
        failed = failed_by_table.get(progress.name, 0)
        result.failed_rows += failed
        left = max(0, pending - failed)
        result.plaintext_rows_left += left
        if left and result.problem is None:
            result.problem = (
                f"Completeness check failed: {left} rows of {progress.name} still hold plaintext and "
                "are not listed as failed."
            )
    return result


def _verify_table(
    engine: Engine,
    migration_id: str,
    access: TableAccess,
    cipher: ValueCipher,
    organizations: tuple[str, ...] | None,
    result: VerificationResult,
    meter: PhaseMeter | None,
) -> None:
    name = access.mapped.name
    after = None
    with engine.connect() as connection:
        expected = connection.execute(
            sa.select(sa.func.count())
            .select_from(row_metadata_table)
            .where(row_metadata_table.c.migration_id == migration_id, row_metadata_table.c.table_name == name)
        ).scalar_one()
    verified = mismatched = 0
    while True:
        query = access.select_rows(after=after, limit=BATCH).where(_sealed(access, organizations))
        with engine.connect() as connection:
            rows = connection.execute(query).mappings().all()
            if not rows:
                break
            keys = {encode_key(key_of(access, row)): row for row in rows}
            sealed = migrations.sealed_rows(connection, migration_id, name, list(keys))
        for row_key, row in keys.items():
            cells = None
            if row_key in sealed:
                digest, columns = sealed[row_key]
                cells = SealedCells.from_metadata(columns, access.mapped)
                outcome = check_row(access, row, cells, digest, cipher)
                verified += outcome is RowCheck.VERIFIED
                if outcome is RowCheck.MISMATCHED:
                    mismatched += 1
                    if result.problem is None:
                        result.problem = (
                            f"Integrity check failed: row {_shown(access, row)} of {name} does not decrypt "
                            "to the values it held before the migration."
                        )
                    continue
            damaged = damaged_cells(access, row, cipher, skip=cells.columns if cells else ())
            if damaged:
                result.damaged_rows += 1
                if result.problem is None:
                    result.problem = (
                        f"Row {_shown(access, row)} of {name} holds text in token form that does not "
                        f"open in {', '.join(damaged)}: a damaged token, or plaintext that starts with "
                        f"'{TOKEN_PREFIX}'. Neither is plaintext the tool may seal or return."
                    )
        after = key_of(access, rows[-1])
        if meter is not None:
            meter.add(len(rows))
    result.verified_rows += verified
    result.mismatched_rows += mismatched
    result.by_table[name] = verified
    # Rows it sealed that hold newer values now, or that no longer read as sealed at all.
    result.unverifiable_rows += max(0, expected - verified - mismatched)


def _sealed(access: TableAccess, organizations: tuple[str, ...] | None) -> sa.ColumnElement[bool]:
    """The rows verification reads: in scope, holding no plaintext."""
    return sa.and_(sa.not_(pending_condition(access)), organization_condition(access, organizations))


def _rows_to_verify(
    connection: sa.Connection, access: TableAccess, organizations: tuple[str, ...] | None
) -> int:
    return int(
        connection.execute(
            sa.select(sa.func.count()).select_from(access.table).where(_sealed(access, organizations))
        ).scalar_one()
    )


def _shown(access: TableAccess, row: Any) -> str:
    return ", ".join(map(str, key_of(access, row)))
