"""A table's first batch is processed alone, and so is the first batch to take each of the
paths a batch takes only now and then; the batches in flight beside it wait for it.

The run's threads share a table's statements (its guarded UPDATE, its row metadata, backups
and progress writes). SQLAlchemy compiles a statement on its first execution and keeps the
compiled form in the engine's cache; two threads running a statement's first execution at once
both compile it, setting the attributes SQLAlchemy memoizes on the statement's parts as they
go. A test process died there with a segmentation fault, twice (2026-12-05 and 2026-12-07:
two threads in a batch's first UPDATE on PostgreSQL; README → Development).

A `start` had been spared by chance: its estimate's sample compiled the table's statements in
one thread first (its temporary tables have the table's name and columns, and the compiled cache
is keyed by structure). A start that reuses a fresh estimate takes no sample, neither does a
detached or a joined worker's process, and the sample leaves a scope's smaller tables out
(estimate.tables_to_sample). So each process now writes a table's first batch before
any other of that table: its statements are compiled by then, and the batches after it find
them in the cache. The batches waiting hold nothing the first one needs: their rows only, which
it never touches (tests/engine/test_shared_statements.py).

A batch that meets a row the database refuses writes its rows one at a time, and records the
refused ones as failed: statements the first batch may never have run. Two batches in flight
met them at once and compiled the row's UPDATE together (the same test, with a row refused in
each). So each such path has a turn of its own (FirstTimes): rows one at a time, failed rows
recorded, rows sealed in an earlier pass, a batch read again after the application changed its
rows, a claimed batch retried unclaimed. The first batch to take one goes alone. On SQLite a
batch's writes are one at a time anyway (storage/database.serialized_write); on PostgreSQL a
batch waiting for a path's first turn holds only its own rows, and the one taking it writes
only its own rows and the failed rows' records of its own keys.

With one exception: a claimed batch retried unclaimed has let its rows go, and another batch of
the process may claim some of them again and then wait for a turn the retried batch holds while
that one waits for the rows. No wait is for ever, then: after FIRST_TURN_WAIT_SECONDS a batch
goes on without its turn. By then the batch that has it has run its statements (a batch's first
statement runs within its first second), unless it is itself waiting for such rows.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

log = logging.getLogger(__name__)

# How long a batch waits for the batch that took a first turn before it goes on without it.
FIRST_TURN_WAIT_SECONDS = 60.0


class FirstBatchAlone:
    """Lets one batch through first and the others once it has been processed (or failed)."""

    def __init__(self) -> None:
        self._taken = threading.Lock()
        self._done = threading.Event()

    @contextmanager
    def turn(self) -> Iterator[None]:
        """Around one batch's processing: the first batch to come goes at once and the others
        wait until it ends (FIRST_TURN_WAIT_SECONDS at most); from then on every batch goes at
        once. Not re-entrant: one turn per batch, taken where the batch is processed."""
        if not self._done.is_set():
            if self._taken.acquire(blocking=False):
                try:
                    yield
                finally:
                    self._done.set()
                return
            if not self._done.wait(FIRST_TURN_WAIT_SECONDS):
                log.warning(
                    "a batch waited %.0f s for the first batch of its kind and goes on beside it",
                    FIRST_TURN_WAIT_SECONDS,
                )
        yield


class FirstTimes:
    """A FirstBatchAlone for each path a batch may take, by name, made on its first use."""

    def __init__(self) -> None:
        self._made = threading.Lock()
        self._paths: dict[str, FirstBatchAlone] = {}

    def turn(self, path: str) -> AbstractContextManager[None]:
        """:meth:`FirstBatchAlone.turn` of ``path``. A batch holds one path's turn at a time,
        inside at most the table's first-batch turn and a retried batch's, which every batch
        takes before any other: no two batches can wait for each other's turns."""
        with self._made:
            gate = self._paths.get(path)
            if gate is None:
                gate = self._paths[path] = FirstBatchAlone()
        return gate.turn()
