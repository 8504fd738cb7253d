"""The audit trail: entries newest first, one entry in full, and chain verification.

Verification recomputes the whole chain in a worker. A broken chain is shown in words: the
problem the service found, and the first bad entry marked BROKEN with the cursor on it.
"""

from __future__ import annotations

import json

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import DataTable, Input, Static
from textual.worker import Worker, WorkerState, get_current_worker

from tui_migrator.service.inspection import AuditPage
from tui_migrator.storage.audit import AuditEntry, AuditVerification
from tui_migrator.tui.field_input import FieldInput
from tui_migrator.tui.formatting import count, local_time
from tui_migrator.tui.messages import AuditLoaded, AuditVerified
from tui_migrator.tui.screen_frame import KeyFooter, TitleHeader
from tui_migrator.tui.screens.base import AppScreen
from tui_migrator.tui.table_rows import show_rows

# The newest entries shown; a long-lived database collects many more than a table should hold.
ENTRY_LIMIT = 1000
LOAD_GROUP = "audit-load"
VERIFY_GROUP = "audit-verify"
BROKEN = "BROKEN"
VERIFY_HINT = "Press v to verify the chain."


def result_words(entry: AuditEntry) -> str:
    return "ok" if entry.success else "FAILED"


def matches(entry: AuditEntry, text: str) -> bool:
    """Case-insensitive match on the migration id, operation, user, result, sequence and entry id."""
    needle = text.strip().casefold()
    if not needle:
        return True
    fields = (entry.migration_id or "", entry.operation, entry.user_id, result_words(entry), entry.entry_id)
    return needle in " ".join((f"#{entry.seq}", *fields)).casefold()


def entry_text(entry: AuditEntry, *, broken: bool) -> str:
    """Every field of one entry, named as in the CLI's JSON, hashes on lines of their own."""
    details = json.dumps(entry.details, indent=2, ensure_ascii=False, sort_keys=True)
    marker = [f"{BROKEN}: verification of the chain fails at this entry."] if broken else []
    return "\n".join(
        [
            *marker,
            f"#{entry.seq}  {entry.entry_id}  {local_time(entry.timestamp)}  {result_words(entry)}",
            f"operation  {entry.operation}",
            f"user       {entry.user_id}",
            f"migration  {entry.migration_id or '-'}",
            f"timestamp  {entry.timestamp} (UTC, as recorded)",
            "previousHash",
            f"  {entry.previous_hash}",
            "entryHash",
            f"  {entry.entry_hash}",
            "cryptographicProof (hmac-sha256)",
            f"  {entry.proof}",
            "details",
            *(f"  {line}" for line in details.splitlines()),
        ]
    )


def verification_text(verification: AuditVerification, *, shown: bool) -> str:
    if verification.intact:
        anchored = (
            f" {count(verification.anchored_entries)} anchored outside the database, all present."
            if verification.anchor is not None
            else " No anchor in this data dir."
        )
        return f"Chain verified: {count(verification.verified_entries)} entries intact.{anchored}"
    text = (
        f"CHAIN BROKEN: {verification.problem} "
        f"{count(verification.verified_entries)} of {count(verification.total_entries)} entries verified before it."
    )
    if not shown and verification.first_broken_seq is not None:
        text += (
            f" Entry #{verification.first_broken_seq} is older than the newest {count(ENTRY_LIMIT)} shown."
        )
    return text


class AuditScreen(AppScreen):
    """Audit entries with their proofs; v verifies the chain."""

    BINDINGS = [
        Binding(
            "v,f7", "verify", "Verify chain", id="audit.verify", tooltip="Recompute every hash and proof"
        ),
        Binding(
            "slash",
            "focus_filter",
            "Filter",
            id="audit.filter",
            key_display="/",
            tooltip="Filter by migration id, operation or user",
        ),
        Binding("r", "refresh", "Refresh", id="audit.refresh", tooltip="Reload the entries"),
        Binding(
            "escape",
            "clear_filter",
            "Clear filter",
            id="audit.clear_filter",
            tooltip="Clear the text filter and return to the entries",
        ),
    ]

    AUTO_FOCUS = "#audit-entries"

    def __init__(self) -> None:
        super().__init__()
        self._entries: list[AuditEntry] = []
        self._total = 0
        # The first entry the last verification found bad; kept across reloads until the next one.
        self._broken_seq: int | None = None

    def compose(self) -> ComposeResult:
        yield TitleHeader()
        yield Static(VERIFY_HINT, id="audit-verification", classes="hint", markup=False)
        with Horizontal(id="audit-filters"):
            yield Static("", id="audit-count", markup=False)
            yield FieldInput(
                placeholder="/ filter: migration id, operation, user", id="audit-filter", compact=True
            )
        yield DataTable(id="audit-entries", cursor_type="row", zebra_stripes=True)
        with VerticalScroll(id="audit-detail-pane"):
            yield Static("", id="audit-detail", markup=False)
        yield KeyFooter()

    def on_mount(self) -> None:
        self.query_one("#audit-entries", DataTable).add_columns(
            "#", "time", "operation", "user", "result", "migration"
        )

    def on_screen_resume(self) -> None:
        self.action_refresh()

    # -- loading and verifying -------------------------------------------------------------

    def action_refresh(self) -> None:
        self._load()

    @work(thread=True, group=LOAD_GROUP, exclusive=True, exit_on_error=False)
    def _load(self) -> None:
        page = self.host.service.audit_entries(limit=ENTRY_LIMIT)
        if not get_current_worker().is_cancelled:
            self.post_message(AuditLoaded(page))

    def action_verify(self) -> None:
        status = self.query_one("#audit-verification", Static)
        status.set_classes("-verifying")
        status.update("Verifying the audit chain…")
        # The verification reloads the entries itself; an older load must not overwrite them.
        self.workers.cancel_group(self, LOAD_GROUP)
        self._verify()

    @work(thread=True, group=VERIFY_GROUP, exclusive=True, exit_on_error=False)
    def _verify(self) -> None:
        service = self.host.service
        verification = service.verify_audit(record=True)
        # Reload too: the verification is itself audited, and the broken entry must be shown.
        self.post_message(AuditVerified(verification, service.audit_entries(limit=ENTRY_LIMIT)))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state is not WorkerState.ERROR:
            return
        if event.worker.group == VERIFY_GROUP:
            status = self.query_one("#audit-verification", Static)
            status.set_classes("-broken")
            status.update("The chain could not be verified (see the notification). Press v to retry.")

    @on(AuditLoaded)
    def _loaded(self, message: AuditLoaded) -> None:
        self._take(message.page)
        self._fill()

    @on(AuditVerified)
    def _verified(self, message: AuditVerified) -> None:
        verification = message.verification
        self._broken_seq = None if verification.intact else verification.first_broken_seq
        self._take(message.page)
        shown = any(entry.seq == self._broken_seq for entry in self._entries)
        status = self.query_one("#audit-verification", Static)
        status.set_classes("-verified" if verification.intact else "-broken")
        status.update(verification_text(verification, shown=shown))
        if self._broken_seq is None or not shown:
            self._fill()
            return
        broken = next(entry for entry in self._entries if entry.seq == self._broken_seq)
        field = self.query_one("#audit-filter", Input)
        if not matches(broken, field.value):
            # The filter would hide the entry the operator must see.
            field.value = ""
        self._fill(select=broken.entry_id)
        self.query_one("#audit-entries", DataTable).focus()

    def _take(self, page: AuditPage) -> None:
        self._entries = page.entries
        self._total = page.total_entries

    # -- filtering -------------------------------------------------------------------------

    def action_focus_filter(self) -> None:
        self.query_one("#audit-filter", Input).focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "clear_filter":
            field = self.query_one("#audit-filter", Input)
            return bool(field.value) or field.has_focus
        return True

    def action_clear_filter(self) -> None:
        self.query_one("#audit-filter", Input).value = ""
        self.query_one("#audit-entries", DataTable).focus()

    @on(Input.Changed, "#audit-filter")
    def _filter_changed(self) -> None:
        self._fill()
        self.refresh_bindings()

    @on(Input.Submitted, "#audit-filter")
    def _filter_submitted(self) -> None:
        self.query_one("#audit-entries", DataTable).focus()

    # -- the table and the detail ----------------------------------------------------------

    def _fill(self, *, select: str | None = None) -> None:
        """Show the entries the filter lets through (show_rows: a reload or a keystroke that
        changes nothing writes nothing, and the cursor stays on its entry), then ``select`` one."""
        table = self.query_one("#audit-entries", DataTable)
        text = self.query_one("#audit-filter", Input).value
        visible = [entry for entry in self._entries if matches(entry, text)]
        show_rows(table, [(entry.entry_id, self._cells(entry)) for entry in visible])
        if select is not None and select in table.rows:
            table.move_cursor(row=table.get_row_index(select))
        self._show_count(len(visible))
        self._show_detail()

    def _cells(self, entry: AuditEntry) -> tuple[object, ...]:
        seq = f"{entry.seq} {BROKEN}" if entry.seq == self._broken_seq else str(entry.seq)
        return (
            seq,
            local_time(entry.timestamp),
            Text(entry.operation),
            Text(entry.user_id),
            result_words(entry),
            Text(entry.migration_id or ""),
        )

    def _show_count(self, visible: int) -> None:
        loaded = len(self._entries)
        text = f"{count(visible)} of {count(loaded)}" if visible != loaded else count(loaded)
        if loaded < self._total:
            text += f" (newest of {count(self._total)})"
        self.query_one("#audit-count", Static).update(f"{text} entries")

    def _selected_id(self) -> str | None:
        table = self.query_one("#audit-entries", DataTable)
        if not table.row_count:
            return None
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value

    @on(DataTable.RowHighlighted, "#audit-entries")
    def _show_detail(self) -> None:
        selected = self._selected_id()
        entry = next((entry for entry in self._entries if entry.entry_id == selected), None)
        detail = self.query_one("#audit-detail", Static)
        if entry is not None:
            detail.update(entry_text(entry, broken=entry.seq == self._broken_seq))
        elif self._entries:
            detail.update("No entry matches the filter. esc clears it.")
        else:
            detail.update("")
