"""The real app in a real terminal (tmux): a migration completed with keys only."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

TMUX = shutil.which("tmux")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        TMUX is None and not os.environ.get("CI"), reason="tmux is not installed (CI installs it)"
    ),
]


def capture(session: str) -> str:
    return subprocess.run([TMUX, "capture-pane", "-p", "-t", session], capture_output=True, text=True).stdout  # type: ignore[list-item]


def wait_for_text(session: str, text: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = capture(session)
        if text in screen:
            return screen
        time.sleep(0.3)
    raise AssertionError(f"{text!r} did not appear; the screen was:\n{screen}")


def test_new_start_confirm_and_watch_it_complete_in_tmux(tmp_path: Path) -> None:
    data = tmp_path / "data"
    environment = {**os.environ, "TUI_MIGRATOR_DATA_DIR": str(data), "TERM": "xterm-256color"}
    subprocess.run(
        [sys.executable, "-m", "tui_migrator", "demo", "--patients", "60", "--organizations", "2", "--yes"],
        env=environment,
        check=True,
        capture_output=True,
    )
    session = f"tm-{uuid.uuid4().hex[:8]}"
    command = f"{sys.executable} -m tui_migrator"
    subprocess.run(
        [
            TMUX,
            "new-session",
            "-d",
            "-s",
            session,
            "-x",
            "100",
            "-y",
            "30",
            *[f"-e{k}={v}" for k, v in environment.items() if k.startswith(("TUI_MIGRATOR_", "TERM"))],
            command,
        ],  # type: ignore[list-item]
        check=True,
    )
    try:
        wait_for_text(session, "System health", timeout=30)
        subprocess.run([TMUX, "send-keys", "-t", session, "n"], check=True)  # type: ignore[list-item]
        wait_for_text(session, "DEMOGRAPHICS", timeout=30)
        time.sleep(1.0)  # the record counts arrive from a worker
        subprocess.run([TMUX, "send-keys", "-t", session, "C-s"], check=True)  # type: ignore[list-item]
        wait_for_text(session, "Start", timeout=15)
        time.sleep(1.0)
        subprocess.run([TMUX, "send-keys", "-t", session, "Enter"], check=True)  # type: ignore[list-item]
        screen = wait_for_text(session, "COMPLETED", timeout=90)
        assert "migration_" in screen
        subprocess.run([TMUX, "send-keys", "-t", session, "q"], check=True)  # type: ignore[list-item]
    finally:
        subprocess.run([TMUX, "kill-session", "-t", session], capture_output=True)  # type: ignore[list-item]


def test_the_app_stops_when_the_terminal_hangs_up(tmp_path: Path) -> None:
    environment = {**os.environ, "TUI_MIGRATOR_DATA_DIR": str(tmp_path / "data"), "TERM": "xterm-256color"}
    subprocess.run(
        [sys.executable, "-m", "tui_migrator", "demo", "--patients", "20", "--organizations", "2", "--yes"],
        env=environment,
        check=True,
        capture_output=True,
    )
    session = f"tm-{uuid.uuid4().hex[:8]}"
    pid_file = tmp_path / "app.pid"
    command = f"echo $$ > {pid_file}; exec {sys.executable} -m tui_migrator"
    subprocess.run(
        [
            TMUX,
            "new-session",
            "-d",
            "-s",
            session,
            "-x",
            "80",
            "-y",
            "24",  # type: ignore[list-item]
            *[f"-e{k}={v}" for k, v in environment.items() if k.startswith(("TUI_MIGRATOR_", "TERM"))],
            command,
        ],
        check=True,
    )
    wait_for_text(session, "System health", timeout=30)
    pid = int(pid_file.read_text())
    subprocess.run([TMUX, "kill-session", "-t", session], check=True)  # type: ignore[list-item]  # SIGHUP
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    raise AssertionError("the app was still running 10 s after its terminal hung up")
