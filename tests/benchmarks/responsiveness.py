"""How fast a key is answered while a migration runs and the monitor polls it.

Run: .venv/bin/python -m tests.benchmarks.responsiveness [--presses 20]

Builds a small demo in a temp dir, starts a one-row-per-batch migration in a detached worker,
opens the monitor in a headless app and presses ``?`` repeatedly, timing each press until the
help screen is up. Prints the maximum and median latency. (The suite tests the mechanism that
keeps this low: tests/tui/test_responsiveness.py.)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pwd
import tempfile
import time
from pathlib import Path

from tui_migrator.common.settings import Settings
from tui_migrator.service.facade import MigratorService, create_demo_service
from tui_migrator.storage.migration_status import Status
from tui_migrator.tui.app import MigratorApp
from tui_migrator.tui.screens.help import HelpScreen
from tui_migrator.tui.screens.monitor import MonitorScreen

USER = pwd.getpwuid(os.geteuid()).pw_name


async def measure(service: MigratorService, presses: int, config: dict[str, int]) -> list[float]:
    app = MigratorApp(service, freeze_after_start=True)  # as the launcher's
    record = service.start(config, detach=True)
    latencies: list[float] = []
    try:
        async with app.run_test(size=(100, 32)) as pilot:
            app.open_monitor(record.id)
            screen = app.screen
            assert isinstance(screen, MonitorScreen)
            # Measure while rows are being written, not during planning.
            while screen.record is None or screen.record.encrypted_records == 0:
                await pilot.pause(0.1)
            for _ in range(presses):
                # The key is answered when its screen is up; Pilot's press itself also waits for
                # the app to go idle (animations, pending refreshes), which is not the operator's wait.
                started = time.perf_counter()
                press = asyncio.create_task(pilot.press("question_mark"))
                while not isinstance(app.screen, HelpScreen):
                    await asyncio.sleep(0.001)
                latencies.append(time.perf_counter() - started)
                await press
                await pilot.press("escape")
            if service.status(record.id).status is not Status.RUNNING:
                print("note: the migration finished before the measurement ended")
    finally:
        if service.status(record.id).status is Status.RUNNING:
            service.cancel(record.id, "benchmark over", wait_seconds=10)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presses", type=int, default=20)
    parser.add_argument("--patients", type=int, default=400)
    # The default: the most progress to show (a batch per row). --batch-size 1000
    # --max-concurrency 2 (and more patients) keeps the worker processes busy on every core.
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--max-concurrency", type=int, default=1)
    arguments = parser.parse_args()
    config = {"batch_size": arguments.batch_size, "max_concurrency": arguments.max_concurrency}
    with tempfile.TemporaryDirectory(prefix="tui-migrator-bench-") as scratch:
        root = Path(scratch)
        settings = Settings.resolve(
            {"data_dir": root / "data", "database_url": f"sqlite:///{root / 'parkml.db'}"}, environ={}
        )
        admin, _ = create_demo_service(
            settings, patients=arguments.patients, organizations=3, seed=2, user=USER
        )
        admin.close()
        with MigratorService.open(settings, user=USER) as service:
            latencies = asyncio.run(measure(service, arguments.presses, config))
    ordered = sorted(latencies)
    print(
        f"key → help screen: max {1000 * ordered[-1]:.1f} ms, "
        f"median {1000 * ordered[len(ordered) // 2]:.1f} ms over {len(ordered)} presses"
    )


if __name__ == "__main__":
    main()
