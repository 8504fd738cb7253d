"""Running the CLI in-process against a test's database."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tui_migrator.cli.main import main
from tui_migrator.common.settings import Settings


def where(settings: Settings) -> list[str]:
    """The options that point the CLI at the test's database and data dir."""
    return ["--db", settings.effective_database_url, "--data-dir", str(settings.data_dir)]


def run(settings: Settings, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    """The CLI in-process with --json: its exit code and the one JSON object it printed."""
    code = main([*argv, "--json", *where(settings)])
    return code, json.loads(capsys.readouterr().out)


def text_of(settings: Settings, capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """The CLI's text output (no --json), its exit code 0, with its lines joined by single
    spaces so that the terminal's wrapping does not matter."""
    assert main([*argv, *where(settings)]) == 0
    return " ".join(capsys.readouterr().out.split())
