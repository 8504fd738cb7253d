"""TUI fixtures: the app on the small demo database, opened as the real operating-system user.

The TUI starts migrations in detached worker processes, which run as the real user; that user
is granted super_admin on the test database so the worker may run them.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import pwd
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_textual_snapshot
from textual.pilot import Pilot
from textual.widgets import DataTable

from tests.support.databases import ADMIN, make_settings
from tests.tui.snapshot_text import described_difference
from tests.tui.snapshot_world import World, world
from tui_migrator.common.settings import Settings
from tui_migrator.service.facade import MigratorService, create_demo_service
from tui_migrator.tui.app import MigratorApp
from tui_migrator.tui.screens.monitor import MonitorScreen

REAL_USER = pwd.getpwuid(os.geteuid()).pw_name


@pytest.fixture
def snap_compare(snap_compare: Callable[..., bool], request: pytest.FixtureRequest) -> Callable[..., bool]:
    """pytest-textual-snapshot's comparison, which on a mismatch fails saying what differs in
    text (the plugin's own report is an HTML file, lost with a CI machine)."""

    def compare(*args: Any, **kwargs: Any) -> bool:
        if snap_compare(*args, **kwargs):
            return True
        report = pytest_textual_snapshot.node_to_report_path(request.node)
        accepted, taken = pickle.loads(report.read_bytes())[1:3]
        raise AssertionError(f"The snapshot differs. {described_difference(str(accepted), taken)}")

    return compare


@pytest.fixture
def operator_service(settings: Settings) -> Iterator[MigratorService]:
    with MigratorService.open(settings, user=ADMIN) as admin:
        admin.grant(REAL_USER, "super_admin")
    with MigratorService.open(settings, user=REAL_USER) as service:
        yield service


@pytest.fixture
def busy_service(tmp_path: Path) -> Iterator[MigratorService]:
    """A demo big enough that a one-row-per-batch migration outlasts the test: a test that acts
    on a running migration (cancel, pause) must not find it finished, however fast it runs."""
    settings = make_settings(tmp_path)
    # 10,500 rows: a one-row-per-batch run of the demo's 3,500 once ended within such a test.
    admin, _ = create_demo_service(settings, patients=1200, organizations=3, seed=2, user=ADMIN)
    admin.grant(REAL_USER, "super_admin")
    admin.close()
    with MigratorService.open(settings, user=REAL_USER) as service:
        yield service


@pytest.fixture
def table_clears(monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    """The id of every DataTable cleared from here on, in order: a table a refresh filled anew."""
    cleared: list[str | None] = []
    clear = DataTable.clear

    def counted(table: DataTable[Any], columns: bool = False) -> DataTable[Any]:
        cleared.append(table.id)
        return clear(table, columns)

    monkeypatch.setattr(DataTable, "clear", counted)
    return cleared


@pytest.fixture
def app(operator_service: MigratorService) -> MigratorApp:
    return MigratorApp(operator_service)


async def settle(app: MigratorApp, pilot: Pilot[None]) -> None:
    """Wait until every worker finished and the messages they posted were handled.

    A worker that failed is waited for like the others: the app reports its failure itself
    (the screens' workers do not exit on error), which is what a test then looks at. Textual's
    ``wait_for_complete`` would raise it instead, but only when the worker was still running as
    it was called (a finished one has left the manager): a race on a loaded machine."""
    workers = list(app.workers)
    await asyncio.gather(*(worker.wait() for worker in workers), return_exceptions=True)
    await pilot.pause()


def capture_notifications(app: MigratorApp, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every notification's title and message, as the operator would read them."""
    seen: list[str] = []
    notify = app.notify

    def recording(message: str, **options: Any) -> None:
        seen.append(f"{options.get('title', '')}: {message}")
        notify(message, **options)

    monkeypatch.setattr(app, "notify", recording)
    return seen


async def wait_until(pilot: Pilot[None], condition: Callable[[], object], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        await pilot.pause(0.1)


async def opened_monitor(app: MigratorApp, pilot: Pilot[None], migration_id: str) -> MonitorScreen:
    """The monitor of ``migration_id``, opened and showing its first poll."""
    app.open_monitor(migration_id)
    screen = app.screen
    assert isinstance(screen, MonitorScreen)
    await wait_until(pilot, lambda: screen.record is not None)
    await pilot.pause()
    return screen


async def more_polls(pilot: Pilot[None], screen: MonitorScreen, polls: int) -> None:
    """Wait until the monitor has shown ``polls`` more records, each read afresh."""
    for _poll in range(polls):
        before = screen.record
        await wait_until(pilot, lambda before=before: screen.record is not before)
    await pilot.pause()


@pytest.fixture(scope="module")
def shared_world() -> Iterator[World]:
    """The deterministic world (tests/tui/snapshot_world.py), shared by a module's tests that
    only look at it."""
    with world() as built:
        yield built
