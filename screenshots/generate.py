"""Regenerate the README's screenshots: .venv/bin/python -m screenshots.generate

Builds the seeded demo database in a scratch directory, runs one migration, then drives the
real app with Pilot at 100×30 and saves an SVG of each main screen here.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path

from tui_migrator.service import MigratorService, create_demo_service
from tui_migrator.settings import Settings
from tui_migrator.tui.app import MigratorApp

HERE = Path(__file__).parent
SIZE = (100, 30)


async def capture(service: MigratorService, migration_id: str) -> None:
    app = MigratorApp(service)
    async with app.run_test(size=SIZE) as pilot:

        async def shot(name: str) -> None:
            await app.workers.wait_for_complete()
            await pilot.pause(0.5)
            app.save_screenshot(str(HERE / f"{name}.svg"))

        await shot("dashboard")
        await pilot.press("n")
        await shot("new_migration")
        await pilot.press("escape", "e")
        await asyncio.sleep(2)
        await shot("estimate")
        await pilot.press("l")
        await shot("migrations")
        await pilot.press("a")
        await shot("audit")
        app.open_monitor(migration_id)
        await asyncio.sleep(2)
        await shot("monitor")


def main() -> None:
    # A fixed scratch path, so the database path shown in the header is the same every time.
    root = Path(tempfile.gettempdir()) / "tui-migrator-screenshots"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir()
    try:
        settings = Settings.resolve(
            {"data_dir": root / "data", "database_url": f"sqlite:///{root / 'parkml.db'}"}, environ={}
        )
        service, _ = create_demo_service(settings, patients=2000, organizations=4, seed=7, user="operator")
        with service:
            record = service.start({"batch_size": 500, "data_categories": ["DEMOGRAPHICS", "MOTOR_SYMPTOMS"]})
            asyncio.run(capture(service, record.id))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"screenshots written to {HERE}")


if __name__ == "__main__":
    main()
