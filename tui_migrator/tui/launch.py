"""Open the service, then the app; errors before the app starts are the CLI's to print."""

from __future__ import annotations

from tui_migrator.common.settings import Settings
from tui_migrator.service.facade import MigratorService
from tui_migrator.service.opening import is_set_up
from tui_migrator.tui.app import MigratorApp
from tui_migrator.tui.first_run import FirstRunApp


def run_tui(settings: Settings) -> int:
    """On a database that is not set up, ask first (not in a read-only session, which could not
    set it up anyway); declined, the CLI prints how to set it up later."""
    may_set_up = not settings.readonly and not is_set_up(settings) and bool(FirstRunApp(settings).run())
    # Declined (or read-only), opening refuses a database that is not set up, writing nothing.
    with MigratorService.open(settings, may_set_up=may_set_up) as service:
        MigratorApp(service, freeze_after_start=True).run()
    return 0
