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
import gc
import os
import re
import signal
import threading
from collections.abc import Iterable
from functools import partial
from typing import Any

from textual import on, work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Input

from tui_migrator.service.facade import MigratorService
from tui_migrator.storage.operators import Action
from tui_migrator.tui.formatting import quit_words
from tui_migrator.tui.messages import ActionDone, MonitorRequested, SweepDone
from tui_migrator.tui.recent_errors import RecentErrors
from tui_migrator.tui.screens.audit import AuditScreen
from tui_migrator.tui.screens.dashboard import DashboardScreen
from tui_migrator.tui.screens.estimate import EstimateScreen
from tui_migrator.tui.screens.help import HelpScreen
from tui_migrator.tui.screens.keys import KeysScreen
from tui_migrator.tui.screens.log_view import LogViewScreen
from tui_migrator.tui.screens.migrations_list import MigrationsScreen
from tui_migrator.tui.screens.monitor import MonitorScreen
from tui_migrator.tui.screens.new_migration import NewMigrationScreen
from tui_migrator.tui.styles import stylesheet

HANG_UP_GRACE_SECONDS = 2.0
# How many screens back esc can go (a night of key presses must not grow a list forever).
COME_BACK_STEPS = 20
FUNCTION_KEY = re.compile(r"f\d+")
# The app's actions bound to letters (and `?`), which a focused input takes as text.
KEYS_TYPED_IN_FIELDS = ("go", "help", "quit", "log", "clear_notifications")
STYLESHEETS = (
    "app.tcss",
    "dashboard.tcss",
    "new_migration.tcss",
    "estimate.tcss",
    "monitor.tcss",
    "migrations.tcss",
    "audit.tcss",
    "log_view.tcss",
    "keys.tcss",
)


def freeze_startup_objects() -> None:
    """Keep every object the process holds once the app is up (modules, Textual's stylesheet and
    first screen, SQLAlchemy, the open service: some 170,000) out of the garbage collector's
    full passes for the rest of its life. A full pass walks every object it tracks, holding the
    GIL; over them all it took 100-250 ms, and a key pressed meanwhile waited as long
    (2026-12-05, a monitor open beside a running migration). They live as long as the app;
    what is garbage now is collected first. Only for the launcher's app: a test process opens
    many apps, and each one frozen would stay for the rest of its session."""
    gc.collect()
    gc.freeze()


class MigratorApp(App[None]):
    TITLE = "tui-migrator"
    CSS_PATH = [stylesheet(name) for name in STYLESHEETS]
    MODES = {
        "dashboard": DashboardScreen,
        "new": NewMigrationScreen,
        "estimate": EstimateScreen,
        "migrations": MigrationsScreen,
        "audit": AuditScreen,
        "keys": KeysScreen,
    }
    DEFAULT_MODE = "dashboard"
    BINDINGS = [
        # Each top-level key opens its screen's home (never a monitor left on top of it), and
        # each has an F-key twin that works even where letters type into a field.
        # Only n and l in the footer: at 80 columns the rest would cut it; `?` lists them all.
        Binding(
            "d,f2",
            "go('dashboard')",
            "Dashboard",
            id="app.dashboard",
            tooltip="Health and activity",
            show=False,
        ),
        Binding("n,f3", "go('new')", "New", id="app.new", tooltip="Configure a new migration"),
        Binding(
            "e,f4",
            "go('estimate')",
            "Estimate",
            id="app.estimate",
            tooltip="Estimate a migration",
            show=False,
        ),
        Binding("l,f5", "go('migrations')", "Migrations", id="app.migrations", tooltip="All migrations"),
        Binding("a,f6", "go('audit')", "Audit", id="app.audit", tooltip="The audit trail", show=False),
        # No F-key twin: F7-F9 are screens' own keys. From a field, esc first (or ctrl+p).
        Binding("k", "go('keys')", "Keys", id="app.keys", tooltip="Data keys and their rotation", show=False),
        # Reached only where the screen has no use for esc (a monitor pops itself, a form leaves
        # its field first): one step back, to the screen the operator came from.
        Binding("escape", "step_back", "Back", id="app.back", show=False),
        Binding("g", "log", "Log", id="app.log", tooltip="Recent errors and the error log", show=False),
        Binding(
            "x",
            "clear_notifications",
            "Dismiss",
            id="app.dismiss",
            tooltip="Dismiss the notifications",
            show=False,
        ),
        Binding("question_mark,f1", "help", "Help", id="app.help"),
        Binding("q", "quit", "Quit", id="app.quit", tooltip="Quit; running migrations keep running"),
    ]

    def __init__(self, service: MigratorService, *, freeze_after_start: bool = False) -> None:
        """``freeze_after_start``: see :func:`freeze_startup_objects` (the launcher's app)."""
        super().__init__()
        self.service = service
        self._freeze_after_start = freeze_after_start
        # The configuration on the new-migration form, shared with the estimate screen.
        self.pending_config: dict[str, Any] | None = None
        # The screens the operator came through, for esc (one step back each).
        self._came_from: list[str] = []
        self.sub_title = service.engine.url.render_as_string(hide_password=True)
        # --readonly hides every mutating action; a viewer sees them disabled, with the reason.
        self.readonly = service.settings.readonly
        self.may_migrate = service.can(Action.MIGRATE)
        # The service's words, so what the app shows is the rule the service enforces.
        self.denied_reason = service.denied_reason(Action.MIGRATE)
        self.recent_errors = RecentErrors()

    def on_ready(self) -> None:
        if self._freeze_after_start:
            freeze_startup_objects()

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

    def action_go(self, mode: str) -> None:
        """Open ``mode``'s screen itself: what was left on top of it (a monitor, a dialog) goes."""
        if mode != self.current_mode:
            self._came_from = [*self._came_from, self.current_mode][-COME_BACK_STEPS:]
            self.switch_mode(mode)
        while len(self.screen_stack) > 1:
            self.pop_screen()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # In a field these keys are letters it types: hidden from the footer and help there,
        # where the field shows their F-key twins instead (tui/field_input.py).
        return not (action in KEYS_TYPED_IN_FIELDS and isinstance(self.focused, Input))

    async def action_quit(self) -> None:
        self._quit_saying_what_runs()

    @work(thread=True, group="quit", exclusive=True, exit_on_error=False)
    def _quit_saying_what_runs(self) -> None:
        """Leave, and say on the terminal what keeps running without the app and how to come
        back to it (read in a thread: the database may be slow, the key answered at once)."""
        try:
            everything = self.service.list_migrations(limit=None)[1]
            words = quit_words(everything)
        except Exception:  # the database is gone: leave anyway, saying nothing wrong
            words = None
        self.call_from_thread(self.exit, message=words)

    def action_go_from_field(self, mode: str) -> None:
        self.action_go(mode)

    def action_help_from_field(self) -> None:
        self.action_help()

    def action_step_back(self) -> None:
        if len(self.screen_stack) > 1:
            self.pop_screen()
            return
        while self._came_from:
            mode = self._came_from.pop()
            if mode != self.current_mode:
                self.switch_mode(mode)
                return
        if self.current_mode != "dashboard":
            self.switch_mode("dashboard")

    def open_monitor(self, migration_id: str) -> None:
        self.push_screen(MonitorScreen(migration_id))

    def open_log(self, migration_id: str | None = None) -> None:
        if not isinstance(self.screen, LogViewScreen):
            self.push_screen(LogViewScreen(migration_id))

    def action_log(self) -> None:
        self.open_log()

    def action_clear_notifications(self) -> None:
        self.clear_notifications()

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
        # One line per binding, with all of its keys ("l / F5"): Textual splits "l,f5" into a
        # binding per key. Only the project's own bindings (they all carry an id), not widget
        # internals, and only those that work now (a disabled one is left out, as in the footer).
        keys: dict[str, list[str]] = {}
        descriptions: dict[str, str] = {}
        for _, binding, enabled, _tooltip in self.screen.active_bindings.values():
            if not (enabled and binding.description and binding.id):
                continue
            shown = binding.key_display or self.get_key_display(binding)
            shown = shown.upper() if FUNCTION_KEY.fullmatch(shown) else shown  # F1, as on the key
            if shown not in keys.setdefault(binding.id, []):
                keys[binding.id].append(shown)
            descriptions[binding.id] = binding.description
        self.push_screen(HelpScreen([(" / ".join(keys[i]), descriptions[i]) for i in keys]))

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for mode, title, text in (
            ("dashboard", "Dashboard", "Health, recent activity and alerts"),
            ("new", "New migration", "Configure, estimate and start a migration"),
            ("estimate", "Estimate", "Records, time and storage for a configuration"),
            ("migrations", "Migrations", "Every migration, with its status"),
            ("audit", "Audit trail", "Entries, proofs and chain verification"),
            ("keys", "Data keys", "Each organization's data keys, and their rotation"),
        ):
            yield SystemCommand(title, text, lambda mode=mode: self.action_go(mode))
        yield SystemCommand("Recent errors", "Errors shown this session, and the error log", self.open_log)
        # Every action of the screen that works now (resume, roll back, sweep… on a monitor), so
        # the palette finds what the footer has no room for; the same check_action decides.
        for namespace, binding, enabled, tooltip in screen.active_bindings.values():
            if (
                enabled
                and binding.id
                and binding.description
                and not binding.id.startswith(("app.", "field."))
            ):
                yield SystemCommand(
                    binding.description,
                    tooltip or binding.description,
                    partial(self.run_action, binding.action, namespace),
                )
