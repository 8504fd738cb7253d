"""A table pass's resume key: saved after batches that all committed, every RESUME_KEY_EVERY
batches and at the end, one save at a time, never moved back by a slower save of an earlier
key; a batch's slot is free during its save."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Any, cast

from tui_migrator.engine.batch_source import Batch
from tui_migrator.engine.batches import BatchResult
from tui_migrator.engine.control import RunControl
from tui_migrator.engine.progress import RunMeter
from tui_migrator.engine.table_pass import RESUME_KEY_EVERY, Key, PassSource, TablePass, slots_for

BATCHES = RESUME_KEY_EVERY + 4


class Source:
    """Batches of one key each, 1..BATCHES; ``all_processed`` is set by the last one."""

    batches = None
    batches_hold_row_locks = False

    def __init__(self, batches: int = BATCHES) -> None:
        self.count = batches
        self.processed = 0
        self.all_processed = threading.Event()
        self._lock = threading.Lock()

    def next_batch(self, *, after: Sequence[Any] | None, limit: int) -> Batch | None:
        key = (after[0] if after else 0) + 1
        return None if key > self.count else Batch(rows=[{"id": key}], after=after, last_key=(key,))

    def process(self, batch: Batch) -> BatchResult:
        with self._lock:
            self.processed += 1
            if self.processed == self.count:
                self.all_processed.set()
        return BatchResult(rows=1, encrypted=1)


class Control:
    async def between_batches(self, in_flight: object = None) -> bool:
        return False


class Meter:
    batch_size = 1

    def batch_done(self, result: BatchResult) -> None:
        pass


def test_batches_go_on_during_a_save_and_saved_keys_only_move_forward() -> None:
    source = Source()
    saved: list[Key] = []
    saving = threading.Lock()
    overlapping: list[Key] = []
    first_save_waited: list[bool] = []

    def save_resume_key(key: Key) -> None:
        if not saving.acquire(blocking=False):
            overlapping.append(key)  # two saves at once: what the pass must not do
            saving.acquire()
        try:
            if not first_save_waited:
                # The first save lasts until every batch is processed: with a batch's slot held
                # through its save, the pass could not get there (two slots, one held here).
                first_save_waited.append(source.all_processed.wait(timeout=30))
            saved.append(key)
        finally:
            saving.release()

    pass_ = TablePass(
        cast(PassSource, source), cast(RunControl, Control()), cast(RunMeter, Meter()), 2, save_resume_key
    )
    asyncio.run(pass_.run(None))

    assert first_save_waited == [True]
    assert overlapping == []
    assert saved[0] >= (RESUME_KEY_EVERY,) and saved[-1] == (BATCHES,)
    assert saved == sorted(saved) and len(set(saved)) == len(saved)
    # The keys that passed while the first save was held were not saved one by one after it.
    assert len(saved) < BATCHES


def test_a_pass_shorter_than_the_saving_interval_saves_its_last_key_once_at_the_end() -> None:
    saved: list[Key] = []
    source = Source(batches=RESUME_KEY_EVERY - 1)
    pass_ = TablePass(
        cast(PassSource, source), cast(RunControl, Control()), cast(RunMeter, Meter()), 2, saved.append
    )
    asyncio.run(pass_.run(None))
    assert saved == [(RESUME_KEY_EVERY - 1,)]


def test_a_pass_with_nothing_to_do_saves_nothing() -> None:
    saved: list[Key] = []
    pass_ = TablePass(
        cast(PassSource, Source(batches=0)),
        cast(RunControl, Control()),
        cast(RunMeter, Meter()),
        2,
        saved.append,
    )
    asyncio.run(pass_.run(None))
    assert saved == []


class Claimed(Source):
    batches_hold_row_locks = True


def test_keyset_batches_keep_two_per_worker_in_flight_and_claimed_batches_what_was_asked() -> None:
    # Keyset batches (SQLite): the workers seal the next ones while the last is written.
    assert slots_for(cast(PassSource, Source()), 2, 4) == 4
    assert slots_for(cast(PassSource, Source()), 6, 4) == 6
    assert slots_for(cast(PassSource, Source()), 1, 1) == 1  # no workers: one at a time
    # Claimed batches hold row locks from their read to their commit: never more than asked.
    assert slots_for(cast(PassSource, Claimed()), 2, 4) == 2


def test_a_pass_has_as_many_batches_in_flight_as_its_slots() -> None:
    class Gated(Source):
        """Each batch waits until four are in flight at once (or the pass could never have four)."""

        def __init__(self) -> None:
            super().__init__(batches=4)
            self.inside = threading.Barrier(4, timeout=30)

        def process(self, batch: Batch) -> BatchResult:
            self.inside.wait()
            return super().process(batch)

    source = Gated()
    slots = slots_for(cast(PassSource, source), 2, 4)
    table_pass = TablePass(
        cast(PassSource, source),
        cast(RunControl, Control()),
        cast(RunMeter, Meter()),
        slots,
        lambda _key: None,
    )
    asyncio.run(table_pass.run(None))
    assert source.all_processed.is_set()
