"""The real app in a real terminal (tmux): a migration completed with keys only, and a hang-up."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.support.tmux import APP, TMUX, clean_environment, run_cli, terminal

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        TMUX is None and not os.environ.get("CI"), reason="tmux is not installed (CI installs it)"
    ),
]


def test_new_start_confirm_and_watch_it_complete_in_tmux(tmp_path: Path) -> None:
    environment = clean_environment(tmp_path / "data")
    made = run_cli(environment, "demo", "--patients", "60", "--organizations", "2", "--yes")
    assert made.returncode == 0, made.stderr
    with terminal(APP, environment, width=100, height=30) as window:
        window.wait_for("System health")
        window.press("n")
        window.wait_for("DEMOGRAPHICS", "records to encrypt")
        window.press("C-s")
        window.wait_for("enter starts", "Estimated time")
        window.press("Enter")
        screen = window.wait_for("COMPLETED", timeout=90)
        assert "migration_" in screen


def test_the_app_stops_when_the_terminal_hangs_up(tmp_path: Path) -> None:
    environment = clean_environment(tmp_path / "data")
    made = run_cli(environment, "demo", "--patients", "20", "--organizations", "2", "--yes")
    assert made.returncode == 0, made.stderr
    pid_file = tmp_path / "app.pid"
    with terminal(f"echo $$ > {pid_file}; exec {APP}", environment) as window:
        window.wait_for("System health")
        pid = int(pid_file.read_text())
        window._tmux("kill-session", "-t", window.session)  # the terminal goes: SIGHUP
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    raise AssertionError("the app was still running 10 s after its terminal hung up")


def test_a_variable_of_the_developers_environment_never_reaches_the_app(tmp_path: Path) -> None:
    # A master key in the environment of whoever runs the tests would open (or create) the
    # test's database with it; the terminal's environment is built from nothing instead.
    os.environ["TUI_MIGRATOR_LEAK_PROBE"] = "leaked"
    try:
        environment = clean_environment(tmp_path / "data")
        with terminal("env; sleep 30", environment) as window:
            screen = window.wait_for("TUI_MIGRATOR_DATA_DIR")
    finally:
        del os.environ["TUI_MIGRATOR_LEAK_PROBE"]
    assert "TUI_MIGRATOR_LEAK_PROBE" not in screen


def test_the_first_run_asks_before_creating_the_demo_database(tmp_path: Path) -> None:
    """./run's demo path: with nothing set up the app asks; n creates nothing, y creates the demo
    database and opens the dashboard on it."""
    data_dir = tmp_path / "data"
    environment = clean_environment(data_dir)
    with terminal(f"{APP}; echo EXIT=$?; sleep 60", environment, width=100, height=30) as window:
        window.wait_for("No demo database yet", "Set it up")
        window.press("n")
        screen = window.wait_for("EXIT=2")
        assert "There is no demo database" in screen and "tui-migrator init" in screen
    assert not data_dir.exists()
    with terminal(APP, environment, width=100, height=30) as window:
        window.wait_for("No demo database yet")
        window.press("y")
        window.wait_for("System health", timeout=120)
    assert (data_dir / "tui-migrator.db").exists()
    assert oct((data_dir / "master.key").stat().st_mode & 0o777) == "0o600"
