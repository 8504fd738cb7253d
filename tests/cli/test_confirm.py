"""The one confirmation prompt: refused without a terminal, and a slip of "y" cannot replace a
database."""

from __future__ import annotations

import io

import pytest

from tui_migrator.cli.confirm import confirm
from tui_migrator.common.errors import BadInput


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def answering(monkeypatch: pytest.MonkeyPatch, answer: str) -> list[str]:
    asked: list[str] = []
    monkeypatch.setattr("sys.stdin", Terminal())
    monkeypatch.setattr("builtins.input", lambda prompt: asked.append(prompt) or answer)
    return asked


def test_without_a_terminal_nobody_can_confirm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("yes\n"))
    with pytest.raises(BadInput, match="Refused without confirmation") as refused:
        confirm("Start?", nothing_done="nothing was started")
    assert refused.value.hint == "Add --yes to confirm."


@pytest.mark.parametrize("answer", ["y", "YES ", "yes"])
def test_y_or_yes_confirms(monkeypatch: pytest.MonkeyPatch, answer: str) -> None:
    asked = answering(monkeypatch, answer)
    confirm("Start?", nothing_done="nothing was started")
    assert asked == ["Start? [y/N] "]


def test_anything_else_is_a_no_saying_what_was_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    answering(monkeypatch, "")
    with pytest.raises(BadInput, match=r"^Not confirmed; nothing was started\.$"):
        confirm("Start?", nothing_done="nothing was started")


def test_replacing_a_database_needs_the_whole_word(monkeypatch: pytest.MonkeyPatch) -> None:
    asked = answering(monkeypatch, "y")
    with pytest.raises(BadInput, match="nothing was changed"):
        confirm("Replace?", nothing_done="nothing was changed", type_yes=True)
    assert asked == ["Replace? Type 'yes' to continue: "]
    answering(monkeypatch, "yes")
    confirm("Replace?", nothing_done="nothing was changed", type_yes=True)
