"""Where a table's next batch comes from: read after a key, or claimed with row locks.

Both sources answer the same two questions, "the next batch after this key" and "process this
batch", so the runner and a joining worker dispatch batches without knowing which one they have.

- :class:`KeysetSource` reads the next rows after a key (keyset pagination on the primary key).
  It serves SQLite, where one process writes at a time anyway, and dry runs, which write nothing
  and so have nothing to lock or share.
- :class:`ClaimedSource` (PostgreSQL) reads with ``SELECT … FOR UPDATE OF <table> SKIP LOCKED``:
  the rows it returns stay locked until the batch's transaction ends, and rows another worker
  holds are skipped rather than waited for. Workers that claim at the same moment therefore get
  disjoint batches, and a row is never sealed by two of them. The batch is sealed and written in
  that same transaction, which then commits: one short transaction per batch, as with the keyset
  source.

The pass that finishes a table claims *with* waiting (no SKIP LOCKED): it blocks until other
workers' in-flight batches commit, and PostgreSQL re-checks each waited-for row against the
"still plaintext" condition, so a row another worker has just encrypted is not returned. When
that pass finds nothing, no row of the table is pending any more, except rows that failed.

If a claimed write fails on a transient database error (a restarted server, a lost connection),
the locks go with the transaction and the rows are processed as a keyset batch, whose guarded
UPDATE and exponential backoff make the retry safe even if another worker encrypts the same rows
meanwhile.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from tui_migrator.engine.batches import BatchResult, Claim, RowsChanged, TableBatches
from tui_migrator.engine.retry import database_failure, is_transient
from tui_migrator.storage.database import fetch_dicts, relax_commit, row_locks_supported

log = logging.getLogger(__name__)


@dataclass
class Batch:
    """Rows read after key ``after``; a claimed batch also holds their locks on ``connection``."""

    rows: list[dict[str, Any]]
    after: Sequence[Any] | None
    last_key: tuple[Any, ...]
    connection: sa.Connection | None = field(default=None, repr=False)


def _release(connection: sa.Connection) -> None:
    """Roll back and close, whatever state the connection is in (it may be dead)."""
    try:
        connection.rollback()
    except DBAPIError:
        pass  # a dead connection has nothing left to roll back
    finally:
        connection.close()


class BatchSource(Protocol):
    """Hands out the batches of one table and processes them."""

    batches: TableBatches
    # A batch holds row locks from its read until it is processed (see table_pass.PassSource).
    batches_hold_row_locks: bool

    @property
    def other_workers_may_hold_rows(self) -> bool:
        """Whether rows may be in another worker's in-flight batch (so a pass may miss them)."""
        ...

    def finishing(self) -> BatchSource:
        """The source for a pass that must finish the table (waits for other workers' rows)."""
        ...

    def next_batch(self, *, after: Sequence[Any] | None, limit: int) -> Batch | None:
        """The next ``limit`` plaintext rows after key ``after``; None when there are none."""
        ...

    def process(self, batch: Batch) -> BatchResult:
        """Seal the batch's rows and commit them (or, in a dry run, prove they would round-trip)."""
        ...


def source_for(batches: TableBatches) -> BatchSource:
    """Claimed batches where rows can be shared with other workers, keyset batches elsewhere."""
    if row_locks_supported(batches.engine) and not batches.dry_run:
        return ClaimedSource(batches)
    return KeysetSource(batches)


class KeysetSource:
    """Reads the next rows after a key; no locks, so no other worker can share the table."""

    other_workers_may_hold_rows = False
    batches_hold_row_locks = False

    def __init__(self, batches: TableBatches) -> None:
        self.batches = batches

    def finishing(self) -> BatchSource:
        return self

    def next_batch(self, *, after: Sequence[Any] | None, limit: int) -> Batch | None:
        rows = self.batches.read(after=after, limit=limit)
        return Batch(rows, after, self.batches.key(rows[-1])) if rows else None

    def process(self, batch: Batch) -> BatchResult:
        with self.batches.first_batch.turn():
            return self.batches.process(batch.rows, after=batch.after)


class ClaimedSource:
    """Claims rows with row locks, so several workers can share one table (PostgreSQL).

    ``wait=False`` skips rows other workers hold; ``wait=True`` waits for them to commit."""

    other_workers_may_hold_rows = True
    batches_hold_row_locks = True

    def __init__(self, batches: TableBatches, *, wait: bool = False) -> None:
        self.batches = batches
        self.wait = wait

    def finishing(self) -> BatchSource:
        return ClaimedSource(self.batches, wait=True)

    def next_batch(self, *, after: Sequence[Any] | None, limit: int) -> Batch | None:
        # The rows stay locked from this read to the batch's write, which finds them by the
        # versions the query reads with them (TableAccess.update_by_row_version).
        query, parameters = self.batches.pending_read(
            after=after, limit=limit, claim=Claim.WAIT_FOR_HELD if self.wait else Claim.SKIP_HELD
        )

        def claim_once() -> Batch | None:
            connection = self.batches.engine.connect()
            try:
                connection.begin()
                # The batch's writes commit in this transaction: not waited for on disk, as
                # every batch's (see serialized_write).
                relax_commit(connection)
                rows = fetch_dicts(connection, query, parameters)
            except BaseException:
                _release(connection)
                raise
            if not rows:
                _release(connection)
                return None
            return Batch(rows, after, self.batches.key(rows[-1]), connection)

        return self.batches.retrying(claim_once, what="claiming a batch")

    def process(self, batch: Batch) -> BatchResult:
        """Seal and write a claimed batch in its own transaction, then commit (releasing the locks)."""
        assert batch.connection is not None, "a claimed batch holds its connection"
        # Waiting here holds this batch's rows, which the table's first batch never touches.
        with self.batches.first_batch.turn():
            return self._process_claimed(batch, batch.connection)

    def _process_claimed(self, batch: Batch, connection: sa.Connection) -> BatchResult:
        started = time.perf_counter()
        try:
            result = self.batches.process_in(connection, batch.rows)
            connection.commit()
        except (DBAPIError, RowsChanged) as error:
            _release(connection)
            if isinstance(error, DBAPIError) and not is_transient(error):
                raise database_failure(error, f"writing a batch of {self.batches.table_name}") from None
            log.warning(
                "a claimed batch of %s failed (%s); retrying it unclaimed",
                self.batches.table_name,
                type(error).__name__,
            )
            with self.batches.first_times.turn("batches retried unclaimed"):
                return self.batches.process(batch.rows, after=batch.after)
        finally:
            connection.close()
        result.seconds = time.perf_counter() - started
        return result
