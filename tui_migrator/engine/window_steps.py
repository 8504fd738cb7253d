"""A pass over a table a window of keys at a time: a backup copy's read-back, verification.

Each window is one batch function call (engine/cpu_pool.py), done in the run's worker processes
while the next window's keys are read, and what it comes to is a small summary (counts and a
digest sum) that the run adds up in key order.

On PostgreSQL the windows are shared with the workers that joined the migration
(storage/shared_windows.py): the owner publishes them as it reads the keys, takes them in key
order, and a joined worker takes them from the other end (:func:`do_a_joined_window`). A window
a joined worker did reaches the owner as its summary, committed with the window; one it failed the owner does itself. Either way the owner adds every window's summary once, so a
step's result does not depend on who did which window.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection, Engine

from tui_migrator.engine.cpu_pool import BatchContext, CpuPool, Pending, kept
from tui_migrator.engine.read_ahead import read_ahead
from tui_migrator.storage import shared_windows
from tui_migrator.storage.database import row_locks_supported
from tui_migrator.storage.shared_windows import Key, StepName

# What a window came to: JSON, with at least the rows it read (``rows``).
Summary = dict[str, Any]
# Windows published ahead of the owner: what a joined worker can take from (a window is a
# thousand rows or so; their keys only are held here).
PUBLISHED_AHEAD = 256
# The owner takes windows several at a time (one statement), at most this many and at most a
# quarter of those published ahead of it, so a joined worker taking from the far end still
# finds windows open until the two meet.
TAKEN_AT_ONCE = 32
# Windows published by one statement, at most (see _Published).
PUBLISHED_AT_ONCE = 32


@dataclass(frozen=True)
class WindowStep:
    """One pass over ``table``: ``work(context, *arguments, first, last)`` for each window, a
    batch function that only reads; its result becomes the window's summary by ``summarize``."""

    name: str
    table: str
    work: Callable[..., Any]
    arguments: tuple[Any, ...]
    summarize: Callable[[Any], Summary]


@dataclass(frozen=True)
class Sharing:
    """The migration whose joined workers may take windows, and the owner's name in it."""

    migration_id: str
    worker: str


def run_step(
    engine: Engine,
    step: WindowStep,
    windows: Iterable[tuple[Key, Key]],
    pool: CpuPool,
    add: Callable[[Summary], None],
    *,
    sharing: Sharing | None = None,
) -> None:
    """Do ``step`` over ``windows`` (first and last key of each, in key order) and ``add`` each
    window's summary, in key order. ``sharing``: on PostgreSQL, joined workers may take some."""
    name = None
    if sharing is not None and row_locks_supported(engine):
        name = StepName(sharing.migration_id, step.name, step.table)
        shared_windows.clear(engine, name)  # what an interrupted run of the step left
    shipped = tuple(kept(argument) for argument in step.arguments)

    def submit(first: Key, last: Key) -> Pending[Any]:
        return pool.submit(step.work, *shipped, first, last)

    # Each window in key order: the owner's result to come, or None for one a joined worker took.
    in_flight: deque[tuple[int, Key, Key, Pending[Any] | None]] = deque()
    doing = 0
    published = _Published()
    mine: set[int] = set()
    asked_up_to = -1

    def is_mine(seq: int) -> bool:
        nonlocal mine, asked_up_to
        if name is None:
            return True
        assert sharing is not None
        if seq > asked_up_to:
            ahead = published.count - seq
            asked_up_to = seq + max(0, min(TAKEN_AT_ONCE, ahead // 4) - 1)
            mine = shared_windows.take(engine, name, seq, asked_up_to, sharing.worker)
        return seq in mine

    def settle() -> None:
        nonlocal doing
        seq, first, last, pending = in_flight.popleft()
        summary = None
        if pending is None:
            assert name is not None and sharing is not None
            summary = shared_windows.result_or_take(engine, name, seq, sharing.worker)
            pending = submit(first, last) if summary is None else None
        else:
            doing -= 1
        if pending is not None:
            summary = step.summarize(pending.result())
        assert summary is not None
        add(summary)

    if name is None:
        numbered: Iterator[tuple[int, tuple[Key, Key]]] = enumerate(windows)
        depth = 1
    else:
        numbered, depth = published.publish(engine, name, windows), PUBLISHED_AHEAD
    try:
        with closing(read_ahead(numbered, name=f"{step.name}-keys", depth=depth)) as ahead:
            for seq, (first, last) in ahead:
                if is_mine(seq):
                    in_flight.append((seq, first, last, submit(first, last)))
                    doing += 1
                else:
                    in_flight.append((seq, first, last, None))
                while doing > pool.batches_in_flight:
                    settle()
        while in_flight:
            settle()
    finally:
        if name is not None:
            # Done or failed, the step's windows are nobody's to take any more (a window a
            # joined worker is still doing is deleted once it commits or rolls back).
            shared_windows.clear(engine, name)


class _Published:
    """Publishes a step's windows as they are read (in the read-ahead thread), counting them.
    In growing runs (1, 2, 4 … PUBLISHED_AT_ONCE windows, one statement each): the first is
    published at once, and reading far ahead of the owner costs few statements."""

    def __init__(self) -> None:
        self.count = 0

    def publish(
        self, engine: Engine, name: StepName, windows: Iterable[tuple[Key, Key]]
    ) -> Iterator[tuple[int, tuple[Key, Key]]]:
        run: list[tuple[int, Key, Key]] = []
        size = 1
        for seq, (first, last) in enumerate(windows):
            run.append((seq, first, last))
            if len(run) == size:
                yield from self._out(engine, name, run)
                run, size = [], min(2 * size, PUBLISHED_AT_ONCE)
        if run:
            yield from self._out(engine, name, run)

    def _out(
        self, engine: Engine, name: StepName, run: list[tuple[int, Key, Key]]
    ) -> Iterator[tuple[int, tuple[Key, Key]]]:
        shared_windows.publish(engine, name, run)
        self.count = run[-1][0] + 1
        for seq, first, last in run:
            yield seq, (first, last)


def do_a_joined_window(
    engine: Engine,
    migration_id: str,
    worker: str,
    step_for: Callable[[StepName], WindowStep],
    context: BatchContext,
    before_commit: Callable[[Connection], None],
) -> tuple[StepName, Summary] | None:
    """For a worker that joined ``migration_id``: take an open window of its current step, do
    it here and commit its summary with the window; None if none is open.
    ``before_commit`` runs in that transaction first (the joined worker proves the migration is
    still the owner's it joined). An error rolls back: the window is open again, and the owner
    will do it."""
    with shared_windows.joined_window(engine, migration_id, worker) as taken:
        if taken is None:
            return None
        connection, window = taken
        step = step_for(window.name)
        result = step.work(context, *step.arguments, window.first, window.last)
        before_commit(connection)
        summary = step.summarize(result)
        shared_windows.done(connection, window, summary)
        return window.name, summary
