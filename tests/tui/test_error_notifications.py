"""A failed worker becomes a notification that says what failed and what to do, stays until
dismissed, and never shows an unexpected exception's text (it may quote record values): that
goes, with the traceback, to the error log, which the log view shows on request."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError
from textual.widgets import Log, Static

from tests.support.faults import server_restarting
from tests.tui.conftest import settle, wait_until
from tui_migrator.common.errors import OperationFailed
from tui_migrator.engine.log_files import error_log_path
from tui_migrator.service.facade import MigratorService
from tui_migrator.tui import screens
from tui_migrator.tui.app import MigratorApp
from tui_migrator.tui.screens.log_view import LogViewScreen
from tui_migrator.tui.worker_errors import OPERATIONS

# What a driver's message can quote: a value of a record (here a made-up social security number).
RECORD_VALUE = "078-05-1120"
AN_HOUR = 3600


def failing_with_a_value(*_args: object, **_options: object) -> None:
    raise IntegrityError(
        "UPDATE demographics SET ssn=? WHERE id=?",
        None,
        Exception(f"UNIQUE constraint failed: Key (ssn)=({RECORD_VALUE}) already exists"),
    )


def record_notifications(app: MigratorApp, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every notification, with its message and options."""
    shown: list[dict[str, Any]] = []
    notify = app.notify

    def recording(message: str, **options: Any) -> None:
        shown.append({"message": message, **options})
        notify(message, **options)

    monkeypatch.setattr(app, "notify", recording)
    return shown


def toasts(app: MigratorApp) -> list[str]:
    """The notifications on the screen (run_test shows them only with notifications=True)."""
    return [str(toast.render()) for toast in app.screen.query("Toast")]


async def test_an_unexpected_error_says_what_failed_and_where_to_read_more_and_not_its_text(
    app: MigratorApp, operator_service: MigratorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(operator_service, "health", failing_with_a_value)
    shown = record_notifications(app, monkeypatch)
    error_log = error_log_path(operator_service.settings)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await settle(app, pilot)
        assert len(shown) == 1
        notification = shown[0]
        assert notification["title"] == "Loading the dashboard failed"
        assert notification["severity"] == "error"
        assert notification["timeout"] >= AN_HOUR  # stays until dismissed
        message = notification["message"]
        assert message.startswith("Unexpected error (IntegrityError).")
        assert "press g to read it, or open" in message and str(error_log) in message
        assert "Press x or click to dismiss." in message
        assert RECORD_VALUE not in message and RECORD_VALUE not in notification["title"]
        await wait_until(pilot, lambda: toasts(app))  # mounted a moment after the notification
        [toast] = toasts(app)
        assert "Loading the dashboard failed" in toast and RECORD_VALUE not in toast
        assert RECORD_VALUE not in app.export_screenshot()

        # The traceback, value and all, is in the error log, for the operator only.
        logged = error_log.read_text()
        assert "Loading the dashboard failed (user " in logged
        assert "Traceback (most recent call last)" in logged and RECORD_VALUE in logged

        # The recent errors list it, in the notification's words.
        await pilot.press("g")
        await settle(app, pilot)
        assert isinstance(app.screen, LogViewScreen)
        listed = str(app.screen.query_one("#recent-errors", Static).render())
        assert "Loading the dashboard failed" in listed and "IntegrityError" in listed
        assert RECORD_VALUE not in listed
        # The error log tab shows the traceback when asked for.
        error_lines = list(app.screen.query_one("#error-log", Log).lines)
        assert any(line.startswith("sqlalchemy.exc.IntegrityError") for line in error_lines)

        # x dismisses it.
        assert toasts(app)
        await pilot.press("x")
        await wait_until(pilot, lambda: toasts(app) == [])


async def test_a_failure_that_recurs_is_one_notification_counted_in_the_recent_errors(
    app: MigratorApp, operator_service: MigratorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(operator_service, "health", failing_with_a_value)
    shown = record_notifications(app, monkeypatch)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await settle(app, pilot)
        await pilot.press("r")  # the dashboard loads again, and fails the same way
        await settle(app, pilot)
        assert len(shown) == 1
        assert error_log_path(operator_service.settings).read_text().count("Traceback") == 1
        await pilot.press("g")
        await settle(app, pilot)
        assert "(2 times, last at" in str(app.screen.query_one("#recent-errors", Static).render())


@pytest.mark.parametrize(
    ("error", "words", "in_toast"),
    [
        pytest.param(
            OperationFailed("Cannot read the table 'demographics[1]'.", hint="Check the mapping."),
            "Cannot read the table 'demographics[1]'. Check the mapping.",
            "demographics[1]",
            id="a service error",
        ),
        # The database failing under the operation is said in its words (service/failures.py).
        pytest.param(
            server_restarting(),
            "The database failed: terminating connection due to administrator command. Check that "
            "the database server is up",
            "The database failed",
            id="the database failing",
        ),
    ],
)
async def test_a_service_error_shows_its_message_and_hint_and_stays(
    app: MigratorApp,
    operator_service: MigratorService,
    monkeypatch: pytest.MonkeyPatch,
    error: Exception,
    words: str,
    in_toast: str,
) -> None:
    def refuse(*_args: object, **_options: object) -> None:
        raise error

    monkeypatch.setattr(operator_service, "health", refuse)
    shown = record_notifications(app, monkeypatch)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await settle(app, pilot)
        [notification] = shown
        assert notification["title"] == "Loading the dashboard failed"
        assert notification["message"].startswith(words)
        assert "Unexpected error" not in notification["message"]
        assert notification["timeout"] >= AN_HOUR
        # Shown as written: brackets in a name are not markup.
        assert notification["markup"] is False
        await wait_until(pilot, lambda: toasts(app))
        assert in_toast in toasts(app)[0]
    # Its words are safe and complete: nothing more to keep.
    assert not error_log_path(operator_service.settings).exists()


def test_every_background_task_of_the_screens_is_named_in_plain_words() -> None:
    """Each @work method of every screen has an entry in OPERATIONS, so its failure says what
    failed instead of "A background task"."""
    found: list[tuple[str, str]] = []
    for info in pkgutil.iter_modules(screens.__path__):
        module = importlib.import_module(f"{screens.__name__}.{info.name}")
        assert module.__file__ is not None
        tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef):
                continue
            for decorator in node.decorator_list:
                if isinstance(decorator, ast.Call) and getattr(decorator.func, "id", None) == "work":
                    group = next(keyword.value for keyword in decorator.keywords if keyword.arg == "group")
                    name = (
                        group.value
                        if isinstance(group, ast.Constant)
                        else getattr(module, ast.unparse(group))
                    )
                    found.append((name, node.name))
    assert len(found) >= 10  # the scan sees the workers
    assert [task for task in found if task not in OPERATIONS] == []
