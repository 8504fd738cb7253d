"""The new-migration form's "load configuration" dialog: the path of a MigrationConfig file.

The file is read and checked by the module ``--config FILE`` uses (common/config_file.py), so
the form and the CLI accept the same files and refuse the others in the same words. A bad file
keeps the dialog open with its problems shown, for the operator to fix the path or the file and
try again; nothing reaches the form until the file is good.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

from tui_migrator.common.config_file import FORMATS, read_config_file
from tui_migrator.common.errors import InvalidMigrationConfig


@dataclass(frozen=True)
class LoadedConfig:
    path: Path
    # The settings the file sets, by MigrationConfig field name; the keys it leaves out are absent.
    values: dict[str, Any]


class LoadConfigModal(ModalScreen[LoadedConfig | None]):
    """Asks for a file's path; returns what it sets, or None when the operator backs out."""

    AUTO_FOCUS = "#config-path"
    BINDINGS = [Binding("escape", "back", "Back", id="load_config.back")]

    def compose(self) -> ComposeResult:
        with Vertical(id="load-config-dialog"):
            yield Static("Load a configuration file", classes="panel-title")
            yield Static(
                f"A MigrationConfig file, {' or '.join(FORMATS.values())} ({', '.join(FORMATS)}), "
                "fills the form; a key it leaves out takes its default. A relative path starts "
                "from the directory the app was started in.",
                markup=False,
            )
            yield Input(placeholder="path of a .json or .toml file", id="config-path")
            # Scrolls: a file with many problems lists them all, one line each.
            with VerticalScroll(id="load-config-problems"):
                yield Static("", id="load-config-error", markup=False)
            with Horizontal(id="load-config-buttons"):
                yield Button("Cancel", id="load-config-cancel")
                yield Button("Load", id="load-config-load", variant="primary")

    def action_back(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#load-config-cancel")
    def _cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#load-config-load")
    @on(Input.Submitted, "#config-path")
    def _load(self) -> None:
        typed = self.query_one("#config-path", Input).value.strip()
        if not typed:
            self._show_problem("Type the path of a .json or .toml file.")
            return
        path = Path(typed).expanduser()
        try:
            values = read_config_file(path)
        except InvalidMigrationConfig as error:
            self._show_problem(error.message + (f"\n{error.hint}" if error.hint else ""))
            return
        self.dismiss(LoadedConfig(path, values))

    def _show_problem(self, text: str) -> None:
        self.query_one("#load-config-error", Static).update(text)
        self.query_one("#load-config-problems").set_class(True, "-shown")
        self.query_one("#config-path", Input).focus()
