"""The first-run question: the configured database is not set up for tui-migrator (or, with no
database named, there is no demo database yet). The app sets nothing up unasked: it says what
setting up would do and waits for y or n."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Footer, Static

from tui_migrator.common.settings import DEMO_DATABASE_FILENAME, Settings
from tui_migrator.service.opening import sqlite_journal_mode
from tui_migrator.storage.database import redacted
from tui_migrator.tui.styles import stylesheet


def first_run_words(settings: Settings) -> tuple[str, str]:
    """The title and the body of the question, for the configured database."""
    if settings.uses_embedded_database:
        body = (
            f"tui-migrator has no database to work on here. Create the demo database at "
            f"{settings.data_dir / DEMO_DATABASE_FILENAME}, with synthetic ParkML patients and a new "
            f"master key in {settings.data_dir}? You become its first super_admin.\n\n"
            "To work on your own database instead, quit and start tui-migrator with --db."
        )
        return "No demo database yet", body
    journal_mode = sqlite_journal_mode(settings)
    switched = (
        f" The file's journal mode ({journal_mode}) becomes WAL, and stays so (README, 'The SQLite library')."
        if journal_mode not in (None, "wal")
        else ""
    )
    body = (
        f"The database at {redacted(settings.effective_database_url)} has none of tui-migrator's "
        "tables. Set it up: create them, a master key if there is none, and make you its first "
        f"super_admin? Your own tables are not touched.{switched}\n\n"
        "If this is not the database you meant, quit and check --db."
    )
    return "Database not set up", body


class FirstRunApp(App[bool]):
    """Returns True if the operator chose to set the database up."""

    CSS_PATH = stylesheet("first_run.tcss")
    BINDINGS = [
        Binding("y", "answer(True)", "Set it up"),
        Binding("n,q,escape", "answer(False)", "Quit, change nothing"),
    ]

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.title_words, self.body_words = first_run_words(settings)

    def compose(self) -> ComposeResult:
        with Vertical(id="first-run"):
            yield Static(self.title_words, id="first-run-title")
            yield Static(self.body_words, id="first-run-body")
        yield Footer()

    def action_answer(self, set_up: bool) -> None:
        self.exit(set_up)
