"""The words a snapshot mismatch fails with (tests/tui/snapshot_text.py), on an accepted picture."""

from __future__ import annotations

from pathlib import Path

from tests.tui.snapshot_text import described_difference, screen_lines

ACCEPTED = (Path(__file__).parent / "__snapshots__" / "test_snapshots" / "test_help.svg").read_text()


def test_the_screen_is_read_back_as_its_lines_of_text() -> None:
    lines, _colours = screen_lines(ACCEPTED)

    assert len(lines) == 24
    assert lines[4] == "│ Running:█ Keys on this screen" + " " * 38 + "█ance     │"
    assert lines[23] == "r Refresh n New l Migrations ? Help q Quit"


def test_a_changed_word_is_shown_as_a_diff_of_the_lines() -> None:
    taken = ACCEPTED.replace("&#160;Refresh&#160;", "&#160;Reload&#160;&#160;", 1)

    said = described_difference(ACCEPTED, taken)

    assert said.startswith("The screen's text differs:")
    assert "\n-│ Backups:█  r       Refresh " in said
    assert "\n+│ Backups:█  r       Reload  " in said


def test_a_changed_colour_names_its_line() -> None:
    taken = ACCEPTED.replace('<rect fill="#2d3740"', '<rect fill="#000000"', 1)

    said = described_difference(ACCEPTED, taken)

    assert said.startswith("Same text; colours differ on 1 line(s):")
    assert "line 5: │ Encrypti█  key     action" in said


def test_the_same_picture_is_said_to_differ_elsewhere() -> None:
    assert described_difference(ACCEPTED, ACCEPTED).startswith("Same text and colours")
