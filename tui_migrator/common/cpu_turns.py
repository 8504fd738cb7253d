"""Timing a short sample on every core in turn, not on whichever one it happened to get.

The cores of a virtual machine are not equally fast at one moment: their host threads share
physical cores with other machines' work. On 2026-12-05 a probe pinned to each of a two-core
machine's CPUs at once found one of them about 1.45 times slower than the other, in spells of
0.5-2 s (tests/benchmarks/MEASUREMENTS.md). The kernel counts this neither as time waiting for a
CPU (uncontended_clock.py) nor as steal time: the thread runs, slowly. The estimate's sample,
half a second in one thread, measured whichever core it landed on, in or out of such a spell.

So each timed part of a sample runs on the next of this process's CPUs in turn (the calling
thread's affinity, put back after), and what was timed is told apart by CPU (:func:`by_cpu`):
the caller sees the same work timed on each core at nearly the same moment, and how far apart
they were (:func:`spread`). The estimate charges each stage as the faster core timed it
(engine/estimate.TableTimings).
"""

from __future__ import annotations

import os
import statistics
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")

# How many CPUs a sample takes turns on: two, each timing half its parts, a median of three
# stretches of a table on each. Over more, each CPU would time one or two, and the faster of
# many single parts is the luckiest one, not the faster core.
TURN_CPUS = 2


def _usable_cpus() -> list[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux: no turns
        return []


class CpuTurns:
    """Hands out CPUs one after another to the parts of a sample: ``cpus``, or the first
    TURN_CPUS of those this process may use."""

    def __init__(self, cpus: Sequence[int] | None = None) -> None:
        self.cpus = list(_usable_cpus()[:TURN_CPUS] if cpus is None else cpus)
        self._turn = 0

    @contextmanager
    def next_cpu(self) -> Iterator[int]:
        """Run the block on the next CPU (the calling thread only; its own CPUs back after)
        and give that CPU's number, which labels what the block timed; -1 where there are no
        turns to take (one CPU, a platform without affinity, or one the kernel refused)."""
        if len(self.cpus) < 2:
            yield -1
            return
        cpu = self.cpus[self._turn % len(self.cpus)]
        self._turn += 1
        try:
            before = os.sched_getaffinity(0)
            os.sched_setaffinity(0, {cpu})
        except OSError:  # taken away meanwhile (a cpuset changed): time it where it runs
            yield -1
            return
        try:
            yield cpu
        finally:
            # Back to every CPU it had; where a cpuset took some away meanwhile, to those left.
            try:
                os.sched_setaffinity(0, before)
            except OSError:
                os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))


def by_cpu(timed: Iterable[tuple[int, T]]) -> dict[int, list[T]]:
    """What was timed (cpu, figure), grouped by the CPU it was timed on, in CPU order."""
    groups: dict[int, list[T]] = defaultdict(list)
    for cpu, figure in timed:
        groups[cpu].append(figure)
    return dict(sorted(groups.items()))


def _medians(timed: Iterable[tuple[int, float]]) -> dict[int, float]:
    return {cpu: statistics.median(figures) for cpu, figures in by_cpu(timed).items()}


def fastest(timed: Iterable[tuple[int, float]]) -> int | None:
    """The CPU with the lowest median of the times timed on it (cpu, seconds); None without any."""
    medians = _medians(timed)
    return min(medians, key=lambda cpu: medians[cpu]) if medians else None


def spread(timed: Iterable[tuple[int, float]]) -> float:
    """How many times the slowest CPU's median of what was timed on it (cpu, figure) is the
    fastest one's: 1.0 with one CPU."""
    medians = list(_medians(timed).values())
    if len(medians) < 2 or min(medians) <= 0:
        return 1.0
    return max(medians) / min(medians)
