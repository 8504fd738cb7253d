"""While a migration runs, its process hands the GIL over every RUN_SWITCH_INTERVAL, so the
threads that feed the database are not kept waiting by one that computes; afterwards the
interval is what it was — from a plain call and from inside a running event loop (the TUI)."""

from __future__ import annotations

import asyncio
import sys

import pytest

from tui_migrator.engine import runner


def _seen_during_a_run() -> list[float]:
    seen: list[float] = []

    async def migration() -> None:
        seen.append(sys.getswitchinterval())

    runner._run_to_completion(migration())
    return seen


def test_a_run_switches_often_and_puts_the_interval_back() -> None:
    before = sys.getswitchinterval()
    assert before > runner.RUN_SWITCH_INTERVAL
    assert _seen_during_a_run() == [runner.RUN_SWITCH_INTERVAL]
    assert sys.getswitchinterval() == before


def test_so_does_a_run_started_inside_an_event_loop() -> None:
    before = sys.getswitchinterval()

    async def app() -> list[float]:
        return _seen_during_a_run()

    assert asyncio.run(app()) == [runner.RUN_SWITCH_INTERVAL]
    assert sys.getswitchinterval() == before


def test_a_failing_run_puts_the_interval_back_too() -> None:
    before = sys.getswitchinterval()

    async def migration() -> None:
        raise RuntimeError("the run failed")

    with pytest.raises(RuntimeError, match="the run failed"):
        runner._run_to_completion(migration())
    assert sys.getswitchinterval() == before
