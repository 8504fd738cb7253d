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
from pathlib import Path

import pytest

from tests.support.tmux import APP, TMUX, Terminal, clean_environment, run_cli, terminal

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


def _paused_migration(environment: dict[str, str]) -> str:
    """A detached migration, paused before it can finish: batches of one record."""
    started = run_cli(
        environment, "start", "--batch-size", "1", "--max-concurrency", "1", "--yes", "--detach", "--json"
    )
    assert started.returncode == 0, started.stderr
    migration_id = str(json.loads(started.stdout)["data"]["migrationId"])
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
    environment = _demo(tmp_path)
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
    environment = _demo(tmp_path)
    migration_id = _paused_migration(environment)
    with terminal(APP, environment) as window:
        _open_monitor_of_newest(window, migration_id)
        window.press("c")
        window.wait_for("Reason (required)")
        window.press("Enter")
        window.wait_for("Give a reason")
        assert "Reason (required)" in window.screen()
    assert _status(environment, migration_id)["status"] == "paused"


def test_resume_from_the_monitor_finishes_a_cancelled_migration(tmp_path: Path) -> None:
    environment = _demo(tmp_path, patients=12)
    migration_id = _paused_migration(environment)
    cancelled = run_cli(environment, "cancel", migration_id, "--reason", "night shift", "--json")
    assert cancelled.returncode == 0, cancelled.stderr
    with terminal(APP, environment) as window:
        _open_monitor_of_newest(window, migration_id)
        window.wait_for("CANCELLED", "resume with u")
        window.press("u")
        window.wait_for("Resume " + migration_id)
        window.press("Enter")
        window.wait_for("COMPLETED", timeout=120)
    assert _status(environment, migration_id)["status"] == "completed"
