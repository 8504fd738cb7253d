"""The Textual application. It presents and dispatches; the service does the work.

Each main screen is a mode, so every screen is one key away from anywhere and keeps its own
stack (the monitor and modals open on top of the screen they came from). Service calls run in
thread workers that post messages (tui/messages.py); failed workers become notifications
(tui/worker_errors.py). Screens never import this module: they read the app's shared state
through the MigratorHost protocol (tui/host.py), which this app satisfies, and ask it for what
only it does with messages.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from collections.abc import Iterable
from typing import Any

from textual import on
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from tui_migrator.service.facade import MigratorService
from tui_migrator.storage.operators import Action
from tui_migrator.tui.messages import ActionDone, MonitorRequested, SweepDone
from tui_migrator.tui.screens.audit import AuditScreen
from tui_migrator.tui.screens.dashboard import DashboardScreen
from tui_migrator.tui.screens.estimate import EstimateScreen
from tui_migrator.tui.screens.help import HelpScreen
from tui_migrator.tui.screens.migrations_list import MigrationsScreen
from tui_migrator.tui.screens.monitor import MonitorScreen
from tui_migrator.tui.screens.new_migration import NewMigrationScreen
from tui_migrator.tui.styles import stylesheet

HANG_UP_GRACE_SECONDS = 2.0
STYLESHEETS = (
    "app.tcss",
    "dashboard.tcss",
    "new_migration.tcss",
    "estimate.tcss",
    "monitor.tcss",
    "migrations.tcss",
    "audit.tcss",
)


class MigratorApp(App[None]):
    TITLE = "tui-migrator"
    CSS_PATH = [stylesheet(name) for name in STYLESHEETS]
    MODES = {
        "dashboard": DashboardScreen,
        "new": NewMigrationScreen,
        "estimate": EstimateScreen,
        "migrations": MigrationsScreen,
        "audit": AuditScreen,
    }
    DEFAULT_MODE = "dashboard"
    BINDINGS = [
        Binding(
            "d",
            "switch_mode('dashboard')",
            "Dashboard",
            id="app.dashboard",
            tooltip="Health and activity",
            show=False,
        ),
        Binding("n", "switch_mode('new')", "New", id="app.new", tooltip="Configure a new migration"),
        Binding(
            "e",
            "switch_mode('estimate')",
            "Estimate",
            id="app.estimate",
            tooltip="Estimate a migration",
            show=False,
        ),
        Binding(
            "l", "switch_mode('migrations')", "Migrations", id="app.migrations", tooltip="All migrations"
        ),
        Binding("a", "switch_mode('audit')", "Audit", id="app.audit", tooltip="The audit trail", show=False),
        Binding("question_mark,f1", "help", "Help", id="app.help", key_display="?"),
        Binding("q", "quit", "Quit", id="app.quit", tooltip="Quit; running migrations keep running"),
    ]

    def __init__(self, service: MigratorService) -> None:
        super().__init__()
        self.service = service
        # The configuration on the new-migration form, shared with the estimate screen.
        self.pending_config: dict[str, Any] | None = None
        self.sub_title = service.engine.url.render_as_string(hide_password=True)
        # --readonly hides every mutating action; a viewer sees them disabled, with the reason.
        self.readonly = service.settings.readonly
        self.may_migrate = service.can(Action.MIGRATE)
        # The service's words, so what the app shows is the rule the service enforces.
        self.denied_reason = service.denied_reason(Action.MIGRATE)

    def on_mount(self) -> None:
        # An SSH drop hangs up the terminal: leave cleanly (a detached worker keeps migrating).
        if hasattr(signal, "SIGHUP"):  # not on Windows
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self._hang_up)

    def _hang_up(self) -> None:
        self.exit()
        # Restoring a terminal that no longer exists can block; nothing is left to save here (a
        # migration runs in its own detached worker), so make sure the process ends regardless.
        fallback = threading.Timer(HANG_UP_GRACE_SECONDS, os._exit, args=(0,))
        fallback.daemon = True
        fallback.start()

    def mutation_state(self) -> bool | None:
        """For check_action of mutating actions: True allowed, None shown disabled, False hidden."""
        if self.may_migrate:
            return True
        return False if self.readonly else None

    def open_monitor(self, migration_id: str) -> None:
        self.push_screen(MonitorScreen(migration_id))

    @on(MonitorRequested)
    def _monitor_requested(self, message: MonitorRequested) -> None:
        self.open_monitor(message.migration_id)

    @on(ActionDone)
    def _action_done(self, message: ActionDone) -> None:
        self.notify(message.text)

    @on(SweepDone)
    def _sweep_done(self, message: SweepDone) -> None:
        self.notify(message.text, severity="information" if message.succeeded else "warning")

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            return
        shown = [
            (binding.key_display or self.get_key_display(binding), binding.description)
            for (_, binding, enabled, _tooltip) in self.screen.active_bindings.values()
            # Only the project's own bindings (they all carry an id), not widget internals.
            if enabled and binding.description and binding.id
        ]
        self.push_screen(HelpScreen(shown))

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for mode, title, text in (
            ("dashboard", "Dashboard", "Health, recent activity and alerts"),
            ("new", "New migration", "Configure, estimate and start a migration"),
            ("estimate", "Estimate", "Records, time and storage for a configuration"),
            ("migrations", "Migrations", "Every migration, with its status"),
            ("audit", "Audit trail", "Entries, proofs and chain verification"),
        ):
            yield SystemCommand(title, text, lambda mode=mode: self.switch_mode(mode))
