"""table_rows.show_rows, the one way a screen refreshed on a timer shows its rows: what is shown
already is not written again, a changed value changes its cell in place, and a change in which
rows there are (or their order) fills the table anew with the cursor still on its row."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import pytest
from rich.text import Text
from textual.app import App, ComposeResult
from textual.widgets import DataTable

from tui_migrator.tui.table_rows import TableRow, show_rows

ROWS: list[TableRow] = [
    ("m1", ("m1", Text("running"), "10/93")),
    ("m2", ("m2", Text("paused"), "5/40")),
    ("m3", ("m3", Text("completed"), "12/12")),
]


class _TableApp(App[None]):
    def compose(self) -> ComposeResult:
        yield DataTable(cursor_type="row")

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns("id", "status", "progress")


@asynccontextmanager
async def table_showing(rows: Sequence[TableRow]) -> AsyncIterator[DataTable[Any]]:
    """A running app's table, ``rows`` shown in it."""
    app = _TableApp()
    async with app.run_test():
        table = app.query_one(DataTable)
        show_rows(table, rows)
        yield table


def shown(table: DataTable[Any]) -> list[list[str]]:
    return [[str(cell) for cell in row] for row in (table.get_row_at(i) for i in range(table.row_count))]


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every clear and cell update any DataTable makes, in order."""
    seen: list[str] = []
    clear, update_cell = DataTable.clear, DataTable.update_cell

    def counted_clear(table: DataTable[Any], columns: bool = False) -> DataTable[Any]:
        seen.append("clear")
        return clear(table, columns)

    def counted_update(table: DataTable[Any], row: Any, column: Any, value: Any, **options: Any) -> None:
        seen.append(f"update {row}")
        update_cell(table, row, column, value, **options)

    monkeypatch.setattr(DataTable, "clear", counted_clear)
    monkeypatch.setattr(DataTable, "update_cell", counted_update)
    return seen


async def test_the_same_rows_again_write_nothing(writes: list[str]) -> None:
    async with table_showing(ROWS) as table:
        writes.clear()

        show_rows(table, [(key, list(cells)) for key, cells in ROWS])

        assert writes == []
        assert shown(table) == [
            ["m1", "running", "10/93"],
            ["m2", "paused", "5/40"],
            ["m3", "completed", "12/12"],
        ]


async def test_a_changed_value_changes_its_cell_and_the_cursor_stays(writes: list[str]) -> None:
    async with table_showing(ROWS) as table:
        table.move_cursor(row=2)
        writes.clear()

        show_rows(table, [ROWS[0], ("m2", ("m2", Text("running"), "5/40")), ROWS[2]])

        assert writes == ["update m2"]
        assert shown(table)[1] == ["m2", "running", "5/40"]
        assert table.cursor_row == 2


async def test_new_rows_fill_the_table_anew_with_the_cursor_on_its_row(writes: list[str]) -> None:
    async with table_showing(ROWS) as table:
        table.move_cursor(row=1)  # on m2
        writes.clear()

        newest_first = [("m4", ("m4", Text("running"), "0/7")), *ROWS]
        show_rows(table, newest_first)

        assert writes == ["clear"]
        assert [row[0] for row in shown(table)] == ["m4", "m1", "m2", "m3"]
        assert table.cursor_row == 2  # still m2


async def test_a_row_gone_leaves_the_cursor_where_it_was_within_the_table(writes: list[str]) -> None:
    async with table_showing(ROWS) as table:
        table.move_cursor(row=2)  # on m3

        show_rows(table, ROWS[:2])
        assert table.cursor_row == 1

        show_rows(table, [])
        assert table.row_count == 0
