"""The app opens on the dashboard, shows health and the audit trail, and quits on q."""

from __future__ import annotations

from textual.widgets import DataTable, Static

from tui_migrator.tui.app import MigratorApp
from tui_migrator.tui.screens.dashboard import DashboardScreen
from tui_migrator.tui.screens.help import HelpScreen


async def test_dashboard_shows_health_and_recent_audit_entries(app: MigratorApp) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert isinstance(app.screen, DashboardScreen)
        health = str(app.screen.query_one("#health-body", Static).render())
        assert "online" in health and "super_admin" in health
        table = app.screen.query_one("#audit-table", DataTable)
        assert table.row_count >= 1
        assert "tool_initialized" in [str(cell) for cell in table.get_row_at(table.row_count - 1)]


async def test_help_lists_the_screens_bindings_and_escape_closes_it(app: MigratorApp) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        rows = app.screen.query_one("#help-table", DataTable)
        actions = {str(rows.get_row_at(index)[1]) for index in range(rows.row_count)}
        assert {"Refresh", "Quit", "Help"} <= actions
        await pilot.press("escape")
        assert isinstance(app.screen, DashboardScreen)


async def test_q_quits(app: MigratorApp) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0
