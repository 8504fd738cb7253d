"""Regenerate the README's screenshots: .venv/bin/python -m screenshots.generate

Builds the same deterministic world as the snapshot tests (tests/tui/snapshot_world.py: seeded
demo data, real migrations, a frozen clock) and saves an SVG of each main screen at 100×30.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.tui.settling import settled, steady_cursors
from tests.tui.snapshot_world import World, world
from tui_migrator.tui.app import MigratorApp

HERE = Path(__file__).parent
SIZE = (100, 30)


async def capture(built: World) -> None:
    app = MigratorApp(built.service)
    async with app.run_test(size=SIZE) as pilot:

        async def shot(name: str, *keys: str) -> None:
            await pilot.press(*keys)
            # As the snapshot tests wait: a table caught before it measured its columns showed
            # the dashboard's latest migrations cut to their headers' width.
            await settled(pilot)
            steady_cursors(pilot)
            app.save_screenshot(str(HERE / f"{name}.svg"))

        await shot("dashboard")
        await shot("new_migration", "n")
        await shot("estimate", "escape", "e")
        await shot("migrations", "l")
        await shot("audit", "a")
        await shot("keys", "k")
        app.open_monitor(built.running)
        await shot("monitor")


def main() -> None:
    with world() as built:
        asyncio.run(capture(built))
    print(f"screenshots written to {HERE}")


if __name__ == "__main__":
    main()
