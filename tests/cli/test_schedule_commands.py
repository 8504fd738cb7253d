"""start/estimate/status with a maintenance window and a scheduled start, through the CLI."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from tests.support.cli import run, text_of
from tests.support.databases import BOTH_BACKENDS
from tests.support.migration_helpers import raw_dump
from tui_migrator.common.settings import Settings
from tui_migrator.engine import control

pytestmark = BOTH_BACKENDS


@pytest.mark.parametrize(
    ("options", "named"),
    [
        (["--window", "25:00-03:00"], "25:00 is not a time of day"),
        (["--window", "01:00"], "HH:MM-HH:MM"),
        (["--window", "01:00-01:00"], "needs a length"),
        (
            ["--window", "01:00-05:00", "--timezone", "Mars/Olympus"],
            "'Mars/Olympus' is not a known time zone",
        ),
        (["--not-before", "christmas"], "--not-before"),
    ],
)
def test_a_bad_window_or_an_unknown_zone_is_refused_with_exit_2_and_nothing_written(
    settings: Settings,
    engine: sa.Engine,
    capsys: pytest.CaptureFixture[str],
    options: list[str],
    named: str,
) -> None:
    before = raw_dump(engine)
    code, payload = run(settings, capsys, "start", "--yes", *options)
    assert code == 2, payload
    assert payload["errorCode"] == "invalid_config"
    assert named in payload["error"]
    assert raw_dump(engine) == before
    code, listed = run(settings, capsys, "list")
    assert listed["data"]["summary"]["total"] == 0


def test_estimate_says_how_many_windows_the_migration_needs(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    code, payload = run(
        settings, capsys, "estimate", "--window", "01:00-01:01", "--timezone", "Europe/Berlin"
    )
    assert code == 0, payload
    data = payload["data"]
    assert data["estimatedWindows"] == math.ceil(data["estimatedTimeSeconds"] / 60)
    assert data["config"]["window"] == "01:00-01:01" and data["config"]["timezone"] == "Europe/Berlin"
    plain = text_of(settings, capsys, "estimate", "--window", "01:00-05:00")
    assert "Maintenance windows" in plain and "1 of 01:00-05:00" in plain
    code, unscheduled = run(settings, capsys, "estimate")
    assert unscheduled["data"]["estimatedWindows"] is None and "window" not in unscheduled["data"]["config"]


def test_status_shows_the_window_whether_it_is_open_and_the_next_opening(
    settings: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # 02:30 in Berlin (CEST): inside the window, so the run goes through at once.
    monkeypatch.setattr(control, "wall_clock", lambda: datetime(2026, 6, 2, 0, 30, tzinfo=UTC))
    code, payload = run(
        settings, capsys, "start", "--yes", "--batch-size", "40", "--window", "1:00-5:00",
        "--timezone", "Europe/Berlin",
    )  # fmt: skip
    assert code == 0, payload
    migration_id = payload["data"]["migrationId"]
    code, status = run(settings, capsys, "status", migration_id)
    schedule = status["data"]["schedule"]
    assert schedule == {
        "window": "01:00-05:00",
        "timezone": "Europe/Berlin",
        "windowOpen": True,
        "nextOpening": "2026-06-02T00:30:00Z",
        "closesAt": "2026-06-02T03:00:00Z",
        "notBefore": None,
        "runsFrom": "2026-06-02T00:30:00Z",
    }
    text = text_of(settings, capsys, "status", migration_id)
    assert "Schedule: window 01:00-05:00 Europe/Berlin, open; closes 2026-06-02 05:00+02:00" in text
