"""The Textual application. It presents and dispatches; the service does the work."""

from __future__ import annotations

from textual.app import App
from textual.binding import Binding
from textual.worker import Worker, WorkerState

from tui_migrator.errors import MigratorError
from tui_migrator.service import MigratorService
from tui_migrator.tui.screens.dashboard import DashboardScreen
from tui_migrator.tui.screens.help import HelpScreen
from tui_migrator.tui.styles import stylesheet


class MigratorApp(App[None]):
    TITLE = "tui-migrator"
    CSS_PATH = [stylesheet("app.tcss")]
    BINDINGS = [
        Binding("q", "quit", "Quit", id="app.quit"),
        Binding("question_mark", "help", "Help", id="app.help", key_display="?"),
    ]

    def __init__(self, service: MigratorService) -> None:
        super().__init__()
        self.service = service
        self.sub_title = service.engine.url.render_as_string(hide_password=True)

    def on_mount(self) -> None:
        self.push_screen(DashboardScreen(self.service))

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

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """One place turns a failed worker into a notification instead of a crash."""
        if event.state is not WorkerState.ERROR:
            return
        error = event.worker.error
        if isinstance(error, MigratorError):
            self.notify(
                str(error), title="Refused" if error.exit_code == 3 else "Error", severity="error", timeout=10
            )
        else:
            self.notify(
                f"Unexpected error ({type(error).__name__}). See the log with -v.",
                severity="error",
                timeout=10,
            )
