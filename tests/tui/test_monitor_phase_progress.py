"""The monitor shows the backup and the verification moving: their rows done of their total on
the bar and in words, with their own rate and ETA."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from textual.widgets import ProgressBar, Static

from tests.tui.conftest import wait_until
from tui_migrator.service.facade import MigratorService
from tui_migrator.storage.migration_records import PhaseProgress
from tui_migrator.storage.migration_status import Phase
from tui_migrator.storage.tables import migrations_table, utc_now
from tui_migrator.tui.app import MigratorApp
from tui_migrator.tui.screens.monitor import MonitorScreen


def text_of(app: MigratorApp, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


@pytest.mark.parametrize(
    ("phase", "words"), [(Phase.BACKUP, "backing up"), (Phase.VERIFICATION, "verifying")]
)
async def test_monitor_shows_rows_done_of_the_phase_with_its_rate_and_eta(
    app: MigratorApp, operator_service: MigratorService, phase: Phase, words: str
) -> None:
    record = operator_service.start({"batch_size": 40})
    # As its worker records it a moment into the phase (and its heartbeat says it is alive).
    now = utc_now()
    progress = PhaseProgress(phase=phase.value, done=12_000, total=30_000, rate_per_second=1_500.0, at=now)
    with operator_service.engine.begin() as connection:
        connection.execute(
            sa.update(migrations_table)
            .where(migrations_table.c.id == record.id)
            .values(
                status="running",
                phase=phase.value,
                completed_at=None,
                heartbeat_at=now,
                phase_progress=json.dumps(progress.to_json()),
            )
        )
    async with app.run_test(size=(100, 32)) as pilot:
        app.open_monitor(record.id)
        screen = app.screen
        assert isinstance(screen, MonitorScreen)
        await wait_until(pilot, lambda: screen.record is not None)
        assert f"{words} 12,000 of 30,000 rows" in text_of(app, "#counts")
        timing = text_of(app, "#timing")
        assert "rate 1,500 rows/s" in timing and "ETA 12 s" in timing  # 18,000 rows left
        bar = screen.query_one("#progress", ProgressBar)
        assert (bar.progress, bar.total) == (12_000, 30_000)
