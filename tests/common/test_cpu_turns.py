"""Each part of a sample runs on the next CPU, only the calling thread is moved, and it gets its
own CPUs back whatever the part does."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable

import pytest

from tui_migrator.common.cpu_turns import CpuTurns, by_cpu, fastest, spread

CPUS = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
needs_two_cpus = pytest.mark.skipif(len(CPUS) < 2, reason="turns need two CPUs to take")


@needs_two_cpus
def test_each_part_runs_on_the_next_cpu_and_the_thread_gets_its_own_back() -> None:
    before = os.sched_getaffinity(0)
    turns = CpuTurns()
    seen = []
    for _ in range(4):
        with turns.next_cpu() as cpu:
            seen.append(cpu)
            assert os.sched_getaffinity(0) == {cpu}
        assert os.sched_getaffinity(0) == before
    assert seen == CPUS[:2] * 2  # two CPUs take turns, on a machine of any size


@needs_two_cpus
def test_only_the_calling_thread_is_moved() -> None:
    before = os.sched_getaffinity(0)
    pinned = threading.Event()
    done = threading.Event()
    elsewhere: dict[str, set[int]] = {}

    def another_thread() -> None:
        pinned.wait(10)
        elsewhere["cpus"] = os.sched_getaffinity(0)
        done.set()

    thread = threading.Thread(target=another_thread)
    thread.start()
    with CpuTurns().next_cpu() as cpu:
        assert os.sched_getaffinity(0) == {cpu}
        pinned.set()
        assert done.wait(10)
    thread.join()
    assert elsewhere["cpus"] == before


@needs_two_cpus
def test_a_part_that_raises_still_gives_the_cpus_back() -> None:
    before = os.sched_getaffinity(0)
    with pytest.raises(RuntimeError), CpuTurns().next_cpu():
        raise RuntimeError("the part failed")
    assert os.sched_getaffinity(0) == before


@needs_two_cpus
def test_a_cpu_taken_away_is_timed_where_the_thread_runs() -> None:
    before = os.sched_getaffinity(0)
    turns = CpuTurns([CPUS[0], 4096])  # no such CPU: the kernel refuses it
    with turns.next_cpu() as first:
        assert first == CPUS[0]
    with turns.next_cpu() as refused:
        assert refused == -1
        assert os.sched_getaffinity(0) == before


def test_one_cpu_gives_no_turns() -> None:
    before = os.sched_getaffinity(0) if CPUS else None
    with CpuTurns([0]).next_cpu() as cpu:
        assert cpu == -1
        if before is not None:
            assert os.sched_getaffinity(0) == before


def test_what_was_timed_is_grouped_by_cpu_and_the_spread_compares_their_medians() -> None:
    timed = [(1, 1.0), (0, 1.45), (1, 1.1), (0, 1.5), (1, 9.0), (0, 1.4)]
    assert by_cpu(timed) == {0: [1.45, 1.5, 1.4], 1: [1.0, 1.1, 9.0]}
    assert spread(timed) == pytest.approx(1.45 / 1.1)  # medians: one slow part moves neither
    assert spread([(-1, 2.0), (-1, 3.0)]) == 1.0
    assert fastest(timed) == 1 and fastest([]) is None


@needs_two_cpus
def test_cpus_taken_away_during_a_part_leave_the_thread_on_those_left(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A cpuset shrunk while a part ran refuses the thread's old CPUs back: it gets every CPU
    the kernel still allows (it intersects), not the one it was pinned to."""
    set_affinity = os.sched_setaffinity
    masks: list[set[int]] = []

    def refusing_the_old_mask(pid: int, mask: Iterable[int]) -> None:
        masks.append(set(mask))
        if len(masks) == 2:  # putting the old CPUs back
            raise OSError(22, "Invalid argument")
        set_affinity(pid, mask)

    monkeypatch.setattr(os, "sched_setaffinity", refusing_the_old_mask)
    before = os.sched_getaffinity(0)
    with CpuTurns().next_cpu() as cpu:
        assert os.sched_getaffinity(0) == {cpu}
    assert masks[2] == set(range(os.cpu_count() or 1))
    assert os.sched_getaffinity(0) == before
