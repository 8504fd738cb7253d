"""The app opens on the dashboard, shows health and the latest migrations, and quits on q."""

from __future__ import annotations

import pytest
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Static

from tests.tui.conftest import settle
from tui_migrator.service import health
from tui_migrator.service.facade import MigratorService
from tui_migrator.tui.app import MigratorApp
from tui_migrator.tui.screens.dashboard import DashboardScreen
from tui_migrator.tui.screens.help import HelpScreen
from tui_migrator.tui.screens.monitor import MonitorScreen


async def test_dashboard_shows_health_and_says_there_are_no_migrations_yet(app: MigratorApp) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        assert isinstance(app.screen, DashboardScreen)
        health = str(app.screen.query_one("#health-body", Static).render())
        assert "online" in health and "super_admin" in health
        assert app.screen.query_one("#latest-migrations", DataTable).row_count == 0
        assert "No migrations yet" in str(
            app.screen.query_one("#activity-panel .panel-title", Static).render()
        )


async def test_dashboard_lists_the_latest_migrations_and_enter_opens_the_monitor(
    operator_service: MigratorService,
) -> None:
    first = operator_service.start({"batch_size": 50, "data_categories": ["DEMOGRAPHICS"]})
    second = operator_service.start({"batch_size": 50, "dry_run": True})
    app = MigratorApp(operator_service)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        table = app.screen.query_one("#latest-migrations", DataTable)
        rows = [[str(cell) for cell in table.get_row_at(index)] for index in range(table.row_count)]
        assert [row[0] for row in rows] == [second.id, first.id]  # newest first
        assert rows[0][1] == "completed (dry run)" and rows[1][1] == "completed"
        health = str(app.screen.query_one("#health-body", Static).render())
        assert "2 migrations, 100.0% succeeded" in health
        await pilot.press("down", "enter")
        await settle(app, pilot)
        assert isinstance(app.screen, MonitorScreen) and app.screen.migration_id == first.id


async def test_long_advice_scrolls_and_the_latest_migrations_keep_their_room(
    operator_service: MigratorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Advice grows with what is left to do (a sweep put off per migration, the SQLite library's
    defect): it scrolls in its panel, never pushes the latest migrations off an 80x24 screen."""
    started = [operator_service.start({"batch_size": 50, "dry_run": True}) for _ in range(3)]
    real_advice = health.advice

    def much_advice(**arguments: object) -> tuple[list[str], list[str]]:
        alerts, recommendations = real_advice(**arguments)  # type: ignore[arg-type]
        return alerts, [f"Sweep migration_{n:03}: its sweep was put off" for n in range(12)] + recommendations

    monkeypatch.setattr(health, "advice", much_advice)
    app = MigratorApp(operator_service)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        advice = app.screen.query_one("#advice-scroll", VerticalScroll)
        assert advice.max_scroll_y > 0  # the rest is there, scrolled to
        table = app.screen.query_one("#latest-migrations", DataTable)
        assert table.row_count == len(started)
        # Header and every row on screen: the table's own height holds them all.
        assert table.size.height >= 1 + len(started) and table.max_scroll_y == 0


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
