"""A key rotation's batches: every token sealed under a retiring data key generation is opened
and sealed again under its organization's active key, in place, one short transaction a batch.

No value changes, so nothing is backed up: the retiring key stays in the database (it only
stops sealing), and until the rotation is verified every token opens whichever generation it
is under. What does change is each token's nonce, which the row metadata of the migration that
sealed the cell records as its proof of ownership (storage/sealed_cells.py); the batch moves
that record to the new token in the same transaction, so the owning migration still verifies
and rolls back exactly its cells.

Each re-sealed token is opened again before the write and must give back the very bytes the old
one held. The write is guarded per row like an encryption batch's: it only matches while every
rotated cell still holds the token that was read, so a value the application wrote meanwhile is
never overwritten; such a row is counted as changed and read again by the next pass (or, if it
now holds plaintext, left to the next encryption migration).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from tui_migrator.common.errors import DecryptionFailed
from tui_migrator.crypto.ciphers import ValueCipher
from tui_migrator.crypto.codec import encode_key
from tui_migrator.crypto.tokens import TOKEN_PREFIX, token_head, token_nonce
from tui_migrator.engine.batch_source import Batch
from tui_migrator.engine.batches import BatchResult, Failure, shown_key
from tui_migrator.engine.retry import RetryPolicy, with_retries
from tui_migrator.storage import failed_records, migration_claims, row_metadata
from tui_migrator.storage import migration_records as migrations
from tui_migrator.storage.column_storage import (
    RecordRefused,
    TableAccess,
    cell_token,
    key_of,
    row_context,
)
from tui_migrator.storage.database import fetch_dicts, serialized_write
from tui_migrator.storage.mapping import ResolvedColumn
from tui_migrator.storage.sealed_cells import SealedCells
from tui_migrator.storage.tables import (
    row_metadata_table,
    utc_now,
)

T = TypeVar("T")
_KEY = "tm_key_{}"
_OLD = "tm_old_{}"
_NEW = "tm_new_{}"


@dataclass(frozen=True)
class RotatedCell:
    column: str  # the mapped column (what the token is bound to)
    place: str  # where its token is stored: the column itself, or its companion
    old_token: str
    new_token: str


@dataclass
class RotatedRow:
    row_key: str
    key: tuple[Any, ...]
    key_id: str
    cells: list[RotatedCell] = field(default_factory=list)


def token_place(access: TableAccess, column: ResolvedColumn) -> str | None:
    """Where ``column``'s token is stored (the column, or its companion if the table has it)."""
    if column.companion is None:
        return column.name
    return access.existing_companion(column)


def rotation_condition(access: TableAccess, retiring: Iterable[str]) -> sa.ColumnElement[bool]:
    """Rows holding a token under one of the ``retiring`` keys, by the rule of
    :func:`cell_token`: a text column's own token, or a companion's while the original is NULL."""
    heads = sorted({token_head(key_id) for key_id in retiring})
    if not heads:
        return sa.false()
    parts: list[sa.ColumnElement[bool]] = []
    for column in access.mapped.columns:
        place = token_place(access, column)
        if place is None:
            continue
        stored = access.table.c[place]
        under_retiring = sa.or_(
            *(
                sa.func.substr(stored, 1, length).in_([h for h in heads if len(h) == length])
                for length in sorted({len(h) for h in heads})
            )
        )
        if place == column.name:
            parts.append(sa.func.coalesce(under_retiring, sa.false()))
        else:
            parts.append(
                sa.and_(access.table.c[column.name].is_(None), sa.func.coalesce(under_retiring, sa.false()))
            )
    return sa.or_(*parts) if parts else sa.false()


def cells_to_rotate(
    access: TableAccess, row: Mapping[str, Any], retiring: frozenset[str]
) -> list[tuple[str, str, str]]:
    """(column, place, token) of each cell of ``row`` whose live token is under a retiring key."""
    found = []
    for column in access.mapped.columns:
        token = cell_token(column, row)
        if token is None:
            continue
        # The key id as the token's text names it: a damaged token under a retiring key's head
        # is taken too, and opening it reports it as a failed row.
        if token[len(TOKEN_PREFIX) :].partition(":")[0] in retiring:
            found.append((column.name, str(token_place(access, column)), token))
    return found


def rotate_rows(
    access: TableAccess, rows: Sequence[Mapping[str, Any]], cipher: ValueCipher, retiring: frozenset[str]
) -> tuple[list[RotatedRow], list[Failure]]:
    """Open each retiring token of ``rows`` and seal its bytes again under the row's active key;
    every new token is opened once more and must give the same bytes."""
    rotated: list[RotatedRow] = []
    failures: list[Failure] = []
    for row in rows:
        key = key_of(access, row)
        row_key = encode_key(key)
        cells = cells_to_rotate(access, row, retiring)
        if not cells:
            continue
        try:
            context = row_context(access, row)
        except RecordRefused as refused:
            failures.append((row_key, shown_key(key), refused.message))
            continue
        opened = cipher.open_encoded_cells(context, [(column, token) for column, _place, token in cells])
        broken = next((value for value in opened if isinstance(value, DecryptionFailed)), None)
        if broken is not None:
            failures.append(
                (
                    row_key,
                    shown_key(key),
                    f"a token does not open, so it cannot be re-sealed: {broken.message}",
                )
            )
            continue
        encoded = [value for value in opened if isinstance(value, bytes)]
        try:
            sealed = cipher.seal_encoded_cells(
                context, [(column, value) for (column, _p, _t), value in zip(cells, encoded, strict=True)]
            )
        except DecryptionFailed as unopened:
            failures.append((row_key, shown_key(key), f"{unopened.message} The row was not written."))
            continue
        if sealed.key_id in retiring:
            raise DecryptionFailed(
                f"The active key of organization {context.organization_id} is one being retired; "
                "the rotation stopped before writing.",
            )
        reopened = cipher.open_encoded_cells(
            context, [(column, token) for (column, _p, _t), token in zip(cells, sealed.tokens, strict=True)]
        )
        if reopened != encoded:
            failures.append(
                (
                    row_key,
                    shown_key(key),
                    "a re-sealed token did not open to the value it sealed; it was not written",
                )
            )
            continue
        rotated.append(
            RotatedRow(
                row_key,
                key,
                sealed.key_id,
                [
                    RotatedCell(column, place, old, new)
                    for (column, place, old), new in zip(cells, sealed.tokens, strict=True)
                ],
            )
        )
    return rotated, failures


class RotationBatches:
    """Reads and rotates the batches of one table for one key rotation."""

    def __init__(
        self,
        engine: Engine,
        access: TableAccess,
        *,
        migration_id: str,
        cipher: ValueCipher,
        retiring: frozenset[str],
        epoch: int,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.engine = engine
        self.access = access
        self.migration_id = migration_id
        self.cipher = cipher
        self.retiring = retiring
        # The migrations that may own cells of the table (read once: table locks keep any other
        # migration of the table from running while the rotation does).
        self._owners: list[str] | None = None
        self.epoch = epoch
        self.retry = retry or RetryPolicy()
        self._updates: dict[tuple[str, ...], sa.Update] = {}

    @property
    def table_name(self) -> str:
        return self.access.mapped.name

    # -- reading: what KeysetSource-like sources ask -------------------------------------------

    def pending_query(self, *, after: Sequence[Any] | None, limit: int | None) -> sa.Select[Any]:
        return self.access.select_rows(after=after, limit=limit).where(
            rotation_condition(self.access, self.retiring)
        )

    def read(self, *, after: Sequence[Any] | None, limit: int) -> list[dict[str, Any]]:
        def read_once() -> list[dict[str, Any]]:
            with self.engine.connect() as connection:
                return fetch_dicts(connection, self.pending_query(after=after, limit=limit))

        return self.retrying(read_once, what="reading a batch")

    def pending_rows(self) -> int:
        with self.engine.connect() as connection:
            query = sa.select(sa.func.count()).select_from(self.access.table)
            return int(
                connection.execute(query.where(rotation_condition(self.access, self.retiring))).scalar_one()
            )

    def next_batch(self, *, after: Sequence[Any] | None, limit: int) -> Batch | None:
        rows = self.read(after=after, limit=limit)
        return Batch(rows, after, key_of(self.access, rows[-1])) if rows else None

    # -- processing --------------------------------------------------------------------------

    def process(self, batch: Batch) -> BatchResult:
        started = time.perf_counter()
        rotated, failures = rotate_rows(self.access, batch.rows, self.cipher, self.retiring)
        written = self.retrying(
            partial(self._write, rotated, failures, len(batch.rows)), what="writing a batch"
        )
        result = BatchResult(rows=len(batch.rows), encrypted=written, failed=failures)
        result.retries = len(rotated) - written
        result.seconds = time.perf_counter() - started
        return result

    def _write(self, rotated: list[RotatedRow], failures: list[Failure], rows_read: int) -> int:
        """One transaction: each row's guarded UPDATE, its owners' metadata moved to the new
        tokens, failures, counters and the batch log. Returns the rows written."""
        with serialized_write(self.engine) as connection:
            migration_claims.check_epoch(connection, self.migration_id, self.epoch)
            now = utc_now()
            written = [row for row in rotated if self._update_row(connection, row)]
            self._move_ownership(connection, written)
            if failures:
                failed_records.record(connection, self.migration_id, self.table_name, failures, now)
            if written:
                failed_records.resolve(
                    connection, self.migration_id, self.table_name, [row.row_key for row in written]
                )
            migrations.count_batch(
                connection, self.migration_id, self.table_name, done=len(written), rows_read=rows_read, at=now
            )
            return len(written)

    def _update_row(self, connection: Connection, row: RotatedRow) -> bool:
        places = tuple(cell.place for cell in row.cells)
        parameters = {_KEY.format(index): value for index, value in enumerate(row.key)}
        for index, cell in enumerate(row.cells):
            parameters[_OLD.format(index)] = cell.old_token
            parameters[_NEW.format(index)] = cell.new_token
        return connection.execute(self._update_statement(places), parameters).rowcount == 1

    def _update_statement(self, places: tuple[str, ...]) -> sa.Update:
        """The row's UPDATE for these token places: matched by key and by each place still
        holding the token that was read (the guard against the application's writes)."""
        if places not in self._updates:
            access, table = self.access, self.access.table
            key_matches = [
                column
                == access.bound_key(name, sa.bindparam(_KEY.format(index), type_=access.bind_type(name)))
                for index, (name, column) in enumerate(
                    zip(access.mapped.primary_key, access.key_columns, strict=True)
                )
            ]
            still = [
                table.c[place] == sa.bindparam(_OLD.format(index), type_=sa.Text())
                for index, place in enumerate(places)
            ]
            values = {
                place: sa.bindparam(_NEW.format(index), type_=sa.Text()) for index, place in enumerate(places)
            }
            self._updates[places] = sa.update(table).where(*key_matches, *still).values(values)
        return self._updates[places]

    def _move_ownership(self, connection: Connection, written: list[RotatedRow]) -> None:
        """Each rotated cell's owner — the migration whose row metadata names the old token's
        nonce — now names the new token's, and the row's key id is the new key's."""
        if not written:
            return
        if self._owners is None:
            self._owners = row_metadata.possible_owners(connection, self.table_name, self.migration_id)
        owners = self._owners
        if not owners:
            return
        metadata = row_metadata_table.c
        by_key = {row.row_key: row for row in written}
        found = connection.execute(
            sa.select(metadata.migration_id, metadata.row_key, metadata.sealed_columns).where(
                metadata.migration_id.in_(owners),
                metadata.table_name == self.table_name,
                metadata.row_key.in_(list(by_key)),
            )
        ).all()
        for migration_id, row_key, sealed_columns in found:
            if sealed_columns is None:
                continue  # a version-1 row owns its cells by position, whatever the nonce
            nonces = json.loads(sealed_columns)
            row = by_key[row_key]
            moved = False
            for cell in row.cells:
                if cell.column in nonces and nonces[cell.column] == token_nonce(cell.old_token):
                    nonces[cell.column] = token_nonce(cell.new_token)
                    moved = True
            if not moved:
                continue
            connection.execute(
                sa.update(row_metadata_table)
                .where(
                    metadata.migration_id == migration_id,
                    metadata.table_name == self.table_name,
                    metadata.row_key == row_key,
                )
                # The tokens' digest described the old tokens: verification opens the new ones.
                .values(
                    sealed_columns=SealedCells(nonces).to_metadata(), key_id=row.key_id, tokens_digest=None
                )
            )

    def retrying(self, action: Callable[[], T], *, what: str) -> T:
        return with_retries(self.retry, action, what=f"{what} of {self.table_name}")


class RotationSource:
    """Keyset batches of a rotation (no row locks: a rotation runs in one worker)."""

    other_workers_may_hold_rows = False
    batches_hold_row_locks = False

    def __init__(self, batches: RotationBatches) -> None:
        self.batches = batches

    def finishing(self) -> RotationSource:
        return self

    def next_batch(self, *, after: Sequence[Any] | None, limit: int) -> Batch | None:
        return self.batches.next_batch(after=after, limit=limit)

    def process(self, batch: Batch) -> BatchResult:
        return self.batches.process(batch)
