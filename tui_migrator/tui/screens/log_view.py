"""``g``: why something failed — the migration's worker log (from the monitor), the error
notifications shown this session, and the error log with the tracebacks they left out.

The logs are read, from their end, in a worker (service/logs.py); the recent errors are the
app's own (tui/recent_errors.py). Log lines are shown as written, never as markup.
"""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Log, Static, TabbedContent, TabPane

from tui_migrator.service.logs import TAIL_LINES, LogTail
from tui_migrator.tui.formatting import local_time
from tui_migrator.tui.messages import LogsLoaded
from tui_migrator.tui.recent_errors import RecentErrors
from tui_migrator.tui.screen_frame import KeyFooter, TitleHeader
from tui_migrator.tui.screens.base import AppScreen

LOAD_GROUP = "log-view"
NO_WORKER_LOG = (
    "Only a detached worker writes one: a migration started from the TUI, or with --detach, "
    "or resumed in the background."
)


def about_tail(tail: LogTail) -> str:
    """The file shown, and how much of it."""
    if tail.problem is not None:
        return f"{tail.path}\n{tail.problem}"
    shown = f"the last {len(tail.lines)} lines" if tail.truncated else "all of it"
    return f"{tail.path} ({shown})"


def recent_errors_text(errors: RecentErrors) -> str:
    if not len(errors):
        return "No error was shown since the app started."
    blocks = []
    for shown in errors.newest_first():
        again = (
            f"  ({shown.times} times, last at {local_time(shown.last_seen)[11:]})" if shown.times > 1 else ""
        )
        blocks.append(f"{local_time(shown.first_seen)[11:]}  {shown.title}{again}\n{shown.message}")
    return "\n\n".join(blocks)


class LogViewScreen(AppScreen):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back", id="log.back"),
        Binding("r", "reload", "Reload", id="log.reload", tooltip="Read the logs again"),
    ]

    def __init__(self, migration_id: str | None = None) -> None:
        super().__init__()
        self.migration_id = migration_id

    def compose(self) -> ComposeResult:
        yield TitleHeader()
        title = f"Log of {self.migration_id}" if self.migration_id else "Recent errors and the error log"
        yield Static(title, id="log-title")
        with TabbedContent(id="log-tabs"):
            if self.migration_id is not None:
                with TabPane("Worker log", id="worker-tab"):
                    yield Static("reading…", id="worker-log-about", classes="log-about", markup=False)
                    yield Log(id="worker-log", max_lines=TAIL_LINES)
            with TabPane("Recent errors", id="errors-tab"), VerticalScroll(id="recent-errors-scroll"):
                yield Static("", id="recent-errors", markup=False)
            with TabPane("Error log", id="error-log-tab"):
                yield Static("reading…", id="error-log-about", classes="log-about", markup=False)
                yield Log(id="error-log", max_lines=TAIL_LINES)
        yield KeyFooter()

    def on_mount(self) -> None:
        self.action_reload()

    def action_reload(self) -> None:
        self.query_one("#recent-errors", Static).update(recent_errors_text(self.host.recent_errors))
        self._load()

    @work(thread=True, group=LOAD_GROUP, exclusive=True, exit_on_error=False)
    def _load(self) -> None:
        service = self.host.service
        worker = service.worker_log(self.migration_id) if self.migration_id is not None else None
        self.post_message(LogsLoaded(service.error_log(), worker))

    @on(LogsLoaded)
    def _show(self, message: LogsLoaded) -> None:
        if message.worker is not None:
            worker = message.worker
            about = about_tail(worker) + (f"\n{NO_WORKER_LOG}" if worker.missing else "")
            self._show_tail("worker-log", worker, about)
        self._show_tail("error-log", message.errors, about_tail(message.errors))

    def _show_tail(self, name: str, tail: LogTail, about: str) -> None:
        self.query_one(f"#{name}-about", Static).update(about)
        log = self.query_one(f"#{name}", Log)
        log.clear()
        log.write_lines(tail.lines)
