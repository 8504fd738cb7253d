"""Batches claimed with row locks, so several workers can share one table (PostgreSQL).

A claimed batch is read with ``SELECT … FOR UPDATE OF <table> SKIP LOCKED``: the rows it returns
are locked until its transaction ends, and rows another worker has locked are skipped rather than
waited for. Workers that claim at the same moment therefore get disjoint batches, and a row is
never sealed by two of them. The batch is sealed and written in that same transaction, which
then commits: one short transaction per batch, as in the unclaimed path.

A final pass claims *with* waiting (no SKIP LOCKED): it blocks until other workers' in-flight
batches commit, and PostgreSQL re-checks each waited-for row against the "still plaintext"
condition, so a row another worker has just encrypted is not returned. When that pass finds
nothing, no row of the table is pending any more, except rows that failed.

If the claimed write fails on a transient database error (a restarted server, a lost
connection), the locks go with the transaction and the rows are handed to the unclaimed path,
whose guarded UPDATE and exponential backoff make the retry safe even if another worker
encrypts the same rows meanwhile.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from tui_migrator.engine.batches import BatchResult, RowsChanged, TableBatches, with_retries

log = logging.getLogger(__name__)


def supported(engine: sa.Engine) -> bool:
    """Row locks with SKIP LOCKED exist on PostgreSQL; SQLite has one writer at a time anyway."""
    return engine.dialect.name == "postgresql"


@dataclass
class ClaimedBatch:
    """Rows locked by an open transaction on ``connection``, until it commits or is released."""

    connection: sa.Connection
    rows: list[sa.RowMapping]

    def release(self) -> None:
        """Roll back and close, whatever state the connection is in (it may be dead)."""
        try:
            self.connection.rollback()
        except DBAPIError:
            pass  # a dead connection has nothing left to roll back
        finally:
            self.connection.close()


def claim(
    batches: TableBatches, *, after: Sequence[Any] | None, limit: int, wait: bool = False
) -> ClaimedBatch | None:
    """Lock and return the next ``limit`` plaintext rows after ``after``; None when there are none.

    ``wait=False`` skips rows other workers hold; ``wait=True`` waits for them to commit."""
    query = batches.pending_query(after=after, limit=limit).with_for_update(
        of=batches.access.table, skip_locked=not wait
    )

    def once() -> ClaimedBatch | None:
        batch = ClaimedBatch(batches.engine.connect(), [])
        try:
            batch.connection.begin()
            batch.rows = list(batch.connection.execute(query).mappings())
        except BaseException:
            batch.release()
            raise
        if not batch.rows:
            batch.release()
            return None
        return batch

    return with_retries(batches.retry, once, what=f"claiming a batch of {batches.access.mapped.name}")


def process_claimed(
    batches: TableBatches, batch: ClaimedBatch, *, after: Sequence[Any] | None
) -> BatchResult:
    """Seal and write a claimed batch in its own transaction, then commit (releasing the locks)."""
    started = time.perf_counter()
    rows = batch.rows
    try:
        sealed, failures = batches.seal_rows(rows)
        batches.write_in(batch.connection, sealed, failures, len(rows))
        batch.connection.commit()
    except (DBAPIError, RowsChanged) as error:
        batch.release()
        if isinstance(error, DBAPIError) and not batches.is_transient(error):
            raise batches.failed(error, "writing a batch") from None
        log.warning(
            "a claimed batch of %s failed (%s); retrying it unclaimed",
            batches.access.mapped.name,
            type(error).__name__,
        )
        return batches.process(rows, after=after)
    finally:
        batch.connection.close()
    return BatchResult(
        rows=len(rows),
        encrypted=len(sealed),
        failed=failures,
        seconds=time.perf_counter() - started,
    )
