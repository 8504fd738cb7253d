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
