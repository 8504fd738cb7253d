"""One place turns a failed worker into a notification instead of a crash.

The notification says what failed, in the operation's words, and what to do next. A service
error (MigratorError) carries a message and hint written to be shown. Any other exception's
text may quote record values (a database driver's error message does), so only its class is
shown; its traceback goes to the database's error log (service/logs.py), which the log view
(g) shows on request. Error notifications stay until dismissed (x, or a click), and every one
is kept in the app's recent errors (tui/recent_errors.py) for the log view to list. The
database failing under an operation (its connection lost, its disk full) is said in its words
(service/failures.py).
"""

from __future__ import annotations

from typing import Any

from textual.app import App
from textual.worker import Worker, WorkerState

from tui_migrator.common.errors import MigratorError, PermissionDenied
from tui_migrator.service import failures
from tui_migrator.tui.host import MigratorHost, host_of

# Textual has no "never" for a notification: a day outlasts any session left open, and the
# operator dismisses it sooner.
UNTIL_DISMISSED_SECONDS = 24 * 60 * 60
DISMISS_HINT = "Press x or click to dismiss."
# What each screen's background work does, by the worker's group and name (the method that
# @work runs), in the words an operator knows. tests/tui/test_error_notifications.py checks
# that every worker of the screens is named here.
OPERATIONS: dict[tuple[str, str], str] = {
    ("dashboard", "_load"): "Loading the dashboard",
    ("new-migration-counts", "_count"): "Counting the records to encrypt",
    ("estimate", "_compute"): "Estimating the migration",
    ("confirm-estimate", "_estimate"): "Estimating the migration",
    ("confirm-start", "_start"): "Starting the migration",
    ("migrations-list", "_load"): "Loading the migrations",
    ("audit-load", "_load"): "Loading the audit trail",
    ("audit-verify", "_verify"): "Verifying the audit trail",
    ("monitor", "_load"): "Reading the migration's progress",
    ("monitor-action", "_cancel"): "Cancelling the migration",
    ("monitor-action", "action_pause"): "Pausing or continuing the migration",
    ("monitor-action", "_resume"): "Resuming the migration",
    ("monitor-action", "_rollback"): "Rolling back the migration",
    ("monitor-action", "_sweep"): "Sweeping the migration's plaintext",
    ("monitor-action", "_purge_backups"): "Purging the migration's backups",
    ("monitor-action", "_load_failed"): "Loading the failed records",
    ("monitor-action", "_export_evidence"): "Writing the evidence bundle",
    ("log-view", "_load"): "Reading the logs",
    ("keys", "_load"): "Loading the data keys",
    ("keys-rotate", "_rotate"): "Starting the key rotation",
}
UNKNOWN_OPERATION = "A background task"


def operation_of(worker: Worker[Any]) -> str:
    return OPERATIONS.get((worker.group, worker.name), UNKNOWN_OPERATION)


def report_failed_worker(app: App[Any], event: Worker.StateChanged) -> None:
    """Notify the operator of a worker that failed, unless it is the same failure again."""
    if event.state is not WorkerState.ERROR:
        return
    host = host_of(app)
    # The service's errors, and the database failing under the operation, in their own words.
    error = failures.plain(event.worker.error) or event.worker.error
    operation = operation_of(event.worker)
    if isinstance(error, MigratorError):
        refused = error.exit_code == PermissionDenied.exit_code
        title = f"{operation}: refused" if refused else f"{operation} failed"
        cause = str(error)
    else:
        title = f"{operation} failed"
        cause = type(error).__name__
    if host.recent_errors.repeated(title, cause):
        return
    message = str(error) if isinstance(error, MigratorError) else _unexpected(host, operation, error)
    host.recent_errors.add(title, cause, message)
    app.notify(
        f"{message}\n{DISMISS_HINT}",
        title=title,
        severity="error",
        timeout=UNTIL_DISMISSED_SECONDS,
        # The service's messages quote names and paths, whose brackets are not markup.
        markup=False,
    )


def _unexpected(host: MigratorHost, operation: str, error: BaseException | None) -> str:
    """The words for an exception the service did not expect: its class, and where its details
    are, once they are written there (here, on the app's thread: one small append, done before
    the notification names the file)."""
    if error is None:  # a worker in the ERROR state always has one; the type allows None
        return "Unexpected error. Press g for the log view."
    unexpected = f"Unexpected error ({type(error).__name__})."
    try:
        path = host.service.record_error(operation, error)
    except OSError as problem:
        return (
            f"{unexpected} Its details may quote record values, so they are not shown here, and the "
            f"error log could not be written ({problem.strerror or type(problem).__name__}). "
            "Press g for the log view."
        )
    return (
        f"{unexpected} Its details may quote record values, so only the error log has them: "
        f"press g to read it, or open {path}."
    )
