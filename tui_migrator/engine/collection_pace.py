"""How often Python's garbage collector runs while batches are processed.

CPython collects its youngest generation every 700 net allocations of container objects (dicts,
lists, tuples...). A batch keeps a thousand rows of them alive for a few milliseconds: long
enough for many collections to walk them, find nothing to free (a batch's objects are freed by
reference counting once it is written) and move them to older generations, whose collections
then walk every object the process holds. In a 100,000-row run that was 1,168 collections
costing 0.75 s of the run's process and about 0.2 s of each worker process (measured with
``gc.callbacks``), some 6 % of the run's CPU time; collecting every BATCH_THRESHOLD net
allocations during batch work instead, 182 collections (most of them outside it: start-up, the
sweep) costing 0.13 s, and 0.06 s in each worker.

Nothing is left uncollected: reference cycles still go at the next collection, which comes
after a few thousand more objects instead of a few hundred, so memory stays bounded as before.
The setting is the process's (the collector has no other), so the run's process has it only
while batch work runs and gets its own back after; a worker process, which does nothing else,
keeps it for its life.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import ParamSpec, TypeVar

# Net container allocations between collections of the youngest generation during batch work
# (CPython's default is 700). The older generations keep their own settings.
BATCH_THRESHOLD = 10_000

P = ParamSpec("P")
T = TypeVar("T")

_lock = threading.Lock()
_depth = 0
_saved: tuple[int, ...] | None = None


@contextmanager
def batch_pace() -> Iterator[None]:
    """Collect every BATCH_THRESHOLD net allocations inside, then as before. Re-entrant and
    safe across threads: the first to enter sets the pace, the last to leave restores it."""
    global _depth, _saved
    with _lock:
        if _depth == 0:
            _saved = gc.get_threshold()
            _set_pace(_saved)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _saved is not None:
                gc.set_threshold(*_saved)
                _saved = None


def paced(function: Callable[P, T]) -> Callable[P, T]:
    """``function`` run inside :func:`batch_pace`."""

    @wraps(function)
    def run(*args: P.args, **kwargs: P.kwargs) -> T:
        with batch_pace():
            return function(*args, **kwargs)

    return run


def pace_this_process() -> None:
    """The batch pace for the rest of this process's life (a worker process's)."""
    _set_pace(gc.get_threshold())


def _set_pace(current: tuple[int, ...]) -> None:
    if current[0] == 0:
        return  # automatic collection switched off: left so
    # Never more often than the process collected already.
    gc.set_threshold(max(BATCH_THRESHOLD, current[0]), *current[1:])
