"""One place turns a failed worker into a notification instead of a crash."""

from __future__ import annotations

from typing import Any

from textual.app import App
from textual.worker import Worker, WorkerState

from tui_migrator.common.errors import MigratorError, PermissionDenied

NOTIFICATION_SECONDS = 10


def report_failed_worker(app: App[Any], event: Worker.StateChanged) -> None:
    """Notify the operator of a worker that failed: the service's own words for its errors, and
    only the exception's type for anything else (its text might carry data or secrets)."""
    if event.state is not WorkerState.ERROR:
        return
    error = event.worker.error
    if isinstance(error, MigratorError):
        title = "Refused" if error.exit_code == PermissionDenied.exit_code else "Error"
        app.notify(str(error), title=title, severity="error", timeout=NOTIFICATION_SECONDS)
    else:
        app.notify(
            f"Unexpected error ({type(error).__name__}). See the log with -v.",
            severity="error",
            timeout=NOTIFICATION_SECONDS,
        )
