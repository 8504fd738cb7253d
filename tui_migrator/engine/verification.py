"""Integrity verification: every row a migration wrote is read back and must hold the tokens it
wrote (which opened to the original values before they were written), or tokens that open to the
values it digested; then every row in scope must be encrypted or listed as failed, and every
value in token form must open.

A row checks the cells the migration itself sealed (see storage.sealed_cells): a cell that holds
a newer value since (written by the application, or sealed again by a later migration) makes the
row "changed", not a mismatch; a cell whose token does not open is a mismatch."""

from __future__ import annotations

import dataclasses
import hmac
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from operator import attrgetter
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tui_migrator.common.errors import DecryptionFailed, OperationFailed
from tui_migrator.crypto.ciphers import RowContext, ValueCipher
from tui_migrator.crypto.codec import encode_keys, pack_values
from tui_migrator.crypto.tokens import TOKEN_PREFIX
from tui_migrator.engine import read_sizes
from tui_migrator.engine.cpu_pool import BatchContext, CpuPool
from tui_migrator.engine.phase_progress import PhaseMeter
from tui_migrator.engine.rotation import rotation_condition
from tui_migrator.engine.scope import (
    keyless_pending_count,
    organization_condition,
    pending_condition,
    pending_count,
)
from tui_migrator.engine.window_steps import Sharing, Summary, WindowStep, run_step
from tui_migrator.storage import row_metadata
from tui_migrator.storage.built_statements import built_once
from tui_migrator.storage.column_storage import (
    AFTER_KEY,
    FIRST_KEY,
    LAST_KEY,
    LIMIT_PARAMETER,
    RecordRefused,
    RowShape,
    Shaped,
    TableAccess,
    cell_token,
    key_of,
    next_keys_query,
    organization_of,
    piece_parameters,
    reflect,
    row_context,
    sealing_organization,
)
from tui_migrator.storage.database import KeysQuery, fetch_dicts, key_windows
from tui_migrator.storage.mapping import ResolvedColumn
from tui_migrator.storage.migration_records import MigrationRecord
from tui_migrator.storage.row_metadata import Recorded
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
    # Of plaintext_rows_left: rows with a NULL in their key, which no run can address (written
    # so during the run: a start refuses them).
    plaintext_rows_without_key: int = 0
    # Rows another pass of the batches would seal, where they are all that failed the check:
    # written in plaintext after their table's last pass (the runner goes back for them).
    rows_to_seal_again: int = 0
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
            "plaintextRowsWithoutKey": self.plaintext_rows_without_key,
            "failedRows": self.failed_rows,
            "damagedRows": self.damaged_rows,
            "verifiedByTable": self.by_table,
            "problem": self.problem,
        }


def original_values(access: Shaped, row: Any, cipher: ValueCipher) -> list[Any]:
    """The values the row's mapped columns stand for: tokens opened, everything else as stored."""
    values: list[Any] = []
    sealed: list[tuple[int, str, str]] = []
    for index, column in enumerate(access.mapped.columns):
        token = cell_token(column, row)
        values.append(row[column.name] if token is None else None)
        if token is not None:
            sealed.append((index, column.name, token))
    if sealed:
        opened = cipher.decrypt_cells(row_context(access, row), [(name, token) for _i, name, token in sealed])
        for (index, _name, _token), value in zip(sealed, opened, strict=True):
            values[index] = value
    return values


class RowCheck(Enum):
    VERIFIED = "verified"  # every cell the migration sealed opens to the value it digested
    CHANGED = "changed"  # a cell it sealed holds something newer (the application, a later run)
    MISMATCHED = "mismatched"  # a cell it sealed does not open, or opens to another value


def check_row(
    access: Shaped, row: Any, cells: SealedCells, recorded: Recorded, cipher: ValueCipher
) -> RowCheck:
    """Does ``row`` still hold, in the cells one migration sealed, tokens that open to the
    values that migration digested?

    Where its row metadata has the digest of the tokens it wrote (each opened to its value's
    bytes as it was sealed, see ValueCipher.seal_encoded_cells), the same tokens found in those
    cells prove it
    without opening them again. Otherwise, or where they differ, each token is opened and the
    bytes it gives are digested, which also tells a cell changed since from a damaged one."""
    written = recorded.tokens_digest
    if written is not None and _holds_the_tokens_written(access, row, cells, written, cipher):
        return RowCheck.VERIFIED
    return _open_and_check(access, row, cells, recorded.digest, cipher)


def _holds_the_tokens_written(
    access: Shaped, row: Any, cells: SealedCells, written: str, cipher: ValueCipher
) -> bool:
    mapped = access.mapped
    try:
        organization = organization_of(mapped, row)
    except RecordRefused:
        return False
    held = {column.name: cell_token(column, row) for column in mapped.columns if column.name in cells.nonces}
    actual = cells.digest_tokens(cipher, mapped.name, key_of(access, row), organization, held)
    return actual is not None and hmac.compare_digest(actual, written)


def _holds_only_the_tokens_written(
    access: Shaped,
    row: Any,
    recorded: Recorded,
    cipher: ValueCipher,
    by_name: Sequence[ResolvedColumn] | None = None,
) -> bool:
    """The common case of :func:`verify_batch`, told without parsing the row metadata's cells:
    the cells of ``row`` that hold a token are exactly those the migration sealed, each holding
    the token it wrote — its recorded tokens digest, which covers the cells' names with their
    tokens, is the digest of every token the row holds. Then :func:`check_row` would find it
    VERIFIED, and :func:`damaged_cells`, which looks only at cells in token form the migration
    did not seal, has none to look at. Any other row (a cell changed since, a token of another
    migration beside these, a version-1 record) gives another digest, or has none: False, and
    it goes the whole way. ``by_name``: the table's columns in name order, the digest's
    (:func:`_columns_by_name`: a batch's rows share them)."""
    written = recorded.tokens_digest
    if written is None or recorded.sealed_columns is None:
        return False
    if by_name is None:
        by_name = _columns_by_name(access)
    held = [(column.name, token) for column in by_name if (token := cell_token(column, row)) is not None]
    if not held:
        return False
    try:
        organization = organization_of(access.mapped, row)
    except RecordRefused:
        return False
    packed_key = pack_values(key_of(access, row))
    actual = cipher.digest_ordered_tokens(access.mapped.name, packed_key, organization, held)
    return hmac.compare_digest(actual, written)


def _columns_by_name(access: Shaped) -> list[ResolvedColumn]:
    return sorted(access.mapped.columns, key=attrgetter("name"))


def _open_and_check(
    access: Shaped, row: Any, cells: SealedCells, digest: str, cipher: ValueCipher
) -> RowCheck:
    mapped = access.mapped
    if cells.whole_row:
        try:
            values = original_values(access, row, cipher)
        except (DecryptionFailed, RecordRefused):
            return RowCheck.MISMATCHED
        originals = {column.name: value for column, value in zip(mapped.columns, values, strict=True)}
    else:
        # Judged cell by cell in column order: the first cell that holds no token, does not
        # open, or holds another migration's token decides.
        sealed = [
            (column.name, cell_token(column, row)) for column in mapped.columns if column.name in cells.nonces
        ]
        present: list[tuple[str, str]] = []
        for name, token in sealed:
            if token is None:
                break
            present.append((name, token))
        opened: list[bytes | DecryptionFailed] = []
        context = None
        if present:
            try:
                context = row_context(access, row)
            except RecordRefused:
                return RowCheck.MISMATCHED
            opened = cipher.open_encoded_cells(context, present)
        encoded = {}
        for (name, token), value in zip(present, opened, strict=True):
            if isinstance(value, DecryptionFailed):
                return RowCheck.MISMATCHED
            if not cells.owns(name, token):
                return RowCheck.CHANGED  # a token that opens, written by a later migration
            encoded[name] = value
        if len(present) < len(sealed):
            return RowCheck.CHANGED
        # The digest of the bytes each token opens to: the values sealed, exactly as encoded
        # then (no decoding and encoding again in between).
        if context is None:  # the migration sealed no cell of the row: a digest of nothing
            key, organization, packed_key = key_of(access, row), organization_of(mapped, row), None
        else:  # the row's key and organization as its tokens were opened with, packed once
            key, organization, packed_key = context.primary_key, context.organization_id, context.key_bytes
        actual = cells.digest_encoded(cipher, mapped.name, key, organization, encoded, packed_key=packed_key)
        return RowCheck.VERIFIED if hmac.compare_digest(actual, digest) else RowCheck.MISMATCHED
    actual = cells.digest(cipher, mapped, key_of(access, row), organization_of(mapped, row), originals)
    return RowCheck.VERIFIED if hmac.compare_digest(actual, digest) else RowCheck.MISMATCHED


def damaged_cells(access: Shaped, row: Any, cipher: ValueCipher, skip: tuple[str, ...] = ()) -> list[str]:
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
            cipher.decrypt_cells(base, ((column.name, token),))
        except (DecryptionFailed, RecordRefused):
            damaged.append(column.name)
    return damaged


def verify_migration(
    engine: Engine,
    record: MigrationRecord,
    tables: dict[str, TableAccess],
    pool: CpuPool,
    organizations: tuple[str, ...] | None,
    meter: PhaseMeter | None = None,
    sharing: Sharing | None = None,
) -> VerificationResult:
    """``meter`` counts the rows read back, of all the rows holding tokens in scope;
    ``sharing``: workers that joined the migration may check some windows (window_steps.py)."""
    result = VerificationResult()
    failed_by_table = {table.name: table.failed_records for table in record.tables}
    with engine.connect() as connection:
        accesses = [reflect(connection, tables[progress.name].mapped) for progress in record.tables]
        if meter is not None:
            meter.begin(sum(_rows_to_verify(connection, access, organizations) for access in accesses))
    left_by_table: dict[str, int] = {}
    keyless_by_table: dict[str, int] = {}
    for progress, access in zip(record.tables, accesses, strict=True):
        verify_table(engine, record.id, access, pool, organizations, result, meter, sharing)
        with engine.connect() as connection:
            pending = connection.execute(pending_count(access, organizations)).scalar_one()
            keyless = connection.execute(keyless_pending_count(access, organizations)).scalar_one()
        failed = failed_by_table.get(progress.name, 0)
        result.failed_rows += failed
        left_by_table[progress.name] = max(0, pending - failed)
        if keyless:
            keyless_by_table[f"{progress.name} ({', '.join(access.mapped.primary_key)})"] = keyless
    result.plaintext_rows_without_key = sum(keyless_by_table.values())
    result.plaintext_rows_left = sum(left_by_table.values()) + result.plaintext_rows_without_key
    if result.problem is None:
        result.problem = _completeness_problem(left_by_table, keyless_by_table)
        if result.problem is not None and not keyless_by_table:
            result.rows_to_seal_again = result.plaintext_rows_left
    return result


def _completeness_problem(left_by_table: dict[str, int], keyless_by_table: dict[str, int]) -> str | None:
    """Rows in scope that still hold plaintext and are not listed as failed, in words; None if
    there are none. Rows with a NULL key are said first: no pass can seal them, so they need the
    operator."""
    if keyless_by_table:
        where = "; ".join(f"{table}: {rows}" for table, rows in keyless_by_table.items())
        return (
            f"Completeness check failed: rows written during the run hold plaintext with NULL in their "
            f"key ({where}), so no run can tell them apart to encrypt them. Give them key values (or "
            "delete them), then resume."
        )
    left = {table: rows for table, rows in left_by_table.items() if rows}
    if not left:
        return None
    where = "; ".join(f"{rows} rows of {table}" for table, rows in left.items())
    return f"Completeness check failed: {where} still hold plaintext and are not listed as failed."


def verify_table(
    engine: Engine,
    migration_id: str,
    access: TableAccess,
    pool: CpuPool,
    organizations: tuple[str, ...] | None,
    result: VerificationResult,
    meter: PhaseMeter | None,
    sharing: Sharing | None = None,
) -> None:
    name = access.mapped.name
    with engine.connect() as connection:
        expected = connection.execute(
            sa.select(sa.func.count())
            .select_from(row_metadata_table)
            .where(row_metadata_table.c.migration_id == migration_id, row_metadata_table.c.table_name == name)
        ).scalar_one()
    verified = mismatched = 0
    # Each window of keys is read and checked by the run's workers (rows, row metadata,
    # tokens), or by a joined worker (``sharing``), while the next window's keys are read here;
    # their verdicts are taken in key order, so the first problem reported is the first in key
    # order.

    def add(summary: Summary) -> None:
        nonlocal verified, mismatched
        verdict = BatchVerdict(**summary)
        verified += verdict.verified
        mismatched += verdict.mismatched
        result.damaged_rows += verdict.damaged
        if result.problem is None:
            result.problem = verdict.problem
        if meter is not None:
            meter.add(verdict.rows)

    # A window's rows are read whole in a worker process: fewer where they are large.
    rows = read_sizes.rows_per_read(engine, access, BATCH)

    def next_keys(after: tuple[Any, ...] | None) -> KeysQuery:
        return next_keys_query(
            access,
            ("verify_keys", organizations, rows),
            lambda bound: access.select_keys(after=bound, limit=rows).where(
                organization_condition(access, organizations)
            ),
            after,
        )

    windows = key_windows(engine, next_keys)
    run_step(engine, verify_step(access, migration_id, organizations), windows, pool, add, sharing=sharing)
    result.verified_rows += verified
    result.mismatched_rows += mismatched
    result.by_table[name] = verified
    # Rows it sealed that hold newer values now, or that no longer read as sealed at all.
    result.unverifiable_rows += max(0, expected - verified - mismatched)


VERIFY_STEP = "verification"


def verify_step(access: TableAccess, migration_id: str, organizations: tuple[str, ...] | None) -> WindowStep:
    """The verification of ``access``'s sealed rows in scope, a window of keys at a time
    (:func:`verify_window`). Summary: the window's :class:`BatchVerdict`."""
    return WindowStep(
        VERIFY_STEP,
        access.mapped.name,
        verify_window,
        (access, migration_id, organizations),
        summarize=dataclasses.asdict,
    )


def verify_window(
    context: BatchContext,
    access: TableAccess,
    migration_id: str,
    organizations: tuple[str, ...] | None,
    first: tuple[Any, ...],
    last: tuple[Any, ...],
) -> BatchVerdict:
    """Read the sealed rows in scope with keys from ``first`` to ``last`` and the row metadata
    ``migration_id`` recorded for them (rows it did not seal have none), and check them (see
    :func:`verify_batch`). A batch function (engine/cpu_pool.py): in a worker it reads through
    the worker's own connection, so the rows never pass through the run's process.

    The window's keys are read first, its sealed rows then by key range: asked at once ("the
    next sealed rows in key order"), PostgreSQL's planner, whose statistics still describe the
    table before the migration (no row sealed), chose to scan and sort the whole table for
    every batch."""
    with context.engine.connect() as connection:
        return verify_rows_in(connection, context, access, migration_id, organizations, first, last)


def verify_rows_in(
    connection: sa.Connection,
    context: BatchContext,
    access: TableAccess,
    migration_id: str,
    organizations: tuple[str, ...] | None,
    first: tuple[Any, ...],
    last: tuple[Any, ...],
) -> BatchVerdict:
    """:func:`verify_window` through ``connection``: what the estimate's calibration times, in
    its transaction, of the rows it wrote. The window's rows are read and checked a piece at a
    time (read_sizes.pieces), so that rows grown large in the middle of the table, which the
    window's size did not foresee, are not held a thousand at once."""

    def read(after: tuple[Any, ...] | None, limit: int) -> list[dict[str, Any]]:
        query = built_once(
            access,
            ("verify_piece", organizations, after is None),
            lambda: (
                access.select_rows(limit=sa.bindparam(LIMIT_PARAMETER))
                .where(
                    access.key_range(FIRST_KEY, LAST_KEY)
                    if after is None
                    else access.key_after_up_to(AFTER_KEY, LAST_KEY)
                )
                .where(_sealed(access, organizations))
            ),
        )
        return fetch_dicts(connection, query, piece_parameters(first, last, after, limit))

    names = access.value_names
    shape = RowShape(access.mapped)
    verdict = BatchVerdict()
    for rows in read_sizes.pieces(
        read, lambda row: key_of(access, row), lambda row: read_sizes.row_bytes(row, names), last, BATCH
    ):
        keys = encode_keys([key_of(access, row) for row in rows])
        sealed = row_metadata.sealed_rows(connection, migration_id, access.mapped.name, keys)
        piece = verify_batch(context, shape, rows, keys, sealed)
        piece.rows = len(rows)
        verdict.add(piece)
    return verdict


@dataclass
class BatchVerdict:
    rows: int = 0  # the rows read back (set by verify_window)
    verified: int = 0
    mismatched: int = 0
    damaged: int = 0
    problem: str | None = None  # the first problem found in the batch

    def add(self, later: BatchVerdict) -> None:
        """Count in the verdict of rows later in key order (the next piece of a window)."""
        self.rows += later.rows
        self.verified += later.verified
        self.mismatched += later.mismatched
        self.damaged += later.damaged
        self.problem = self.problem or later.problem


def verify_batch(
    context: BatchContext,
    shape: RowShape,
    rows: list[dict[str, Any]],
    keys: list[str],
    sealed: dict[str, Recorded],
) -> BatchVerdict:
    """Check one batch of rows read back (``keys``: their encoded keys; ``sealed``: the row
    metadata of those this migration sealed). A batch function (engine/cpu_pool.py)."""
    verdict = BatchVerdict()
    name, cipher = shape.mapped.name, context.cipher
    by_name = _columns_by_name(shape)
    for row_key, row in zip(keys, rows, strict=True):
        skip: tuple[str, ...] = ()
        if row_key in sealed:
            recorded = sealed[row_key]
            if _holds_only_the_tokens_written(shape, row, recorded, cipher, by_name):
                verdict.verified += 1
                continue
            cells = SealedCells.from_metadata(recorded.sealed_columns, shape.mapped)
            skip = cells.columns
            outcome = check_row(shape, row, cells, recorded, cipher)
            verdict.verified += outcome is RowCheck.VERIFIED
            if outcome is RowCheck.MISMATCHED:
                verdict.mismatched += 1
                if verdict.problem is None:
                    verdict.problem = _mismatch_problem(shape, row, cells, recorded, cipher)
                continue
        damaged = damaged_cells(shape, row, cipher, skip=skip)
        if damaged:
            verdict.damaged += 1
            if verdict.problem is None:
                verdict.problem = (
                    f"Row {_shown(shape, row)} of {name} holds text in token form that does not "
                    f"open in {', '.join(damaged)}: a damaged token, or plaintext that starts with "
                    f"'{TOKEN_PREFIX}'. Neither is plaintext the tool may seal or return."
                )
    return verdict


def _mismatch_problem(
    shape: RowShape, row: dict[str, Any], cells: SealedCells, recorded: Recorded, cipher: ValueCipher
) -> str:
    """What a mismatched row is, in words: a row the application moved to another organization
    after the migration sealed it is told apart (its tokens still open to the values it held, as
    the first organization's, which is the only one that may read them), for it is not damage."""
    shown, table = _shown(shape, row), shape.mapped.name
    moved = _moved(shape, row, cells, recorded, cipher)
    if moved is None:
        return (
            f"Integrity check failed: row {shown} of {table} does not decrypt to the values it held "
            "before the migration."
        )
    sealed_under, now = moved
    return (
        f"Integrity check failed: row {shown} of {table} was moved to organization {now or '(none)'} "
        f"after the migration sealed it under {sealed_under}'s key. Its tokens still open to the "
        f"values it held, but only as {sealed_under}'s, which {now or 'a row with no organization'} "
        f"cannot read. Give the row back to {sealed_under} and resume, or roll back (which restores "
        "it) and migrate again."
    )


def _moved(
    shape: RowShape, row: dict[str, Any], cells: SealedCells, recorded: Recorded, cipher: ValueCipher
) -> tuple[str, str | None] | None:
    """(the organization the row was sealed under, the one its column names now) where they
    differ and the row checks out as the first's; else None."""
    column = shape.mapped.organization_column
    if column is None:
        return None
    sealed_under = sealing_organization(shape, row, recorded.key_id, cipher)
    try:
        now = organization_of(shape.mapped, row)
    except RecordRefused:
        now = None
    if sealed_under is None or sealed_under == now:
        return None
    if check_row(shape, {**row, column: sealed_under}, cells, recorded, cipher) is not RowCheck.VERIFIED:
        return None
    return sealed_under, now


def _sealed(access: TableAccess, organizations: tuple[str, ...] | None) -> sa.ColumnElement[bool]:
    """The rows verification reads: in scope, holding no plaintext."""
    return sa.and_(sa.not_(pending_condition(access)), organization_condition(access, organizations))


def verify_rotation(
    engine: Engine,
    record: MigrationRecord,
    tables: dict[str, TableAccess],
    pool: CpuPool,
    retiring: frozenset[str],
    meter: PhaseMeter | None = None,
) -> VerificationResult:
    """A key rotation's proof, table by table: every migration that owns cells of the table is
    verified again — every token it wrote (re-sealed ones included) opens to the values it
    digested before it sealed them — and no token under a retiring key is left, except in rows
    listed as failed."""
    result = VerificationResult()
    with engine.connect() as connection:
        accesses = [reflect(connection, tables[progress.name].mapped) for progress in record.tables]
        owners = {
            access.mapped.name: row_metadata.possible_owners(connection, access.mapped.name, record.id)
            for access in accesses
        }
        if meter is not None:
            meter.begin(
                sum(
                    _rows_to_verify(connection, access, None) * len(owners[access.mapped.name])
                    for access in accesses
                )
            )
    for progress, access in zip(record.tables, accesses, strict=True):
        for owner in owners[progress.name]:
            verify_table(engine, owner, access, pool, None, result, meter)
        with engine.connect() as connection:
            left = connection.execute(
                sa.select(sa.func.count())
                .select_from(access.table)
                .where(rotation_condition(access, retiring))
            ).scalar_one()
        result.failed_rows += progress.failed_records
        still = max(0, left - progress.failed_records)
        # Counted as what a rotation leaves undone: tokens under a retiring key.
        result.plaintext_rows_left += still
        if still and result.problem is None:
            result.problem = (
                f"Completeness check failed: {still} rows of {progress.name} still hold tokens under a "
                "retiring key and are not listed as failed."
            )
    return result


def _rows_to_verify(
    connection: sa.Connection, access: TableAccess, organizations: tuple[str, ...] | None
) -> int:
    return int(
        connection.execute(
            sa.select(sa.func.count()).select_from(access.table).where(_sealed(access, organizations))
        ).scalar_one()
    )


def _shown(access: Shaped, row: Any) -> str:
    return ", ".join(map(str, key_of(access, row)))
