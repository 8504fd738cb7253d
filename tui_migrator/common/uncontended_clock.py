"""A clock for timing a short sample of work: wall time less the time other processes took.

The estimate times a sample of a few hundred milliseconds and scales it to the whole run. On a
shared machine another process may hold the CPU for part of that sample, and every stage of it
then looks slower than the machine is: on 2026-12-05, two of twelve estimates of one and the same
table came out 1.5 times long, every stage slower by the same factor, and a sample taken beside
two busy processes did the same. Linux counts, for each thread, the time it was ready to run but
waited for a CPU (``/proc/thread-self/schedstat``, its second field, in nanoseconds); this clock
leaves that out, so the sample measures the work and not the neighbours. Waiting for the
database, the disk or a lock still counts. Where the kernel does not tell, it is ``perf_counter``.

Readings are differences taken on one thread (the counter is the thread's own).
"""

from __future__ import annotations

import threading
import time

_SCHEDSTAT = "/proc/thread-self/schedstat"


class _LastWait(threading.local):
    seconds = 0.0


_last_wait = _LastWait()


def _waited_for_a_cpu() -> float | None:
    """Seconds this thread has been ready to run without a CPU; None where the kernel does not
    say (not Linux, or built without scheduler statistics)."""
    try:
        with open(_SCHEDSTAT, "rb") as stat:
            return int(stat.read().split()[1]) / 1e9
    except (OSError, ValueError, IndexError):
        return None


_COUNTED = _waited_for_a_cpu() is not None


def uncontended_seconds() -> float:
    """A reading in seconds: ``perf_counter`` less this thread's time waiting for a CPU."""
    now = time.perf_counter()
    if not _COUNTED:
        return now
    waited = _waited_for_a_cpu()
    if waited is None:
        # Readable a moment ago: the last figure keeps differences sound (none left out).
        waited = _last_wait.seconds
    _last_wait.seconds = waited
    return now - waited
