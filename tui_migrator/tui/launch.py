"""Open the service, then the app; errors before the app starts are the CLI's to print."""

from __future__ import annotations

from tui_migrator.service import MigratorService
from tui_migrator.settings import Settings


def run_tui(settings: Settings) -> int:
    from tui_migrator.tui.app import MigratorApp

    with MigratorService.open(settings) as service:
        MigratorApp(service).run()
    return 0
