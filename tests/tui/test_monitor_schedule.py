"""The monitor shows a migration's maintenance window: its state and when it opens or closes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from textual.widgets import Static

from tests.tui.conftest import opened_monitor
from tui_migrator.engine import control
from tui_migrator.service.facade import MigratorService
from tui_migrator.tui.app import MigratorApp


async def test_the_monitor_shows_the_window_and_when_it_closes(
    app: MigratorApp, operator_service: MigratorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(control, "wall_clock", lambda: datetime(2026, 6, 2, 1, 30, tzinfo=UTC))
    record = operator_service.start({"batch_size": 40, "window": "01:00-05:00", "timezone": "UTC"})
    async with app.run_test(size=(100, 32)) as pilot:
        await opened_monitor(app, pilot, record.id)
        shown = str(app.screen.query_one("#monitor-alerts", Static).render())
        assert "Schedule: window 01:00-05:00 UTC, open; closes 2026-06-02 05:00+00:00" in shown
