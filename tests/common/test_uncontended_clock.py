"""The estimate's clock: wall time less the time the thread waited for a CPU that other processes
held — checked with stand-in readings, and on Linux against a real neighbour on the same CPU."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from tui_migrator.common import uncontended_clock


@pytest.fixture
def readings(monkeypatch: pytest.MonkeyPatch) -> Iterator[SimpleNamespace]:
    """Stand-ins for the wall clock and the kernel's count; set ``wall`` and ``waited``."""
    state = SimpleNamespace(wall=100.0, waited=0.0)
    monkeypatch.setattr(uncontended_clock, "time", SimpleNamespace(perf_counter=lambda: state.wall))
    monkeypatch.setattr(uncontended_clock, "_waited_for_a_cpu", lambda: state.waited)
    monkeypatch.setattr(uncontended_clock, "_COUNTED", True)
    yield state


def test_time_waiting_for_a_cpu_is_left_out(readings: SimpleNamespace) -> None:
    started = uncontended_clock.uncontended_seconds()
    readings.wall += 0.30  # 0.30 s passed, 0.12 s of it with another process on the CPU
    readings.waited += 0.12
    assert uncontended_clock.uncontended_seconds() - started == pytest.approx(0.18)


def test_where_the_kernel_does_not_tell_it_is_the_wall_clock(
    readings: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(uncontended_clock, "_COUNTED", False)
    started = uncontended_clock.uncontended_seconds()
    readings.wall += 0.30
    readings.waited += 0.12
    assert uncontended_clock.uncontended_seconds() - started == pytest.approx(0.30)


def test_a_count_that_stops_being_readable_leaves_nothing_out_rather_than_too_much(
    readings: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    readings.waited = 5.0
    started = uncontended_clock.uncontended_seconds()
    monkeypatch.setattr(uncontended_clock, "_waited_for_a_cpu", lambda: None)
    readings.wall += 0.30
    assert uncontended_clock.uncontended_seconds() - started == pytest.approx(0.30)


def _spin_for_cpu_seconds(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


@pytest.mark.skipif(uncontended_clock._waited_for_a_cpu() is None, reason="the kernel does not count it")
def test_a_neighbour_on_the_same_cpu_is_counted_and_left_out() -> None:
    """This thread and a busy process pinned to one CPU: the kernel counts the time this thread
    was kept waiting, and the clock leaves it out of what the wall clock says."""
    cpu = min(os.sched_getaffinity(0))
    before = os.sched_getaffinity(0)
    neighbour = subprocess.Popen(
        [sys.executable, "-c", f"import os; os.sched_setaffinity(0, {{{cpu}}})\nwhile True: pass"]
    )
    try:
        os.sched_setaffinity(0, {cpu})
        time.sleep(0.2)  # the neighbour is pinned and running
        waited = uncontended_clock._waited_for_a_cpu()
        wall, clock = time.perf_counter(), uncontended_clock.uncontended_seconds()
        _spin_for_cpu_seconds(0.1)
        waited_during = uncontended_clock._waited_for_a_cpu() - waited  # type: ignore[operator]
        wall_during = time.perf_counter() - wall
        clock_during = uncontended_clock.uncontended_seconds() - clock
    finally:
        os.sched_setaffinity(0, before)
        neighbour.kill()
        neighbour.wait()
    assert waited_during > 0
    assert clock_during < wall_during
