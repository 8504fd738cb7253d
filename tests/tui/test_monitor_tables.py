"""The monitor's table of tables is written cell by cell as a migration moves: a poll that finds
nothing changed writes nothing, a changed count changes its cell in place (the cursor stays where
the operator put it), and only a change in the tables themselves rebuilds it. Cleared and filled
anew every second, it measured its columns again each time — its header repainted narrow, then
wide, which a snapshot once caught — and lost the operator's scroll position."""

from __future__ import annotations

import dataclasses

from textual.widgets import DataTable

from tests.tui.conftest import more_polls, opened_monitor
from tui_migrator.service.facade import MigratorService
from tui_migrator.tui.app import MigratorApp
from tui_migrator.tui.formatting import count


def shown(table: DataTable[object]) -> list[list[str]]:
    return [[str(cell) for cell in table.get_row_at(index)] for index in range(table.row_count)]


async def test_the_monitor_writes_only_what_changed_in_its_table_of_tables(
    app: MigratorApp, operator_service: MigratorService, table_clears: list[str | None]
) -> None:
    record = operator_service.start({"batch_size": 40})  # completed: every poll reads the same
    assert len(record.tables) >= 2
    cleared = table_clears
    async with app.run_test(size=(100, 32)) as pilot:
        screen = await opened_monitor(app, pilot, record.id)
        table = screen.query_one("#tables", DataTable)
        first = shown(table)
        assert [row[0] for row in first] == [progress.name for progress in record.tables]
        fills = cleared.count("tables")

        # Two more polls of the same state: nothing cleared, nothing changed.
        await more_polls(pilot, screen, 2)
        assert cleared.count("tables") == fills
        assert shown(table) == first

        # One table's counts move: its cells change where they are, the cursor stays on it.
        table.move_cursor(row=1)
        latest = screen.record
        assert latest is not None
        moved = dataclasses.replace(
            latest,
            tables=[
                dataclasses.replace(progress, failed_records=progress.failed_records + 7)
                if index == 1
                else progress
                for index, progress in enumerate(latest.tables)
            ],
        )
        screen._show_tables(moved)
        assert cleared.count("tables") == fills
        assert shown(table)[1][3] == count(latest.tables[1].failed_records + 7)
        assert shown(table)[0] == first[0]
        assert table.cursor_row == 1

        # The tables themselves change: the table is rebuilt, the cursor kept within it.
        fewer = dataclasses.replace(latest, tables=latest.tables[:1])
        screen._show_tables(fewer)
        assert cleared.count("tables") == fills + 1
        assert shown(table) == [first[0]]
        assert table.cursor_row == 0
