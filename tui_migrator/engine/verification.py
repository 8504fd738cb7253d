"""Integrity verification: every row a migration wrote is read back, decrypted and checked
against the digest taken of its original values; then every row in scope must be encrypted or
listed as failed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tui_migrator.common.errors import DecryptionFailed, OperationFailed
from tui_migrator.crypto.ciphers import RowContext, ValueCipher
from tui_migrator.crypto.codec import encode_key
from tui_migrator.crypto.tokens import is_token
from tui_migrator.engine.scope import organization_condition, pending_condition
from tui_migrator.storage import migration_records as migrations
from tui_migrator.storage.column_storage import TableAccess, key_of, organization_of, reflect, row_context
from tui_migrator.storage.migration_records import MigrationRecord
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
            "verifiedByTable": self.by_table,
            "problem": self.problem,
        }


def original_values(access: TableAccess, row: Any, cipher: ValueCipher) -> list[Any]:
    """The values the row held before it was sealed: tokens opened, everything else as stored."""
    base: RowContext | None = None
    values = []
    for column in access.mapped.columns:
        token = row.get(column.companion) if column.companion else row[column.name]
        if token is not None and is_token(token):
            base = base or row_context(access, row)
            values.append(cipher.decrypt(token, base.with_column(column.name)))
        else:
            values.append(row[column.name])
    return values


def verify_migration(
    engine: Engine,
    record: MigrationRecord,
    tables: dict[str, TableAccess],
    cipher: ValueCipher,
    organizations: tuple[str, ...] | None,
) -> VerificationResult:
    result = VerificationResult()
    failed_by_table = {table.name: table.failed_records for table in record.tables}
    for progress in record.tables:
        with engine.connect() as connection:
            access = reflect(connection, tables[progress.name].mapped)
        _verify_table(engine, record.id, access, cipher, organizations, result)
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
) -> None:
    name = access.mapped.name
    after = None
    with engine.connect() as connection:
        expected = connection.execute(
            sa.select(sa.func.count())
            .select_from(row_metadata_table)
            .where(row_metadata_table.c.migration_id == migration_id, row_metadata_table.c.table_name == name)
        ).scalar_one()
    verified = 0
    while True:
        query = access.select_rows(after=after, limit=BATCH).where(
            sa.not_(pending_condition(access)), organization_condition(access, organizations)
        )
        with engine.connect() as connection:
            rows = connection.execute(query).mappings().all()
            if not rows:
                break
            keys = {encode_key(key_of(access, row)): row for row in rows}
            digests = migrations.row_digests(connection, migration_id, name, list(keys))
        for row_key, digest in digests.items():
            row = keys[row_key]
            key = key_of(access, row)
            try:
                values = original_values(access, row, cipher)
            except DecryptionFailed:
                values = None
            actual = (
                cipher.digest_row(name, key, organization_of(access.mapped, row), values) if values else None
            )
            if actual != digest:
                result.mismatched_rows += 1
                if result.problem is None:
                    result.problem = (
                        f"Integrity check failed: row {', '.join(map(str, key))} of {name} does not decrypt "
                        "to the values it held before the migration."
                    )
            else:
                verified += 1
        after = key_of(access, rows[-1])
    result.verified_rows += verified
    result.by_table[name] = verified
    result.unverifiable_rows += max(0, expected - verified - result.mismatched_rows)
