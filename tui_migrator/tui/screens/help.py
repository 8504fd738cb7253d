"""``?``: every binding of the screen underneath, built from the bindings themselves."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static


class HelpScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape,question_mark,q", "close", "Close", id="help.close"),
    ]

    def __init__(self, bindings: list[tuple[str, str]]) -> None:
        super().__init__()
        self._rows = bindings

    def compose(self) -> ComposeResult:
        with Vertical(id="help-dialog"):
            yield Static("Keys on this screen", classes="panel-title")
            table: DataTable[str] = DataTable(id="help-table", cursor_type="none")
            table.add_columns("key", "action")
            for key, description in self._rows:
                table.add_row(key, description)
            yield table
            yield Static(
                "ctrl+p: the command palette, with every action that works here · esc closes",
                classes="hint",
            )

    def action_close(self) -> None:
        self.dismiss()
