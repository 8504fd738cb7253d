"""One batch of one table: read the plaintext rows, seal them, write them in one short transaction.

The read is one query (keyset pagination on the primary key, with each row's backup where it has
one). Sealing happens outside any transaction, in the calling worker thread. The
write is one transaction: backups of rows not yet backed up, the guarded UPDATE, the per-row
metadata, failures, counters and the batch's entry in the batch log (``tm_checkpoints``: one row
per committed batch with the rows it read and what it added to the backup copy, which the copy's
read-back adds up; nothing resumes from it).
The UPDATE only matches rows that still hold exactly the values that were read, so a row the
application changed in between is never overwritten with a token of its old value: the batch is
rolled back and read again.

Where the next batch comes from (after a key, or claimed with row locks) is ``batch_source``'s
concern; where a table's pass may resume (its resume key) is the runner's.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache, partial
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from tui_migrator.common.errors import DecryptionFailed
from tui_migrator.crypto.ciphers import RowSealer, ValueCipher
from tui_migrator.crypto.codec import UnsupportedValue, encode_key, encode_keys, encode_value
from tui_migrator.crypto.keys import MasterKey
from tui_migrator.engine import backup
from tui_migrator.engine.cpu_pool import BatchContext, CpuPool
from tui_migrator.engine.first_batch import FirstBatchAlone, FirstTimes
from tui_migrator.engine.retry import RetryPolicy, is_row_refusal, refusal_reason, with_retries
from tui_migrator.engine.scope import pending_rows
from tui_migrator.storage import failed_records, migration_claims, row_metadata
from tui_migrator.storage import migration_records as migrations
from tui_migrator.storage.built_statements import built_once
from tui_migrator.storage.column_storage import (
    AFTER_KEY,
    LIMIT_PARAMETER,
    ROW_VERSION,
    UP_TO_KEY,
    KeyOrParameters,
    RecordRefused,
    RowShape,
    SealedRow,
    TableAccess,
    batch_parameters,
    cell_token,
    key_of,
    row_context,
    seal_row,
)
from tui_migrator.storage.database import (
    DriverStatement,
    fetch_dicts,
    joined_sets,
    keyed_now,
    savepoint,
    serialized_write,
    upsert,
)
from tui_migrator.storage.migration_records import BackupChange
from tui_migrator.storage.sealed_cells import SealedCells
from tui_migrator.storage.tables import (
    utc_now,
)

log = logging.getLogger(__name__)

T = TypeVar("T")
# A row that could not be migrated: its encoded key, its key as shown to people, the reason.
Failure = failed_records.Failure

# A row's sealed backup as the backup table holds it, read with the row (None: it has none).
BACKUP_HELD = "tm_backup_held"
_GUARD_PARAMETER = "tm_was_{}"
# How often a batch whose rows keep changing under it is read again before its rows are
# recorded as failed for this pass (a later pass or resume retries them).
CONFLICT_RETRIES = 3


class Claim(Enum):
    """How a claimed batch's read locks its rows (FOR UPDATE): skipping the rows other workers
    hold, or waiting for them (batch_source.ClaimedSource)."""

    SKIP_HELD = "skip held rows"
    WAIT_FOR_HELD = "wait for held rows"


class RowsChanged(Exception):
    """The guarded UPDATE matched fewer rows than it was given."""


@dataclass
class BatchResult:
    rows: int = 0
    encrypted: int = 0
    failed: list[Failure] = field(default_factory=list)
    seconds: float = 0.0
    retries: int = 0


class TableBatches:
    """Reads and writes the batches of one table for one migration.

    With a ``backup_table``, each batch first writes sealed backups of its rows not yet backed
    up (under the migration's own backup key, derived from ``master_key``)."""

    def __init__(
        self,
        engine: Engine,
        access: TableAccess,
        *,
        migration_id: str,
        organizations: tuple[str, ...] | None,
        cipher: ValueCipher,
        master_key: MasterKey,
        backup_table: sa.Table | None,
        dry_run: bool,
        epoch: int | None,
        retry: RetryPolicy | None = None,
        pool: CpuPool | None = None,
    ) -> None:
        self.engine = engine
        self.access = access
        self.migration_id = migration_id
        self.organizations = organizations
        self.cipher = cipher
        sealer = RowSealer(master_key, migration_id) if backup_table is not None else None
        # Where sealing runs: the run's worker processes, or this process.
        self.pool = pool or CpuPool(BatchContext(cipher, sealer, engine), processes=0)
        self.backup_table = backup_table
        self.dry_run = dry_run
        # The claim every write is made under; None only where nothing is kept (the estimate's
        # calibration, rolled back).
        self.epoch = epoch
        self.retry = retry or RetryPolicy()
        self._update = keyed_now(access.update_statement().where(self._guard()))
        self._update_many = DriverStatement(self._update)
        # Each guard parameter's column: the guard compares the value the row was read with.
        self._guard_sources = dict(
            zip(
                _guard_names(len(access.mapped.columns)), [c.name for c in access.mapped.columns], strict=True
            )
        )
        # Shared by the threads that write batches: keyed before they are (keyed_now).
        by_version = access.update_by_row_version()
        self._update_by_version = None if by_version is None else keyed_now(by_version)
        # Made for the connection's dialect on first use (ON CONFLICT is dialect-specific).
        self._dialect_statements: dict[str, DriverStatement] = {}
        # PostgreSQL: a claimed batch's backups in one statement (its rows found by version).
        self._backups_by_version = (
            backup.insert_by_row_version(access, backup_table)
            if backup_table is not None and engine.dialect.name == "postgresql"
            else None
        )
        # The sources process this table's first batch alone: its statements are compiled by
        # one thread (engine/first_batch.py).
        self.first_batch = FirstBatchAlone()
        # And the first batch to take a path batches take only now and then goes alone.
        self.first_times = FirstTimes()

    # -- reading ---------------------------------------------------------------------------

    def pending_query(
        self,
        *,
        after: KeyOrParameters | None,
        up_to: KeyOrParameters | None = None,
        limit: int | sa.BindParameter[Any] | None,
    ) -> sa.Select[Any]:
        query = pending_rows(
            self.access, self.organizations, self.engine.dialect.name, after=after, limit=limit
        )
        if up_to is not None:
            query = query.where(sa.tuple_(*self.access.key_columns) <= self.access.key_tuple(up_to))
        if self.backup_table is not None:
            query = query.add_columns(self._backup_held(self.backup_table))
        return query

    def pending_read(
        self,
        *,
        after: Sequence[Any] | None,
        limit: int,
        up_to: Sequence[Any] | None = None,
        claim: Claim | None = None,
    ) -> tuple[sa.Select[Any], dict[str, Any]]:
        """:meth:`pending_query` as a batch reads it — its statement, built once for this shape
        of read (storage/built_statements.py), and the parameters of this one. ``claim``: with
        the rows locked for the batch's write (FOR UPDATE), skipping or waiting for rows other
        workers hold (batch_source.ClaimedSource)."""
        shape = (
            self.organizations,
            self.backup_table,
            self.engine.dialect.name,
            after is None,
            up_to is None,
            claim,
        )

        def build() -> sa.Select[Any]:
            query = self.pending_query(
                after=None if after is None else AFTER_KEY,
                up_to=None if up_to is None else UP_TO_KEY,
                limit=sa.bindparam(LIMIT_PARAMETER),
            )
            if claim is None:
                return query
            return query.with_for_update(of=self.access.table, skip_locked=claim is Claim.SKIP_HELD)

        parameters: dict[str, Any] = {LIMIT_PARAMETER: limit}
        if after is not None:
            parameters |= AFTER_KEY.values(after)
        if up_to is not None:
            parameters |= UP_TO_KEY.values(up_to)
        return built_once(self.access, ("pending_read", shape), build), parameters

    def _backup_held(self, backup_table: sa.Table) -> sa.Label[Any]:
        """The row's sealed backup (None: it has none), asked per row: one probe of the
        backup's key each. Sealing compares it with the row as it is now (seal_batch).

        Not joined: with statistics that lag behind a backup table the batches are filling,
        PostgreSQL merged the join from the backup's first key for every batch. Not EXISTS either, which
        PostgreSQL may plan as a hashed subplan when its estimates say so: the whole backup
        table read and hashed again for every batch (it did at 100,000 rows: 50 ms a claim
        where the probes take 3 ms). A scalar subquery on the backup's key is never hashed."""
        on = self.access.same_key(backup_table)
        return sa.select(backup_table.c[backup.SEALED_COLUMN]).where(on).scalar_subquery().label(BACKUP_HELD)

    def read(
        self, *, after: Sequence[Any] | None, limit: int, up_to: Sequence[Any] | None = None
    ) -> list[dict[str, Any]]:
        """The next ``limit`` rows that still hold plaintext, after key ``after``."""
        return self.retrying(
            lambda: self._read_once(after=after, limit=limit, up_to=up_to), what="reading a batch"
        )

    def _read_once(
        self, *, after: Sequence[Any] | None, limit: int, up_to: Sequence[Any] | None
    ) -> list[dict[str, Any]]:
        with self.engine.connect() as connection:
            return fetch_dicts(connection, *self.pending_read(after=after, up_to=up_to, limit=limit))

    def key(self, row: Mapping[Any, Any]) -> tuple[Any, ...]:
        return key_of(self.access, row)

    @property
    def table_name(self) -> str:
        return self.access.mapped.name

    # -- processing ------------------------------------------------------------------------

    def process(self, rows: list[dict[str, Any]], *, after: Sequence[Any] | None) -> BatchResult:
        """Seal ``rows`` and commit them (or, in a dry run, prove they would round-trip)."""
        started = time.perf_counter()
        result = BatchResult(rows=len(rows))
        last_key = self.key(rows[-1])
        for attempt in range(CONFLICT_RETRIES + 1):
            sealed, failures = self.seal_rows(rows)
            if self.dry_run:
                result.encrypted, result.failed = len(sealed), failures
                # Nothing of the data is written; the outcome goes to the tool's own tables.
                self.retrying(
                    partial(self._write, [], failures, 0, counted=len(sealed)), what="recording a dry run"
                )
                break
            try:
                self.retrying(partial(self._write, sealed, failures, len(rows)), what="writing a batch")
                result.encrypted, result.failed = len(sealed), failures
                break
            except RowsChanged:
                result.retries += 1
                log.info("rows of %s changed during a batch; reading it again", self.access.mapped.name)
                with self.first_times.turn("batches read again"):
                    rows = self.read(after=after, limit=len(rows) + 1000, up_to=last_key)
                if not rows:
                    break
                if attempt == CONFLICT_RETRIES:
                    result.encrypted = 0
                    result.failed = [
                        (
                            encode_key(self.key(row)),
                            shown_key(self.key(row)),
                            "the row kept changing while it was being migrated; it will be retried",
                        )
                        for row in rows
                    ]
                    self.retrying(partial(self._write, [], result.failed, 0), what="recording failures")
        result.seconds = time.perf_counter() - started
        return result

    def process_in(self, connection: sa.Connection, rows: list[dict[str, Any]]) -> BatchResult:
        """Seal ``rows`` and write them in the caller's open transaction (a claimed batch, whose
        rows stay locked until the caller commits). Raises RowsChanged like :meth:`write_in`."""
        sealed, failures = self.seal_rows(rows)
        self.write_in(connection, sealed, failures, len(rows), locked=True)
        return BatchResult(rows=len(rows), encrypted=len(sealed), failed=failures)

    def seal_rows(
        self, rows: Sequence[Mapping[str, Any]] | Sequence[sa.RowMapping]
    ) -> tuple[list[dict[str, Any]], list[Failure]]:
        """Seal ``rows`` (in a worker process where the run has them): each sealed row's UPDATE
        parameters, digest, cells, key and backup; each refused row's failure."""
        # Rows read by fetch_dicts are plain dicts already (and nothing else holds them).
        plain: list[dict[str, Any]] = [row if type(row) is dict else dict(row) for row in rows]
        sealed, failures = self.pool.run(
            seal_batch,
            RowShape(self.access.mapped),
            plain,
            dry_run=self.dry_run,
            with_backups=self.backup_table is not None,
        )
        for item in sealed:
            item["row"] = plain[item.pop("index")]
        return sealed, failures

    def _write(
        self,
        sealed: list[dict[str, Any]],
        failures: list[Failure],
        rows_read: int,
        *,
        counted: int | None = None,
    ) -> None:
        with serialized_write(self.engine, durable=False) as connection:
            self.write_in(connection, sealed, failures, rows_read, counted=counted)

    def write_in(
        self,
        connection: sa.Connection,
        sealed: list[dict[str, Any]],
        failures: list[Failure],
        rows_read: int,
        *,
        counted: int | None = None,
        locked: bool = False,
    ) -> None:
        """The batch's writes, in the caller's transaction (the estimate's calibration rolls it back).

        ``rows_read`` rows are entered in the batch log; 0 writes no log entry (a retry's
        failures, the calibration). ``counted`` overrides the rows counted as encrypted (a dry
        run counts the rows it proved but writes none of them). ``locked``: the rows were read
        with their versions in this transaction, which has held them locked since."""
        if self.epoch is not None:
            migration_claims.check_epoch(connection, self.migration_id, self.epoch)
        now = utc_now()
        mapped = self.access.mapped
        backup_table = self.backup_table
        backups = None
        if backup_table is not None:
            written = [item for item in sealed if item["backup"]]
            # Entered in the batch log, as they are written: a row the database refuses below
            # keeps its backup (its next batch finds it and leaves it as it is).
            backups = BackupChange(
                sum(1 for item in written if item["row"].get(BACKUP_HELD) is None),
                sum(item["backup_change"] for item in written),
            )
            if written:
                self._write_backups(connection, backup_table, written, locked=locked)
        if sealed:
            self._update_rows(connection, sealed, failures, locked=locked)
        if sealed:
            # Rows sealed in an earlier pass are looked up, and their row metadata replaced.
            earlier = any(item["held_tokens"] for item in sealed)
            with self.first_times.turn("rows sealed before") if earlier else nullcontext():
                self._keep_earlier_cells(connection, sealed)
                row_metadata.record(connection, self.migration_id, mapped.name, sealed, now)
            failed_records.resolve(
                connection, self.migration_id, mapped.name, [item["row_key"] for item in sealed]
            )
        if failures:
            with self.first_times.turn("failed rows"):
                failed_records.record(connection, self.migration_id, mapped.name, failures, now)
        migrations.count_batch(
            connection,
            self.migration_id,
            mapped.name,
            done=len(sealed) if counted is None else counted,
            rows_read=rows_read,
            at=now,
            backups=backups,
        )

    def _update_rows(
        self,
        connection: sa.Connection,
        sealed: list[dict[str, Any]],
        failures: list[Failure],
        *,
        locked: bool,
    ) -> None:
        """The guarded UPDATE of the batch: on PostgreSQL, for rows ``locked`` with their
        versions, one statement for the whole batch; else one guarded UPDATE per row (an
        executemany). Where the database refuses a row (a constraint, a trigger, a value its
        type rejects), the rows are written one at a time, each in its own savepoint, and the
        refused ones move from ``sealed`` to ``failures`` with the reason: one row never stops
        the run. Raises RowsChanged when a row changed since it was read."""
        by_version = self._update_by_version if locked and ROW_VERSION[0] in sealed[0]["row"] else None
        try:
            with savepoint(connection):
                if by_version is not None:
                    batch = batch_parameters(self.access, [(item["row"], item["tokens"]) for item in sealed])
                    updated = connection.execute(by_version, batch).rowcount
                else:
                    updated = self._update_many.execute_joined(
                        connection,
                        [item["parameters"] for item in sealed],
                        [item["row"] for item in sealed],
                        self._guard_sources,
                    )
        except DBAPIError as error:
            if not is_row_refusal(error):
                raise
            with self.first_times.turn("rows one at a time"):
                updated = self._update_one_by_one(connection, sealed, failures)
        if updated != len(sealed):
            raise RowsChanged

    def _write_backups(
        self,
        connection: sa.Connection,
        backup_table: sa.Table,
        written: list[dict[str, Any]],
        *,
        locked: bool,
    ) -> None:
        """The fresh backups of a batch's rows, before its UPDATE. A backup the application's
        write made out of date is replaced (seal_batch). On PostgreSQL, rows ``locked`` with
        their versions get theirs in one statement (backup.insert_by_row_version): 1,000
        single-row INSERTs had cost the run's process 10 ms a batch in the driver's pipeline
        alone. Raises RowsChanged where a row is no longer the version read (it cannot be, its
        lock held; the batch is then read again, as the UPDATE would have it)."""
        by_version = self._backups_by_version
        if by_version is not None and locked and ROW_VERSION[0] in written[0]["row"]:
            if by_version.execute(connection, backup.batch_by_row_version(written)) != len(written):
                raise RowsChanged
            return
        self._statement("backups", lambda: upsert(connection, backup_table, [backup.SEALED_COLUMN])).execute(
            connection, [item["backup"] for item in written]
        )

    def _guarded_parameters(self, sealed: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The guarded UPDATE's parameters of each sealed row: what sealing gave (its tokens and
        key) and the values the row was read with, which the UPDATE must still find there.
        Those are taken here, from the row this process holds: sent back from the worker that
        sealed the row, they were over half the time to send a sealed batch (a claimed batch's
        UPDATE, which finds its rows by their versions, never needs them). The batch's
        executemany takes them from the two without merging them (execute_joined)."""
        return joined_sets(
            [item["parameters"] for item in sealed], [item["row"] for item in sealed], self._guard_sources
        )

    def _statement(self, name: str, build: Callable[[], sa.Insert]) -> DriverStatement:
        if name not in self._dialect_statements:
            # Keyed here, before the threads that write batches share it (keyed_now).
            self._dialect_statements[name] = DriverStatement(keyed_now(build()))
        return self._dialect_statements[name]

    def _update_one_by_one(
        self, connection: sa.Connection, sealed: list[dict[str, Any]], failures: list[Failure]
    ) -> int:
        written, updated = [], 0
        for item, parameters in zip(sealed, self._guarded_parameters(sealed), strict=True):
            try:
                with savepoint(connection):
                    updated += connection.execute(self._update, parameters).rowcount
            except DBAPIError as error:
                if not is_row_refusal(error):
                    raise
                key = self.key(item["row"])
                failures.append(
                    (
                        item["row_key"],
                        shown_key(key),
                        f"the database refused the update: {refusal_reason(error)}",
                    )
                )
                continue
            written.append(item)
        sealed[:] = written
        return updated

    def _keep_earlier_cells(self, connection: sa.Connection, sealed: list[dict[str, Any]]) -> None:
        """Rows this migration sealed before, in an earlier pass (the application wrote a new
        value into one of their columns since): their row metadata must keep naming the cells
        sealed then, whose tokens are still in the row, beside the ones sealed now. Only a row
        that still holds a token can be one, so a batch of plaintext rows (a first pass) asks
        the database nothing."""
        mapped = self.access.mapped
        holding_tokens = [item["row_key"] for item in sealed if item["held_tokens"]]
        if not holding_tokens:
            return
        earlier = row_metadata.sealed_rows(connection, self.migration_id, mapped.name, holding_tokens)
        for item in sealed:
            if item["row_key"] not in earlier:
                continue
            before = SealedCells.from_metadata(earlier[item["row_key"]].sealed_columns, mapped)
            row = item["row"]
            # A sealed cell's original is the value the row held there (see seal_row).
            tokens = dict(item["tokens"])
            originals = {name: row[name] for name in tokens}
            base = row_context(self.access, row)
            for column in mapped.columns:
                token = cell_token(column, row)
                if column.name in tokens or token is None or not before.owns(column.name, token):
                    continue
                try:
                    originals[column.name] = self.cipher.decrypt(token, base.with_column(column.name))
                except DecryptionFailed:
                    continue  # damaged since: verification reports it
                tokens[column.name] = token
            cells = SealedCells.of_tokens(tokens)
            key = self.key(item["row"])
            item["digest"] = cells.digest(self.cipher, mapped, key, item["organization"], originals)
            item["sealed_columns"] = cells.to_metadata()
            # The earlier tokens opened just now; the fresh ones as they were sealed.
            item["tokens_digest"] = cells.digest_tokens(
                self.cipher, mapped.name, key, item["organization"], tokens
            )

    # -- guards and retries ----------------------------------------------------------------

    def _guard(self) -> sa.ColumnElement[bool]:
        return sa.and_(
            *(
                self.access.unchanged(column.name, _GUARD_PARAMETER.format(index))
                for index, column in enumerate(self.access.mapped.columns)
            )
        )

    def retrying(self, action: Callable[[], T], *, what: str) -> T:
        """``action`` under the migration's retry policy, its failure naming this table."""
        return with_retries(self.retry, action, what=f"{what} of {self.table_name}")


def seal_batch(
    crypto: BatchContext,
    shape: RowShape,
    rows: list[dict[str, Any]],
    *,
    dry_run: bool,
    with_backups: bool,
) -> tuple[list[dict[str, Any]], list[Failure]]:
    """Seal one batch: for each row holding plaintext, the UPDATE's parameters (its tokens and
    key; the guard is added where the batch is written, see _guarded_parameters), the
    digest and cells its row metadata records, its organization's key id and (``with_backups``,
    for a row not backed up yet) its sealed backup; for each row that cannot be sealed, why.
    A batch function (engine/cpu_pool.py): it runs in a worker process or in the run's own."""
    sealed: list[dict[str, Any]] = []
    failures: list[Failure] = []
    cipher = crypto.cipher
    table_sealer = cipher.table_sealer(shape.mapped.name)
    sealer = crypto.sealer if with_backups else None
    for index, row in enumerate(rows):
        try:
            result = seal_row(shape, row, table_sealer)
            if result is None:
                continue
            key = result.key
            if dry_run:
                _prove_round_trip(shape, row, result, cipher)
            backup_entry, backup_change = None, 0
            if sealer is not None and not _backed_up_as_it_is(shape, row, key, result, sealer):
                backup_entry, backup_change = backup.fresh_backup(
                    shape,
                    key,
                    backup.packed_row_values(shape, row, result.encoded),
                    sealer,
                    row.get(BACKUP_HELD),
                    packed_key=result.packed_key,
                )
            sealed.append(
                {
                    "index": index,
                    # Without the guard: the run's process adds the values it read.
                    "parameters": result.parameters,
                    "row_key": key,  # encoded below, the batch's keys at once
                    # Of the sealed cells' values, and the cells it names (each column's
                    # token's nonce), as its row metadata records them.
                    "digest": result.digest,
                    "sealed_columns": SealedCells.metadata_of(result.nonces),
                    # Of the tokens, each opened as it was sealed: verification finds them
                    # unchanged with it.
                    "tokens_digest": result.tokens_digest,
                    # What the run's process still needs of the sealing: the tokens by column
                    # (the originals are in the row it holds). No SealedRow object, nor the
                    # nonces recorded above: a third of the time to send a batch back.
                    "tokens": result.tokens,
                    # Whether the row held a token already (sealed before, in an earlier pass):
                    # known here, in the worker, for the run's process to know without a look.
                    "held_tokens": result.held_tokens,
                    "organization": result.organization,
                    "key_id": result.key_id,
                    "backup": backup_entry,
                    # What writing it changes in the sum of the copy's stored digests.
                    "backup_change": backup_change,
                }
            )
        except (RecordRefused, UnsupportedValue, DecryptionFailed) as error:
            key = key_of(shape, row)
            failures.append((encode_key(key), shown_key(key), _reason(error)))
    for item, row_key in zip(sealed, encode_keys([item["row_key"] for item in sealed]), strict=True):
        item["row_key"] = row_key
    return sealed, failures


def _backed_up_as_it_is(
    shape: RowShape, row: Mapping[str, Any], key: tuple[Any, ...], sealed: SealedRow, sealer: RowSealer
) -> bool:
    """Whether the row's backup (read with it) holds its values as they are now, so that a token
    sealed from them and damaged later is restored to them. A row with none gets one (the first
    batch that seals it); a row the application wrote since its backup was made (it holds no
    token any more, or a copy an earlier version made before the batches) gets a fresh one: its
    old backup no longer matches what is sealed, and rollback would refuse it. A row sealed in
    an earlier pass keeps the backup of its originals (its tokens are in the row now)."""
    held = row.get(BACKUP_HELD)
    if held is None:
        return False
    if sealed.held_tokens:
        return True
    return sealer.holds(
        shape.mapped.name, key, bytes(held), backup.packed_row_values(shape, row, sealed.encoded)
    )


def _prove_round_trip(
    shape: RowShape, row: Mapping[str, Any], sealed: SealedRow, cipher: ValueCipher
) -> None:
    base = row_context(shape, row)
    for column, token in sealed.tokens.items():
        # Compared encoded: exact to the bit and type, and NaN (never equal to itself) is
        # not mistaken for a value that failed to round-trip. A sealed cell's original is the
        # value the row held there (see seal_row).
        (opened,) = cipher.decrypt_cells(base, ((column, token),))
        if encode_value(opened) != encode_value(row[column]):
            raise DecryptionFailed(
                f"A dry-run token of {base.describe(column)} did not decrypt to its value."
            )


@lru_cache(maxsize=64)
def _guard_names(count: int) -> tuple[str, ...]:
    return tuple(_GUARD_PARAMETER.format(index) for index in range(count))


def shown_key(key: tuple[Any, ...]) -> str:
    return ", ".join(str(part) for part in key)


def _reason(error: Exception) -> str:
    if isinstance(error, UnsupportedValue):
        return f"unsupported value: {error}"
    return str(error)
