"""A key press is answered within 100 ms while a migration runs and the monitor polls it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import make_settings
from tests.tui.conftest import REAL_USER, wait_until
from tui_migrator.service.facade import MigratorService, create_demo_service
from tui_migrator.storage.migration_status import Status
from tui_migrator.tui.app import MigratorApp
from tui_migrator.tui.screens.help import HelpScreen
from tui_migrator.tui.screens.monitor import MonitorScreen

PRESSES = 10


@pytest.fixture
def busy_service(tmp_path: Path) -> Iterator[MigratorService]:
    """A demo big enough that a one-row-per-batch migration outlasts the measurement."""
    settings = make_settings(tmp_path)
    admin, _ = create_demo_service(settings, patients=400, organizations=3, seed=2, user="alice")
    admin.grant(REAL_USER, "super_admin")
    admin.close()
    with MigratorService.open(settings, user=REAL_USER) as service:
        yield service


async def test_keys_answer_within_100_ms_during_a_running_migration(busy_service: MigratorService) -> None:
    operator_service = busy_service
    app = MigratorApp(busy_service)
    record = operator_service.start({"batch_size": 1, "max_concurrency": 1}, detach=True)
    async with app.run_test(size=(100, 32)) as pilot:
        app.open_monitor(record.id)
        screen = app.screen
        assert isinstance(screen, MonitorScreen)
        # Measure while rows are being written, not during planning.
        await wait_until(pilot, lambda: screen.record is not None and screen.record.encrypted_records > 0)
        latencies = []
        for _ in range(PRESSES):
            # The key is answered when its screen is up; Pilot's press itself also waits for the
            # app to go idle (animations, pending refreshes), which is not the operator's wait.
            started = time.perf_counter()
            press = asyncio.create_task(pilot.press("question_mark"))
            while not isinstance(app.screen, HelpScreen):
                await asyncio.sleep(0.001)
            latencies.append(time.perf_counter() - started)
            await press
            await pilot.press("escape")
        still_running = screen.record is not None and screen.record.status is Status.RUNNING
    if operator_service.status(record.id).status is Status.RUNNING:
        operator_service.cancel(record.id, "test over", wait_seconds=10)
    print(
        f"\nkey → help screen: max {1000 * max(latencies):.1f} ms, median "
        f"{1000 * sorted(latencies)[len(latencies) // 2]:.1f} ms over {PRESSES} presses"
    )
    assert still_running, "the migration finished before the measurement ended"
    assert max(latencies) < 0.100
