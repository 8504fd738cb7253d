"""Keys are answered while a migration runs and the monitor polls it, however slow the database.

The guarantee rests on a mechanism, and that is what is tested: the migration runs in a detached
worker process, and the monitor reads the database in worker threads, never on the event loop.
So a key press is handled even while one of those reads is held mid-call by the test.
How fast keys are answered is measured by tests/benchmarks/responsiveness.py.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from tests.tui.conftest import wait_until
from tui_migrator.service.facade import MigratorService
from tui_migrator.storage.migration_status import Status
from tui_migrator.tui.app import MigratorApp
from tui_migrator.tui.screens.help import HelpScreen
from tui_migrator.tui.screens.monitor import MonitorScreen

PRESSES = 3
# Only a safety net: the test releases the held read itself; this merely ends a failed run.
HOLD_LIMIT_SECONDS = 60.0


class HeldReads:
    """Wraps a service's read methods: records the thread of every call and, once ``hold()``
    was called, keeps the next ``status`` call waiting until ``release()``."""

    def __init__(self, service: MigratorService, monkeypatch: pytest.MonkeyPatch) -> None:
        self.threads: set[int] = set()
        self.entered = threading.Event()
        self.left = threading.Event()
        self.finished_after_release = threading.Event()
        self._holding = False
        self._released = threading.Event()
        self.real_status = service.status
        for name in ("status", "audit_entries"):
            monkeypatch.setattr(service, name, self._wrap(name, getattr(service, name)))

    def _wrap(self, name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def call(*arguments: Any, **options: Any) -> Any:
            self.threads.add(threading.get_ident())
            held = name == "status" and self._holding and not self.entered.is_set()
            if held:
                self.entered.set()
                self._released.wait(HOLD_LIMIT_SECONDS)
                self.left.set()
            result = real(*arguments, **options)
            if name == "status" and self._released.is_set():
                self.finished_after_release.set()
            return result

        return call

    def hold(self) -> None:
        self._holding = True

    def release(self) -> None:
        self._released.set()

    @property
    def in_flight(self) -> bool:
        """Whether the held call is still waiting inside the service."""
        return self.entered.is_set() and not self.left.is_set()


@contextmanager
def writes_held(service: MigratorService) -> Iterator[None]:
    """The SQLite database's write lock held by a connection of the test's own: the detached
    worker's next write waits for it, so its migration is still running when the keys have been
    answered, however fast it goes (it once finished first: CI, 2026-12-06)."""
    database = service.engine.url.database
    assert database is not None
    connection = sqlite3.connect(database, timeout=HOLD_LIMIT_SECONDS)
    try:
        connection.execute("BEGIN IMMEDIATE")
        yield
    finally:
        connection.rollback()
        connection.close()


async def test_keys_are_answered_while_the_monitors_database_read_is_held(
    busy_service: MigratorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop_thread = threading.get_ident()
    reads = HeldReads(busy_service, monkeypatch)
    app = MigratorApp(busy_service)
    record = busy_service.start({"batch_size": 1, "max_concurrency": 1}, detach=True)
    try:
        async with app.run_test(size=(100, 32)) as pilot:
            app.open_monitor(record.id)
            screen = app.screen
            assert isinstance(screen, MonitorScreen)
            # Rows are being written, not planned: the migration is mid-flight.
            await wait_until(pilot, lambda: screen.record is not None and screen.record.encrypted_records > 0)

            with writes_held(busy_service):
                reads.hold()
                await wait_until(pilot, reads.entered.is_set)
                for _ in range(PRESSES):
                    await pilot.press("question_mark")
                    await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen))
                    assert reads.in_flight, "the held read ended before the key was answered"
                    await pilot.press("escape")
                    await wait_until(pilot, lambda: app.screen is screen)
                assert reads.in_flight
                assert reads.real_status(record.id).status is Status.RUNNING

            reads.release()
            # The monitor goes on polling once the database answers again.
            await wait_until(pilot, reads.finished_after_release.is_set)
    finally:
        if reads.real_status(record.id).status is Status.RUNNING:
            busy_service.cancel(record.id, "test over", wait_seconds=10)
    assert reads.threads, "the monitor never read the migration"
    assert loop_thread not in reads.threads, "the monitor read the database on the event loop"
