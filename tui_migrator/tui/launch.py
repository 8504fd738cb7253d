"""Open the service, then the app; errors before the app starts are the CLI's to print."""

from __future__ import annotations

from tui_migrator.common.settings import Settings
from tui_migrator.service.facade import MigratorService
from tui_migrator.tui.app import MigratorApp


def run_tui(settings: Settings) -> int:
    with MigratorService.open(settings) as service:
        MigratorApp(service).run()
    return 0
