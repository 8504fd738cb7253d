"""Showing fresh rows in a table a screen refreshes, writing only what changed.

The dashboard, the migrations list, the keys screen and the monitor read their rows again every
second or few; the audit screen on each reload, and filters them at each keystroke. Cleared and
filled anew each time, a table measured its columns again (its header repainted narrow, then
wide: a snapshot once caught it between the two), lost the operator's scroll position and put
the cursor back by index, on whichever row had moved there. Here a refresh that finds the same
rows writes nothing, a changed value changes its cell where it is, and only a change in which
rows there are, or in their order, fills the table anew — with the cursor on the row it was on,
where that row is still shown.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from textual.widgets import DataTable

# A row as a screen gives it: its key (unique in the table) and its cells, one per column.
TableRow = tuple[str, Sequence[Any]]


def show_rows(table: DataTable[Any], rows: Sequence[TableRow]) -> None:
    """Make ``table`` show ``rows``, in their order, writing only what differs from what it shows."""
    keys = [key for key, _cells in rows]
    if keys == [row.key.value for row in table.ordered_rows]:
        columns = [column.key for column in table.ordered_columns]
        for key, cells in rows:
            for column, old, new in zip(columns, table.get_row(key), cells, strict=True):
                if old != new:
                    table.update_cell(key, column, new, update_width=True)
        return
    cursor = table.cursor_row
    selected = table.ordered_rows[cursor].key.value if 0 <= cursor < table.row_count else None
    table.clear()
    for key, cells in rows:
        table.add_row(*cells, key=key)
    if not rows:
        return
    table.move_cursor(row=keys.index(selected) if selected in keys else min(cursor, len(rows) - 1))
