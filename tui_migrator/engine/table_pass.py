"""One pass over a table: batches dispatched in key order, up to :func:`slots_for` of them in
flight, and the table's resume key moved forward only past batches that have all committed
(saved every RESUME_KEY_EVERY batches and at the end of the pass).

Each batch's reading, sealing and writing runs in a worker thread; the event loop only
dispatches, so it stays free for the heartbeat and for pause and cancel requests.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from tui_migrator.engine.batch_source import Batch
from tui_migrator.engine.batches import BatchResult
from tui_migrator.engine.control import RunControl
from tui_migrator.engine.progress import RunMeter
from tui_migrator.engine.read_sizes import BatchRows

Key = tuple[Any, ...]
# The resume key is saved once it has passed this many batches since it was last saved, and at
# the end of the pass: its own small transaction after every batch cost as much as a tenth of
# the batch's. A run that stops in between resumes at most this many batches earlier, and
# reading again rows that hold tokens already costs only the scan (no batch selects them).
RESUME_KEY_EVERY = 8


class PassSource(Protocol):
    """What a pass needs of where its batches come from (batch_source.BatchSource, a
    rotation's source): the next batch after a key, and processing one."""

    @property
    def batches(self) -> Any:
        """What reads and writes the table's batches (its ``table_name`` names the table)."""
        ...

    # Whether a batch holds row locks from its read until it is processed (claimed batches):
    # such a batch is read only once a slot is free for it.
    batches_hold_row_locks: bool

    def next_batch(self, *, after: Sequence[Any] | None, limit: int) -> Batch | None: ...

    def process(self, batch: Batch) -> BatchResult: ...


def slots_for(source: PassSource, max_concurrency: int, per_workers: int) -> int:
    """How many of a pass's batches may be in flight: ``maxConcurrency``, and where a batch
    holds no row locks (keyset batches: SQLite, dry runs, rotations) at least ``per_workers``
    (two per worker process, CpuPool.batches_in_flight), so that the workers seal the next
    batches while the run's process writes the last one — SQLite writes one batch at a time,
    and with one batch per worker they waited for each write. A claimed batch holds its rows
    locked from its read to its commit: no more of those than asked for."""
    if source.batches_hold_row_locks:
        return max_concurrency
    return max(max_concurrency, per_workers)


@dataclass
class _Dispatched:
    last_key: Key
    committed: bool = False


class ResumeKeys:
    """Where a table may resume: after the last batch of the unbroken run of committed batches
    from the start of the pass. Batches in flight together commit in any order, and resuming
    after a later batch while an earlier one is still in flight would skip the earlier one."""

    def __init__(self) -> None:
        self._dispatched: deque[_Dispatched] = deque()
        # How many batches the resume key has passed: which of two keys is the later one.
        self.passed = 0

    def dispatched(self, last_key: Key) -> _Dispatched:
        """Note a batch handed out, in key order."""
        batch = _Dispatched(last_key)
        self._dispatched.append(batch)
        return batch

    def committed(self, batch: _Dispatched) -> Key | None:
        """Note ``batch`` committed; the new resume key, if it moved."""
        batch.committed = True
        resume_key = None
        while self._dispatched and self._dispatched[0].committed:
            resume_key = self._dispatched.popleft().last_key
            self.passed += 1
        return resume_key


@dataclass
class TablePass:
    """One keyset pass over the table of ``source``, from ``start`` to its last pending row."""

    source: PassSource
    control: RunControl
    meter: RunMeter
    max_in_flight: int
    # Saves the table's resume key (a blocking database write: it runs in a worker thread).
    save_resume_key: Callable[[Key], None]
    # The most rows a batch may hold whatever the batch size: fewer where the table's rows
    # are large (read_sizes.BatchRows, which follows the batches read).
    most_rows: BatchRows | None = None
    # One resume-key save at a time, and how many batches the key it saved last had passed.
    _saving: asyncio.Lock = field(default_factory=asyncio.Lock, init=False, repr=False)
    _saved: int = field(default=0, init=False, repr=False)
    # The latest resume key, and how many batches it passed (see ResumeKeys.passed).
    _latest: tuple[int, Key] = field(default=(0, ()), init=False, repr=False)

    async def run(self, start: Sequence[Any] | None) -> int:
        """Dispatch until the source has no batch left; the first failure is raised once every
        batch in flight has finished, so none is left half-done. Returns how many batches it
        dispatched."""
        slots = asyncio.Semaphore(self.max_in_flight)
        in_flight: set[asyncio.Task[None]] = set()
        resume_keys = ResumeKeys()
        failures: list[BaseException] = []
        after = start
        try:
            while not failures:
                await self.control.between_batches(in_flight)
                if self.source.batches_hold_row_locks:
                    # A free slot first: a claimed batch holds its row locks until it is processed.
                    await slots.acquire()
                    try:
                        batch = await self._read(after)
                    except BaseException:
                        slots.release()
                        raise
                    if batch is None:
                        slots.release()
                        break
                else:
                    # Read while the batches in flight finish, then wait for a slot: nothing is
                    # locked, and a row the application changes meanwhile fails the batch's
                    # guarded UPDATE and is read again (batches.py).
                    batch = await self._read(after)
                    if batch is None:
                        break
                    await slots.acquire()
                dispatched = resume_keys.dispatched(batch.last_key)
                task = asyncio.create_task(self._process(batch, dispatched, resume_keys, slots, failures))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
                after = batch.last_key
        finally:
            if in_flight:
                await asyncio.gather(*in_flight, return_exceptions=True)
        if failures:
            raise failures[0]
        await self._save_latest_resume_key()  # the pass's last key
        return resume_keys.passed

    async def _read(self, after: Sequence[Any] | None) -> Batch | None:
        return await asyncio.to_thread(self._read_measured, after)

    def _read_measured(self, after: Sequence[Any] | None) -> Batch | None:
        """The next batch (in a worker thread), its rows measured for the one after it."""
        most = self.most_rows
        limit = self.meter.batch_size if most is None else min(self.meter.batch_size, most.rows)
        batch = self.source.next_batch(after=after, limit=limit)
        if batch is not None and most is not None:
            most.follow(batch.rows)
        return batch

    async def _process(
        self,
        batch: Batch,
        dispatched: _Dispatched,
        resume_keys: ResumeKeys,
        slots: asyncio.Semaphore,
        failures: list[BaseException],
    ) -> None:
        try:
            try:
                result = await asyncio.to_thread(self.source.process, batch)
            finally:
                # The batch is written (or failed): its slot goes to the next batch now, not
                # after the resume key's own small write below.
                slots.release()
            self.meter.batch_done(result)
            resume_key = resume_keys.committed(dispatched)
            if resume_key is not None:
                self._latest = (resume_keys.passed, resume_key)
                if resume_keys.passed - self._saved >= RESUME_KEY_EVERY:
                    await self._save_latest_resume_key()
        except BaseException as error:  # reported once the pass has drained
            failures.append(error)

    async def _save_latest_resume_key(self) -> None:
        """Save the latest resume key, one save at a time: keys that moved on while a save was
        running are saved once, as the latest, and the saved key never moves back."""
        async with self._saving:
            passed, key = self._latest
            if passed <= self._saved:
                return  # saved already by the save before this one
            await asyncio.to_thread(self.save_resume_key, key)
            self._saved = passed
