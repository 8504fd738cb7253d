"""The program's first step (cli/launch.py): for a ``start`` run here with worker processes, the
fork server they come from is started before the command line is read and run, so its imports
overlap the program's own and not the start's calibration sample (whose estimate they made
short); for every other command, nothing is started."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tui_migrator.cli import launch
from tui_migrator.cli import main as cli_main
from tui_migrator.engine import process_server


@pytest.mark.parametrize(
    "arguments",
    [
        ["start", "--yes"],
        ["--db", "sqlite:///x.db", "--json", "start", "--batch-size", "1000", "--max-concurrency", "4"],
        ["start", "--max-concurrency", "2", "--dry-run"],
        ["start", "--max-concurrency=3"],
    ],
)
def test_a_start_run_here_starts_the_fork_server_first(arguments: list[str]) -> None:
    assert launch.starts_a_run_here(arguments)


@pytest.mark.parametrize(
    "arguments",
    [
        [],
        ["status", "m1"],
        ["estimate", "--max-concurrency", "4"],
        ["resume", "m1"],
        ["start", "--detach"],
        ["start", "--help"],
        ["start", "-h"],
        ["start", "--max-concurrency", "1"],
        ["start", "--max-concurrency=1"],
        ["--json", "start", "--batch-size", "500", "--max-concurrency", "1", "--yes"],
    ],
)
def test_other_commands_start_nothing(arguments: list[str]) -> None:
    assert not launch.starts_a_run_here(arguments)


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        # A start: the server first, then the command line is read and run.
        (["--json", "start", "--yes"], ["server", "command"]),
        # Any other command goes straight to the command line.
        (["--json", "status", "m1"], ["command"]),
    ],
)
def test_the_server_is_started_before_the_command_line_is_read(
    monkeypatch: pytest.MonkeyPatch, arguments: list[str], expected: list[str]
) -> None:
    events: list[str] = []
    monkeypatch.setattr(sys, "argv", ["tui-migrator", *arguments])
    monkeypatch.setattr(process_server, "start", lambda: events.append("server"))
    monkeypatch.setattr(cli_main, "entry", lambda: events.append("command"))
    launch.entry()
    assert events == expected


def test_the_launcher_imports_nothing_heavy_before_the_server_starts() -> None:
    """What makes the early start worth it: importing the launcher (and the server's module)
    does not import the CLI, the service or SQLAlchemy, whose imports the server's overlap."""
    code = (
        "import sys; import tui_migrator.cli.launch; "
        "heavy = [m for m in ('sqlalchemy', 'tui_migrator.cli.main', 'tui_migrator.service.facade', "
        "'tui_migrator.engine.cpu_pool', 'cryptography') if m in sys.modules]; print(heavy)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
