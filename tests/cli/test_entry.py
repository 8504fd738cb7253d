"""The process's entry point (the ``tui-migrator`` script, ``python -m tui_migrator``): main's
exit code, with the garbage collector's objects frozen first, so the interpreter's last
collections do not walk everything the command left (tests/cli/test_exit_codes.py runs the real
``python -m tui_migrator`` for its exit codes)."""

from __future__ import annotations

import gc

import pytest

from tui_migrator.cli import main as cli_main


def test_the_entry_point_freezes_the_collector_after_main_then_exits_with_its_code(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    events: list[str] = []

    def main() -> int:
        events.append("main")
        return 3

    monkeypatch.setattr(cli_main, "main", main)
    monkeypatch.setattr(gc, "freeze", lambda: events.append("freeze"))
    with pytest.raises(SystemExit) as exited:
        cli_main.entry()
    assert exited.value.code == 3
    assert events == ["main", "freeze"]
