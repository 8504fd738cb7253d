"""Readable in a 16-colour terminal: no text may vanish when colours are reduced to the 16 ANSI ones.

Textual paints in true colour and Rich reduces each colour to the nearest one the terminal has. A
foreground and background that differ in true colour can fall onto the same ANSI colour, and the
text disappears. Each screen is rendered here, every colour reduced the way a 16-colour
terminal gets it, and every visible character checked against its background.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from rich.color import Color, ColorSystem
from rich.console import Console
from rich.style import Style
from textual.app import App, ComposeResult
from textual.screen import ModalScreen
from textual.widgets import Static

from tests.tui.conftest import settle
from tests.tui.snapshot_world import World
from tui_migrator.tui.app import MigratorApp

SIZE = (80, 24)
# The world lives at one fixed path: under xdist (--dist loadgroup) its users share one worker.
pytestmark = pytest.mark.xdist_group("snapshot_world")
# The colours a terminal shows for "default" when a style names none: light text on dark.
DEFAULT_FOREGROUND = Color.from_ansi(7)
DEFAULT_BACKGROUND = Color.from_ansi(0)


def reduced(color: Color | None, default: Color) -> int:
    """The ANSI colour number a 16-colour terminal shows for this colour."""
    chosen = (color or default).downgrade(ColorSystem.STANDARD)
    return chosen.number if chosen.number is not None else 7


def _readable(text: str) -> bool:
    """Letters, digits, signs: not blanks, and not the box-drawing and block characters that
    draw frames and bars (a frame that fades into its background loses no information)."""
    return any(not char.isspace() and not 0x2500 <= ord(char) <= 0x259F for char in text)


def unreadable_cells(app: App[Any]) -> list[str]:
    """Every character whose foreground and background become one colour on 16 colours."""
    width, height = app.size
    console = Console(
        width=width, height=height, file=io.StringIO(), force_terminal=True, color_system="truecolor"
    )
    update = app.screen._compositor.render_update(full=True, screen_stack=app._background_screens)
    # Over a dialog only the dialog counts: the screen behind it is dimmed on purpose and has
    # its own check.
    area = app.screen.children[0].region if isinstance(app.screen, ModalScreen) else app.screen.region
    problems = []
    line, column = 0, 0
    for segment in console.render(update):
        text, style = segment.text, segment.style or Style()
        if text == "\n" or segment.is_control:
            line, column = (line + 1, 0) if text == "\n" else (line, column)
            continue
        foreground, background = style.color, style.bgcolor
        if style.reverse:
            foreground, background = background, foreground
        if _readable(text) and not style.conceal:
            fg = reduced(foreground, DEFAULT_FOREGROUND)
            bg = reduced(background, DEFAULT_BACKGROUND)
            if fg == bg and area.contains(column, line):
                problems.append(f"line {line}, column {column}: {text.strip()!r} (ANSI colour {fg} on {bg})")
        column += segment.cell_length
    return problems


SCREENS: dict[str, list[str]] = {
    "dashboard": [],
    "new migration": ["n"],
    "new migration, invalid batch size": ["n", "end", "ctrl+u", "0"],
    "new migration, no backups": ["n", "tab", "tab", "tab", "tab", "space"],
    "confirm start": ["n", "ctrl+s"],
    "load config, a file that does not exist": ["n", "ctrl+o", *"nowhere.json", "enter"],
    "estimate": ["e"],
    "migrations": ["l"],
    "audit": ["a"],
    "help": ["question_mark"],
}


@pytest.mark.parametrize("screen", list(SCREENS))
async def test_every_character_stays_visible_in_16_colours(shared_world: World, screen: str) -> None:
    app = MigratorApp(shared_world.service)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        for key in SCREENS[screen]:
            await pilot.press(key)
            await settle(app, pilot)
        assert unreadable_cells(app) == []


# Every dialog, over the monitor of a migration in the state that offers it.
MONITOR_VIEWS: dict[str, tuple[str, list[str]]] = {
    "monitor, completed with failures": ("with_failures", []),
    "failed records": ("with_failures", ["f"]),
    "rollback": ("with_failures", ["r"]),
    "log view": ("with_failures", ["g"]),
    "purge backups": ("completed", ["b"]),
    "monitor, running": ("running", []),
    "cancel": ("running", ["c"]),
    "monitor, paused": ("paused", []),
    "monitor, failed": ("failed", []),
    "monitor, interrupted": ("interrupted", []),
    "resume": ("interrupted", ["u"]),
    "monitor, cancelled": ("cancelled", []),
}


@pytest.mark.parametrize("view", list(MONITOR_VIEWS))
async def test_the_monitor_and_its_dialogs_stay_visible_in_16_colours(shared_world: World, view: str) -> None:
    state, keys = MONITOR_VIEWS[view]
    app = MigratorApp(shared_world.service)
    async with app.run_test(size=SIZE) as pilot:
        app.open_monitor(getattr(shared_world, state))
        await settle(app, pilot)
        for key in keys:
            await pilot.press(key)
            await settle(app, pilot)
        assert unreadable_cells(app) == []


class _GreyOnGrey(App[None]):
    # Two blues that differ in true colour and are both ANSI blue.
    CSS = "Static { color: #0000ee; background: #0000cd; }"

    def compose(self) -> ComposeResult:
        yield Static("invisible on 16 colours")


async def test_the_check_finds_text_drawn_in_its_own_background_colour() -> None:
    app = _GreyOnGrey()
    async with app.run_test(size=(40, 3)) as pilot:
        await pilot.pause()
        problems = unreadable_cells(app)
    assert problems and "'invisible" in problems[0]
