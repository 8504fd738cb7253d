"""The operator's night, in a real terminal at 80×24: each test is one of the things that hurt
most when the app was tried as an operator would (cancel, resume, rollback, navigation, …),
driven by keys only, on a tmux server and environment of the test's own (tests/support/tmux.py).

A migration that must still be running when the keys arrive is started from the CLI with
batches of one record and paused at once: it waits at its first batch boundary, alive and
cancellable, whatever the machine's speed.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.support.tmux import APP, TMUX, Terminal, clean_environment, run_cli, terminal
from tui_migrator.storage import rollback_progress
from tui_migrator.storage.migration_records import PhaseProgress
from tui_migrator.storage.tables import migrations_table, utc_now

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        TMUX is None and not os.environ.get("CI"), reason="tmux is not installed (CI installs it)"
    ),
]


def _demo(tmp_path: Path, patients: int = 40) -> dict[str, str]:
    environment = clean_environment(tmp_path / "data")
    made = run_cli(environment, "demo", "--patients", str(patients), "--organizations", "2", "--yes")
    assert made.returncode == 0, made.stderr
    return environment


# Detached workers a test started, stopped after it (a paused worker would wait for ever).
_STARTED: list[tuple[dict[str, str], str]] = []


@pytest.fixture(autouse=True)
def _stop_started_workers() -> Iterator[None]:
    yield
    while _STARTED:
        environment, migration_id = _STARTED.pop()
        run_cli(environment, "cancel", migration_id, "--reason", "test over")


# Thousands of records: at one record a batch a worker takes tens of seconds over them.
PAUSABLE_PATIENTS = 400


def _paused_migration(environment: dict[str, str]) -> str:
    """A detached migration, paused before it can finish: batches of one record, on a demo of
    PAUSABLE_PATIENTS. `start --detach` returns once its worker has claimed the migration, so
    the pause finds it running, and it is written within the worker's first seconds, long before
    it could finish, whatever the machine's load."""
    started = run_cli(
        environment, "start", "--batch-size", "1", "--max-concurrency", "1", "--yes", "--detach", "--json"
    )
    assert started.returncode == 0, started.stderr
    migration_id = str(json.loads(started.stdout)["data"]["migrationId"])
    _STARTED.append((environment, migration_id))
    paused = run_cli(environment, "pause", migration_id, "--json")
    assert paused.returncode == 0, paused.stderr
    return migration_id


def _status(environment: dict[str, str], migration_id: str) -> dict[str, object]:
    shown = run_cli(environment, "status", migration_id, "--json")
    assert shown.returncode == 0, shown.stderr
    data: dict[str, object] = json.loads(shown.stdout)["data"]
    return data


def _open_monitor_of_newest(window: Terminal, migration_id: str) -> str:
    window.wait_for("System health")
    window.press("l")
    window.wait_for("Status: all", migration_id)
    window.press("Enter")
    return window.wait_for("Workflow", f"{migration_id} —")


def test_a_typed_reason_cancels_the_running_migration(tmp_path: Path) -> None:
    environment = _demo(tmp_path, patients=PAUSABLE_PATIENTS)
    migration_id = _paused_migration(environment)
    with terminal(APP, environment) as window:
        _open_monitor_of_newest(window, migration_id)
        window.wait_for("PAUSED")
        window.press("c")
        window.wait_for("Reason (required)")
        window.type("Emergency maintenance")
        window.press("Enter")
        window.wait_for("CANCELLED", timeout=60)
    status = _status(environment, migration_id)
    assert status["status"] == "cancelled"
    assert status["cancellation"]["reason"] == "Emergency maintenance"  # type: ignore[index]


def test_an_empty_reason_keeps_the_dialog_open_and_the_migration_running(tmp_path: Path) -> None:
    environment = _demo(tmp_path, patients=PAUSABLE_PATIENTS)
    migration_id = _paused_migration(environment)
    with terminal(APP, environment) as window:
        _open_monitor_of_newest(window, migration_id)
        window.press("c")
        window.wait_for("Reason (required)")
        window.press("Enter")
        window.wait_for("Give a reason")
        assert "Reason (required)" in window.screen()
    assert _status(environment, migration_id)["status"] == "paused"


def test_resume_from_the_monitor_continues_a_cancelled_migration(tmp_path: Path) -> None:
    environment = _demo(tmp_path, patients=PAUSABLE_PATIENTS)
    migration_id = _paused_migration(environment)
    cancelled = run_cli(environment, "cancel", migration_id, "--reason", "night shift", "--json")
    assert cancelled.returncode == 0, cancelled.stderr
    with terminal(APP, environment) as window:
        _open_monitor_of_newest(window, migration_id)
        window.wait_for("CANCELLED", "resume with u")
        window.press("u")
        window.wait_for("Resume " + migration_id)
        window.press("Enter")
        # A worker moves it again (stopped by the fixture; tests/tui/test_monitor.py and the
        # engine tests see resumed migrations through to the end).
        window.wait_for("RUNNING", timeout=60)
    assert _status(environment, migration_id)["status"] in ("running", "completed")


def _completed_migration(environment: dict[str, str]) -> str:
    started = run_cli(environment, "start", "--yes", "--json")
    assert started.returncode == 0, started.stderr
    return str(json.loads(started.stdout)["data"]["migrationId"])


def test_rollback_runs_outside_the_app_and_the_monitor_shows_it_to_the_end(tmp_path: Path) -> None:
    environment = _demo(tmp_path)
    migration_id = _completed_migration(environment)
    with terminal(APP, environment) as window:
        _open_monitor_of_newest(window, migration_id)
        window.wait_for("COMPLETED")
        window.press("r")
        window.wait_for(f"Type {migration_id} to confirm")
        window.type(migration_id)
        window.press("Enter")
        screen = window.wait_for("ROLLED BACK", "rows restored", timeout=90)
        assert "rolled back: 350 rows restored" in screen, screen
        # The rollback ran in a process of its own: the app quits at once, whatever it did.
        window.press("q")
        window.wait_until_ended(timeout=10)
    status = _status(environment, migration_id)
    assert status["status"] == "rolled_back"
    assert status["rollback"]["restoredRows"] == 350  # type: ignore[index]


def test_a_rollback_under_way_elsewhere_is_shown_with_its_progress_and_blocks_the_keys(
    tmp_path: Path,
) -> None:
    environment = _demo(tmp_path)
    migration_id = _completed_migration(environment)
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'data' / 'tui-migrator.db'}")
    under_way = replace(rollback_progress.starting(350, 8), restored_rows=120, table="motor_symptoms")
    with terminal(APP, environment) as window:
        # Written just before the monitor opens: its heartbeat stays fresh while the test looks.
        rollback_progress.write(engine, migration_id, under_way)
        screen = _open_monitor_of_newest(window, migration_id)
        screen = window.wait_for("ROLLING BACK", "restoring 120 of 350 rows")
        assert "table motor_symptoms" in screen
        footer = screen.strip().splitlines()[-1]
        for key in ("c Cancel", "r Roll back", "u Resume"):
            assert key not in footer, footer
        window.press("r")  # hidden and disabled: nothing opens
        window.press("u")
        assert "to confirm" not in window.screen() and "Resume " + migration_id + "?" not in window.screen()
    engine.dispose()


def test_esc_goes_back_and_the_top_level_keys_open_their_screen_not_the_last_monitor(
    tmp_path: Path,
) -> None:
    environment = _demo(tmp_path, patients=12)
    with terminal(APP, environment) as window:
        window.wait_for("System health")
        window.press("n")
        window.wait_for("DEMOGRAPHICS", "records to encrypt")
        window.press("C-s")
        window.wait_for("enter starts", "Estimated time")
        window.press("Enter")
        window.wait_for("Workflow", "COMPLETED", timeout=90)
        window.press("Escape")  # back to the form it was started from, no field focused
        window.wait_for("Settings", "Scope")
        window.press("l")  # a key, not a letter typed into the batch size
        window.wait_for("Status: all", "completed")
        window.press("Enter")
        window.wait_for("Workflow")
        window.press("n")  # the form, not the monitor left on top of it
        window.wait_for("Settings", "Scope")
        window.press("l")
        screen = window.wait_for("Status: all")
        assert "Workflow" not in screen
        window.press("Escape")  # from the list, one step back: the form
        window.wait_for("Settings", "Scope")


def test_the_footer_offers_only_keys_that_work_and_help_lists_each_once(tmp_path: Path) -> None:
    environment = _demo(tmp_path, patients=12)
    migration_id = _completed_migration(environment)
    with terminal(APP, environment, width=120, height=40) as window:
        _open_monitor_of_newest(window, migration_id)
        footer = window.wait_for("COMPLETED", "r Roll back").strip().splitlines()[-1]
        assert "Cancel" not in footer and "Pause" not in footer, footer
        assert "Roll back" in footer
        window.press("?")
        help_screen = window.wait_for("Keys on this screen")
        # One row per binding, with all its keys (Textual splits "?,f1" into two bindings).
        assert help_screen.count("? / F1") == 1, help_screen
        assert help_screen.count("l / F5") == 1, help_screen
        assert "Cancel" not in help_screen


def test_quitting_says_what_keeps_running_and_how_to_come_back(tmp_path: Path) -> None:
    environment = _demo(tmp_path, patients=PAUSABLE_PATIENTS)
    migration_id = _paused_migration(environment)
    # The shell stays after the app, so what the app printed on leaving can be read.
    with terminal(f"{APP}; sleep 60", environment) as window:
        window.wait_for("System health")
        window.press("q")
        screen = window.wait_for("Still running in background workers")
        assert f"{migration_id}: paused" in screen
        assert "press l" in screen
    assert _status(environment, migration_id)["status"] == "paused"


def test_at_80x24_the_list_and_the_dashboard_show_id_status_and_start_time_whole(tmp_path: Path) -> None:
    environment = _demo(tmp_path, patients=12)
    migration_id = _completed_migration(environment)
    dry = run_cli(environment, "start", "--dry-run", "--yes", "--json")
    assert dry.returncode == 0, dry.stderr
    with terminal(APP, environment) as window:
        dashboard = window.wait_for("System health", migration_id)
        window.press("l")
        listed = window.wait_for("Status: all", migration_id)
    started = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d")
    for screen in (dashboard, listed):
        row = next(line for line in screen.splitlines() if migration_id in line)
        assert "completed" in row and started.search(row), row
        dry_row = next(line for line in screen.splitlines() if "(dry run)" in line)
        assert started.search(dry_row), dry_row


def _database(tmp_path: Path) -> sa.Engine:
    return sa.create_engine(f"sqlite:///{tmp_path / 'data' / 'tui-migrator.db'}")


def test_the_dashboard_follows_a_migration_started_elsewhere_and_the_form_counts_the_selection(
    tmp_path: Path,
) -> None:
    environment = _demo(tmp_path, patients=12)
    with terminal(APP, environment) as window:
        window.wait_for("No migrations yet")
        migration_id = _completed_migration(environment)  # another terminal, another process
        # No key pressed: the dashboard reads again by itself, and the empty line goes.
        screen = window.wait_for(migration_id, timeout=30)
        assert "No migrations yet" not in screen
        window.press("n")
        # Not the whole database's count: what is still to encrypt, and what already is.
        # (That the total follows a selection: tests/tui/test_new_migration.py.)
        window.wait_for("0 records to encrypt in this", "98 already encrypted", "[ ] 0 DEMOGRAPHICS")


def test_the_backup_phase_shows_rows_rate_and_eta_not_a_dead_zero(tmp_path: Path) -> None:
    environment = _demo(tmp_path, patients=12)
    migration_id = _completed_migration(environment)
    engine = _database(tmp_path)
    now = utc_now()
    backing_up = PhaseProgress("backup", done=1200, total=3000, rate_per_second=400.0, at=now)
    # A worker in the backup phase, as its record says (written here: the real one is too quick
    # on a small demo to be watched; tests/engine/test_phase_progress.py proves the writes).
    with engine.begin() as connection:
        connection.execute(
            sa.update(migrations_table)
            .where(migrations_table.c.id == migration_id)
            .values(
                status="running",
                phase="backup",
                completed_at=None,
                heartbeat_at=now,
                phase_progress=json.dumps(backing_up.to_json()),
            )
        )
    with terminal(APP, environment) as window:
        _open_monitor_of_newest(window, migration_id)
        screen = window.wait_for("backing up 1,200 of 3,000 rows")
        assert "400 rows/s" in screen and "ETA 4 s" in screen, screen
    engine.dispose()


def test_an_error_stays_in_plain_words_until_dismissed_and_the_log_view_shows_it(tmp_path: Path) -> None:
    environment = _demo(tmp_path, patients=12)
    migration_id = _completed_migration(environment)
    with terminal(APP, environment) as window:
        _open_monitor_of_newest(window, migration_id)
        window.wait_for("COMPLETED")
        # The operator's role is taken away while the monitor reads: every read is refused.
        assert run_cli(environment, "operators", "grant", "alice", "super_admin").returncode == 0
        assert run_cli(environment, "operators", "revoke", "root").returncode == 0
        window.wait_for("has no role in this", "Press x or click to dismiss")
        # Still there after a Textual toast would have gone (5 s), with no key pressed.
        time.sleep(7)
        assert "Press x or click to dismiss" in window.screen(), window.screen()
        window.press("x")
        window.wait_until_gone("Press x or click to dismiss", timeout=10)
        window.press("g")
        window.wait_for("Recent errors", "Worker log")
