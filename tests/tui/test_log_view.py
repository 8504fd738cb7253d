"""The log view (g): on the monitor, the tail of the migration's worker log; anywhere, the
recent errors and the error log."""

from __future__ import annotations

from textual.widgets import Log, Static

from tests.tui.conftest import settle
from tui_migrator.engine.log_files import error_log_path, log_path
from tui_migrator.service.facade import MigratorService
from tui_migrator.service.logs import TAIL_LINES
from tui_migrator.tui.app import MigratorApp
from tui_migrator.tui.screens.log_view import LogViewScreen
from tui_migrator.tui.screens.monitor import MonitorScreen


def text_of(app: MigratorApp, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


async def test_g_on_the_monitor_shows_the_tail_of_the_migrations_worker_log(
    app: MigratorApp, operator_service: MigratorService
) -> None:
    record = operator_service.start({"batch_size": 40})
    written = [f"worker line {number} [not markup]" for number in range(TAIL_LINES + 150)]
    path = log_path(operator_service.settings, record.id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(written) + "\n")
    async with app.run_test(size=(100, 32)) as pilot:
        app.open_monitor(record.id)
        await settle(app, pilot)
        await pilot.press("g")
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, LogViewScreen) and screen.migration_id == record.id
        assert list(screen.query_one("#worker-log", Log).lines) == written[-TAIL_LINES:]
        assert text_of(app, "#worker-log-about") == f"{path} (the last {TAIL_LINES} lines)"
        await pilot.press("escape")
        assert isinstance(app.screen, MonitorScreen)


async def test_a_migration_without_a_worker_log_says_why(
    app: MigratorApp, operator_service: MigratorService
) -> None:
    record = operator_service.start({"batch_size": 40})  # run in this process: no worker
    async with app.run_test(size=(100, 32)) as pilot:
        app.open_monitor(record.id)
        await settle(app, pilot)
        await pilot.press("g")
        await settle(app, pilot)
        about = text_of(app, "#worker-log-about")
        assert "There is no log here yet." in about and "Only a detached worker writes one" in about
        assert list(app.screen.query_one("#worker-log", Log).lines) == []


async def test_g_elsewhere_shows_the_recent_errors_and_the_error_log(
    app: MigratorApp, operator_service: MigratorService
) -> None:
    async with app.run_test(size=(100, 32)) as pilot:
        await settle(app, pilot)
        await pilot.press("g")
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, LogViewScreen) and screen.migration_id is None
        assert not screen.query("#worker-log")
        assert text_of(app, "#recent-errors") == "No error was shown since the app started."
        assert str(error_log_path(operator_service.settings)) in text_of(app, "#error-log-about")
        await pilot.press("g")  # already open: not a second one
        await pilot.pause()
        assert app.screen is screen
