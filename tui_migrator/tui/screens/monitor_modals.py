"""The monitor's dialogs: cancel with a reason, roll back and sweep (PostgreSQL) with a typed
confirmation, the evidence bundle's folder, failed records.

Every dialog opens with the safe choice focused: Cancel, or the confirmation field that does
nothing until the migration id has been typed exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, Input, Static

T = TypeVar("T")


class OneLineModal(ModalScreen[T | None]):
    """A dialog that asks for one line (its Input with id ``ANSWER``, focused): Enter or the
    ``#confirm`` button answers, Esc or ``#keep`` backs out (None), and an empty line keeps the
    dialog open with ``EMPTY_WARNING``."""

    ANSWER: ClassVar[str]
    EMPTY_WARNING: ClassVar[str]
    # Each dialog's result for the line typed (stripped, not empty): a method of each subclass.
    answer: Callable[[str], T]

    def on_mount(self) -> None:
        self.query_one(f"#{self.ANSWER}", Input).focus()

    def action_back(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#keep")
    def _keep(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#confirm")
    @on(Input.Submitted)
    def _confirm(self) -> None:
        field = self.query_one(f"#{self.ANSWER}", Input)
        text = field.value.strip()
        if not text:
            self.notify(self.EMPTY_WARNING, severity="warning")
            field.focus()
            return
        self.dismiss(self.answer(text))


class CancelModal(OneLineModal[str]):
    """Asks why; returns the reason, or None when the operator backs out."""

    BINDINGS = [Binding("escape", "back", "Back", id="cancel_modal.back")]
    # The reason has focus: what the operator types at 2 a.m. lands in it, and Enter asks for the
    # cancel. Backing out is Esc or "Keep running"; an empty reason keeps the dialog open with a
    # warning, so no key closes it silently while the run goes on.
    ANSWER = "reason"
    EMPTY_WARNING = "Give a reason: it is recorded in the audit trail."

    def __init__(self, migration_id: str) -> None:
        super().__init__()
        self.migration_id = migration_id

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(f"Cancel {self.migration_id}?", classes="panel-title")
            yield Static("In-flight batches finish; encrypted rows stay encrypted until resume or rollback.")
            yield Input(placeholder="Reason (required), e.g. Emergency maintenance", id="reason")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Keep running", id="keep", variant="primary")
                yield Button("Cancel migration", id="confirm", variant="error")

    def answer(self, text: str) -> str:
        return text


class ResumeModal(ModalScreen[bool]):
    """Resume continues what the operator already started: one confirmation, no typing."""

    BINDINGS = [Binding("escape", "back", "Back", id="resume_modal.back")]

    def __init__(self, migration_id: str) -> None:
        super().__init__()
        self.migration_id = migration_id

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(f"Resume {self.migration_id}?", classes="panel-title")
            yield Static(
                "A background worker continues from each table's resume key and retries the failed "
                "records; it keeps running if this terminal closes."
            )
            with Horizontal(classes="dialog-buttons"):
                yield Button("Back", id="keep")
                yield Button("Resume", id="confirm", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#confirm", Button).focus()

    def action_back(self) -> None:
        self.dismiss(False)

    @on(Button.Pressed, "#keep")
    def _keep(self) -> None:
        self.dismiss(False)

    @on(Button.Pressed, "#confirm")
    def _confirm(self) -> None:
        self.dismiss(True)


class TypedConfirmationModal(ModalScreen[bool]):
    """Typed confirmation: the migration id must be typed exactly before the action is possible."""

    # What the dialog asks, explains and the button does; each subclass says it for its action.
    QUESTION = "{migration_id}?"
    EXPLANATION = ""
    ACTION = "Confirm"

    def __init__(self, migration_id: str) -> None:
        super().__init__()
        self.migration_id = migration_id

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(self.QUESTION.format(migration_id=self.migration_id), classes="panel-title")
            yield Static(self.EXPLANATION)
            yield Static(f"Type {self.migration_id} to confirm:")
            # Not the id itself as a placeholder: without colour it would look typed already.
            yield Input(placeholder="type the migration id here", id="typed")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="keep", variant="primary")
                yield Button(self.ACTION, id="confirm", variant="error", disabled=True)

    def on_mount(self) -> None:
        # Focus on the field: nothing happens until the id is typed exactly.
        self.query_one("#typed", Input).focus()

    @on(Input.Changed, "#typed")
    def _typed(self, event: Input.Changed) -> None:
        self.query_one("#confirm", Button).disabled = event.value.strip() != self.migration_id

    def action_back(self) -> None:
        self.dismiss(False)

    @on(Button.Pressed, "#keep")
    def _keep(self) -> None:
        self.dismiss(False)

    @on(Button.Pressed, "#confirm")
    @on(Input.Submitted, "#typed")
    def _confirm(self) -> None:
        if self.query_one("#typed", Input).value.strip() == self.migration_id:
            self.dismiss(True)
        else:
            self.notify(f"Type {self.migration_id} exactly to {self.ACTION.lower()}.", severity="warning")


class RollbackModal(TypedConfirmationModal):
    BINDINGS = [Binding("escape", "back", "Back", id="rollback_modal.back")]
    QUESTION = "Roll back {migration_id}?"
    EXPLANATION = "Every value it encrypted is restored; values the application wrote since are kept."
    ACTION = "Roll back"


class PurgeBackupsModal(TypedConfirmationModal):
    BINDINGS = [Binding("escape", "back", "Back", id="purge_modal.back")]
    QUESTION = "Purge the backups of {migration_id}?"
    EXPLANATION = (
        "Its sealed backup tables are dropped. A rollback then restores values by decrypting "
        "their tokens alone; a damaged token could no longer be restored from its backup."
    )
    ACTION = "Purge backups"


class SweepModal(TypedConfirmationModal):
    """On PostgreSQL only: VACUUM FULL locks each table while it rewrites it."""

    BINDINGS = [Binding("escape", "back", "Back", id="sweep_modal.back")]
    QUESTION = "Sweep {migration_id}?"
    EXPLANATION = (
        "VACUUM FULL rewrites each of its tables to remove the old plaintext rows; each table is "
        "locked (reads and writes wait) while it runs. Then the files are searched for plaintext."
    )
    ACTION = "Sweep"


class EvidenceModal(OneLineModal[Path]):
    """Where to write the migration's evidence bundle for auditors: a new or empty folder. It
    only reads the database, so it asks for the folder, not for a confirmation."""

    BINDINGS = [Binding("escape", "back", "Back", id="evidence_modal.back")]
    ANSWER = "folder"
    EMPTY_WARNING = "Give the folder to write the bundle into."

    def __init__(self, migration_id: str, suggested: Path) -> None:
        super().__init__()
        self.migration_id = migration_id
        self.suggested = suggested

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog dialog-wide"):
            yield Static(f"Evidence bundle of {self.migration_id}", classes="panel-title")
            yield Static(
                "Its configuration, operator, timeline, counts, verification, backups, sweep and "
                "audit entries with their proofs, as JSON and a Markdown summary, signed with a "
                "key derived from the master key. No record values. Check it later with: "
                "tui-migrator evidence verify DIR"
            )
            yield Static("Folder (new or empty):")
            yield Input(value=str(self.suggested), id="folder")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Back", id="keep")
                yield Button("Write bundle", id="confirm", variant="primary")

    def answer(self, text: str) -> Path:
        return Path(text).expanduser()


class FailedRecordsModal(ModalScreen[None]):
    """Records the migration could not process: table, key and reason (never values)."""

    BINDINGS = [Binding("escape,f", "back", "Close", id="failed_modal.close")]

    def __init__(self, migration_id: str, rows: list[dict[str, Any]]) -> None:
        super().__init__()
        self.migration_id = migration_id
        self.rows = rows

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog dialog-wide"):
            yield Static(f"Failed records of {self.migration_id}: {len(self.rows)}", classes="panel-title")
            table: DataTable[str] = DataTable(id="failed", cursor_type="row")
            table.add_columns("table", "key", "attempts", "reason")
            for row in self.rows:
                table.add_row(row["table_name"], row["key_display"], str(row["attempts"]), row["reason"])
            yield table
            yield Static("Resume retries them. esc closes.", classes="hint")

    def action_back(self) -> None:
        self.dismiss(None)
