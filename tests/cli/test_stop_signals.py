"""The stop signals' meaning while a command changes data (cli/stop_signals.py), signal by
signal, in this process: the first cancels the migration safely once its id is known, a second
stops at once; a rollback stops at once on the first; the handlers before are put back."""

from __future__ import annotations

import os
import signal
import threading
from typing import Any, cast

import pytest

from tui_migrator.cli.stop_signals import REASONS, stops_cancel, stops_interrupt, stops_leave
from tui_migrator.service.facade import MigratorService


class CancelsSeen:
    def __init__(self) -> None:
        self.cancelled: list[tuple[str, str]] = []
        self.done = threading.Event()

    def cancel(self, migration_id: str, reason: str, *, wait_seconds: float) -> None:
        self.cancelled.append((migration_id, reason))
        self.done.set()


@pytest.mark.parametrize("number", list(REASONS), ids=lambda number: signal.Signals(number).name)
def test_the_first_stop_signal_cancels_safely_and_a_second_stops_at_once(
    number: signal.Signals, capsys: pytest.CaptureFixture[str]
) -> None:
    service = CancelsSeen()
    before = signal.getsignal(number)
    with stops_cancel(cast(MigratorService, service)) as remember:
        remember("migration_1")
        os.kill(os.getpid(), number)
        assert service.done.wait(10)
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), number)
    assert service.cancelled == [("migration_1", REASONS[number])]
    assert "Stopping after the in-flight batches" in capsys.readouterr().err
    assert signal.getsignal(number) == before


def test_before_the_migration_exists_a_stop_signal_stops_at_once() -> None:
    service = CancelsSeen()
    with stops_cancel(cast(MigratorService, service)), pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGTERM)
    assert service.cancelled == []


@pytest.mark.parametrize("number", list(REASONS), ids=lambda number: signal.Signals(number).name)
def test_a_rollback_stops_at_once_on_any_stop_signal(number: signal.Signals) -> None:
    before: Any = signal.getsignal(number)
    with stops_interrupt(), pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), number)
    assert signal.getsignal(number) == before


@pytest.mark.parametrize("number", list(REASONS), ids=lambda number: signal.Signals(number).name)
def test_a_joined_worker_is_asked_to_leave_then_stops_at_once(number: signal.Signals) -> None:
    with stops_leave() as leave:
        assert not leave.is_set()
        os.kill(os.getpid(), number)
        assert leave.is_set()
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), number)
