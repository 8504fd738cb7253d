"""Waiting for a screen to hold still before its picture is taken: the snapshot tests' and the
README's screenshots' (screenshots/generate.py) one rule, so that neither catches a table before
it has measured its columns."""

from __future__ import annotations

import asyncio

from textual.pilot import Pilot
from textual.widgets import DataTable, Input


async def drained(pilot: Pilot) -> None:
    """Wait until the app and every widget of every screen in the stack handled the messages
    queued so far. Pilot's own wait covers only the top screen, but a modal's picture shows the
    screen beneath too, which repaints as it loses focus."""
    nodes = [
        pilot.app,
        *(node for screen in pilot.app.screen_stack for node in screen.walk_children(with_self=True)),
    ]
    left = 0
    all_handled = asyncio.Event()

    def handled() -> None:
        nonlocal left
        left -= 1
        if left == 0:
            all_handled.set()

    for node in nodes:
        if node.call_later(handled):
            left += 1
    if left:
        await asyncio.wait_for(all_handled.wait(), timeout=30)


async def settled(pilot: Pilot) -> None:
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    # A DataTable measures its columns when its app is idle, and repaints its header after: on a
    # loaded machine the picture was once taken between the two (rows laid out wide, the header
    # still narrow). Wait until no table has measuring left, then for the repaint.
    for _ in range(100):
        tables = pilot.app.screen.query(DataTable)
        if not any(table._require_update_dimensions or table._updated_cells for table in tables):
            break
        await pilot.pause(0.02)
    await pilot.wait_for_scheduled_animations()
    await pilot.pause()
    # A table's header was still seen drawn with the column widths of before its rows were
    # measured, its rows with the new ones, in a picture the screen gave twice in a row (2 runs
    # of the monitor's snapshots in 16 beside two busy processes): every header is drawn afresh.
    for table in pilot.app.screen.query(DataTable):
        if table.show_header:
            table.show_header = False
            table.show_header = True
    # And until the screen renders the same twice in a row: the check above once passed with a
    # table's header still to be repainted narrow→wide (CI, a busy machine), so the picture is
    # taken only once nothing is left to repaint.
    # Animations are waited for on every round: a focus change scrolls its panel with an
    # animation that may start only after the first wait above, and a picture taken mid-scroll
    # (CI: the form's scrollbar a fraction of a cell short of its resting place) can repeat
    # itself when a busy machine starves the animator's timer between two pictures.
    previous = None
    for _ in range(50):
        await drained(pilot)
        await pilot.wait_for_scheduled_animations()
        current = pilot.app.export_screenshot()
        if current == previous:
            break
        previous = current
        await pilot.pause(0.05)


def steady_cursors(pilot: Pilot) -> None:
    """Stop every input's cursor blinking, which leaves it shown.

    A blinking cursor is on or off depending on how long the steps took, so the same screen
    would compare equal on one run and not on the next (a test run alone is faster than in
    its file). The accepted images show it on, as an operator sees it right after typing.
    """
    for field in pilot.app.screen.query(Input):
        field.cursor_blink = False
