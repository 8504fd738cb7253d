"""Reading the next batch while the last one is worked on: an iterator run one item ahead, in a
thread of its own.

A stage that reads a batch, hands it to the CPU workers and writes or checks what comes back
spends much of its time waiting for the database: on PostgreSQL the run's process sends a query
and waits while the server runs it, then the server waits while the process works. Reading
ahead in a thread overlaps the two; the drivers let go of the GIL while they wait (and SQLite
while it searches and reads), so the thread costs the process little. Only reads move there:
every write and every decision stays where it was.

Items come out in the order they were read. What the reading raises is raised where the item it
could not read would have come out. A consumer that stops early (an error, a cancelled stage)
stops the reading: the thread finishes the read it is in, closes the iterator (a generator's
connection is given back) and ends before ``read_ahead`` returns.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator, Iterable
from contextlib import suppress
from typing import TypeVar, cast

T = TypeVar("T")

_END = object()


def read_ahead(items: Iterable[T], *, name: str = "read-ahead", depth: int = 1) -> Generator[T, None, None]:
    """``items``, read up to ``depth`` items ahead of the consumer in a thread named ``name``.
    Close it (or run it to its end) to stop the thread: ``with closing(read_ahead(...)) as
    ahead``."""
    handoff: queue.Queue[tuple[object, BaseException | None]] = queue.Queue(maxsize=depth)
    stopping = threading.Event()
    source = iter(items)

    def read() -> None:
        try:
            for item in source:
                if stopping.is_set():
                    return
                handoff.put((item, None))
            handoff.put((_END, None))
        except BaseException as error:  # handed to the consumer, which raises it
            handoff.put((_END, error))
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()

    reader = threading.Thread(target=read, name=name, daemon=True)
    reader.start()
    try:
        while True:
            item, error = handoff.get()
            if item is _END:
                if error is not None:
                    raise error
                return
            yield cast(T, item)  # every item but _END is one of ``items``
    finally:
        stopping.set()
        # A reader blocked handing over an item is let through, then sees it must stop.
        while reader.is_alive():
            with suppress(queue.Empty):
                handoff.get(timeout=0.05)
        reader.join()
