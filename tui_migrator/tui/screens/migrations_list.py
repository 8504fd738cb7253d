"""Every migration in the database, newest first, with the seed's summary by status.

The list reads the database, not this process's memory, so migrations started by another
process or operator appear (and open in the monitor) like our own. It refreshes itself on a
timer that is rescheduled only after a load has finished (as Dolphie does), so a slow database
never stacks refreshes, and it pauses while another screen is in front of it.
"""

from __future__ import annotations

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import DataTable, Input, Static
from textual.worker import Worker, WorkerState, get_current_worker

from tui_migrator.common.errors import PermissionDenied
from tui_migrator.service.views import list_data
from tui_migrator.storage.migration_records import MigrationRecord
from tui_migrator.storage.migration_status import Status
from tui_migrator.tui.field_input import FieldInput
from tui_migrator.tui.formatting import (
    count,
    duration,
    kind_label,
    local_time,
    sealed_words,
    status_label,
    status_words,
)
from tui_migrator.tui.messages import MigrationsLoaded, MonitorRequested
from tui_migrator.tui.refresh_timer import RefreshTimer
from tui_migrator.tui.screen_frame import KeyFooter, TitleHeader
from tui_migrator.tui.screens.base import AppScreen
from tui_migrator.tui.table_rows import show_rows

REFRESH_SECONDS = 2.0
LOAD_GROUP = "migrations-list"

# What `s` cycles through; None is "all". Planned migrations only exist for a moment before
# their worker claims them, so the seed's filter list leaves them out and so does this one.
STATUS_FILTERS: tuple[Status | None, ...] = (
    None,
    Status.RUNNING,
    Status.PAUSED,
    Status.COMPLETED,
    Status.FAILED,
    Status.CANCELLED,
    Status.INTERRUPTED,
    Status.ROLLED_BACK,
)


def summary_text(by_status: dict[str, int]) -> str:
    """ "5 migrations: completed 3 · running 1 · failed 1" — statuses with none are left out."""
    total = sum(by_status.values())
    if not total:
        return "No migrations yet. Press n to configure one."
    parts = [f"{status_words(Status(name))} {number}" for name, number in by_status.items() if number]
    noun = "migration" if total == 1 else "migrations"
    return f"{total} {noun}: " + " · ".join(parts)


def matches(record: MigrationRecord, text: str) -> bool:
    """Case-insensitive match on the id, the status (as stored or in words), who started it and
    what it is ("key rotation")."""
    needle = text.strip().casefold()
    if not needle:
        return True
    haystack = " ".join(
        (record.id, record.status.value, status_label(record), record.created_by, record.kind.described)
    )
    return needle in haystack.casefold()


def detail_text(record: MigrationRecord) -> str:
    lines = [f"{record.id}{kind_label(record)} — {status_label(record)}, started by {record.created_by}"]
    times = [f"started {local_time(record.started_at) or 'not yet'}"]
    if record.completed_at is not None:
        times.append(f"completed {local_time(record.completed_at)}")
    times.append(f"elapsed {duration(record.elapsed_seconds)}")
    lines.append(" · ".join(times))
    lines.append(
        f"{count(record.encrypted_records)} of {count(record.total_records)} records {sealed_words(record)}, "
        f"{count(record.failed_records)} failed"
    )
    if record.error_message:
        lines.append(f"Error: {record.error_message}")
    return "\n".join(lines)


class MigrationsTable(DataTable[Text | str]):
    """The list itself; `enter` opens the selected migration in the monitor."""

    BINDINGS = [
        Binding(
            "enter", "select_cursor", "Monitor", id="migrations.open", tooltip="Follow it in the monitor"
        ),
    ]


class MigrationsScreen(AppScreen):
    """All migrations with their status in words; enter opens one in the monitor."""

    BINDINGS = [
        Binding(
            "slash",
            "focus_filter",
            "Filter",
            id="migrations.filter",
            key_display="/",
            tooltip="Filter by id, status or user",
        ),
        Binding(
            "s,f7", "cycle_status", "Status", id="migrations.status", tooltip="Show only one status (cycles)"
        ),
        Binding("r", "refresh", "Refresh", id="migrations.refresh", tooltip="Reload now"),
        Binding(
            "escape",
            "clear_filter",
            "Clear filter",
            id="migrations.clear_filter",
            tooltip="Clear the text filter and return to the list",
        ),
    ]

    AUTO_FOCUS = "#migrations-table"

    def __init__(self) -> None:
        super().__init__()
        self._records: list[MigrationRecord] = []
        self._status_index = 0
        self._refresh = RefreshTimer(self, REFRESH_SECONDS, self._load)
        self._failing = False

    def compose(self) -> ComposeResult:
        yield TitleHeader()
        yield Static("Loading…", id="migrations-summary", markup=False)
        with Horizontal(id="migrations-filters"):
            yield Static("", id="migrations-status-filter", markup=False)
            yield FieldInput(placeholder="/ filter: id, status or user", id="migrations-filter", compact=True)
        yield MigrationsTable(id="migrations-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="migrations-detail", classes="hint", markup=False)
        yield KeyFooter()

    def on_mount(self) -> None:
        self.query_one(MigrationsTable).add_columns(
            "migration", "status", "records", "failed", "started", "completed"
        )
        self._show_status_filter()

    # -- loading ---------------------------------------------------------------------------

    def on_screen_resume(self) -> None:
        self.action_refresh()

    def on_screen_suspend(self) -> None:
        # Nobody sees this screen now (another mode, or the monitor on top): stop polling.
        self._refresh.stop()

    def action_refresh(self) -> None:
        self._refresh.stop()
        self._load()

    @work(thread=True, group=LOAD_GROUP, exclusive=True, exit_on_error=False)
    def _load(self) -> None:
        page, everything = self.host.service.list_migrations(limit=None)
        summary = list_data(page, everything=everything)["summary"]
        if not get_current_worker().is_cancelled:
            self.post_message(MigrationsLoaded(everything, summary["byStatus"]))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != LOAD_GROUP or event.state not in (WorkerState.SUCCESS, WorkerState.ERROR):
            # A cancelled load was replaced by a newer one, which schedules the next refresh.
            return
        if event.state is WorkerState.ERROR:
            if self._failing:
                # Notified once already: not again on every refresh while the database is down.
                event.prevent_default()
            self._failing = True
            summary = self.query_one("#migrations-summary", Static)
            if isinstance(event.worker.error, PermissionDenied):
                # Every refusal is audited: polling would write an entry every few seconds.
                summary.update(f"{event.worker.error} Press r to try again.")
                return
            summary.update(
                f"Could not load the migrations; retrying every {REFRESH_SECONDS:g} s. "
                "The list below may be out of date."
            )
        self._refresh.schedule()

    @on(MigrationsLoaded)
    def _show(self, message: MigrationsLoaded) -> None:
        self._failing = False
        self._records = message.records
        self.query_one("#migrations-summary", Static).update(summary_text(message.by_status))
        self._fill()

    # -- filtering -------------------------------------------------------------------------

    @property
    def status_filter(self) -> Status | None:
        return STATUS_FILTERS[self._status_index]

    def action_cycle_status(self) -> None:
        self._status_index = (self._status_index + 1) % len(STATUS_FILTERS)
        self._show_status_filter()
        self._fill()

    def _show_status_filter(self) -> None:
        shown = "all" if self.status_filter is None else status_words(self.status_filter)
        self.query_one("#migrations-status-filter", Static).update(f"Status: {shown}")

    def action_focus_filter(self) -> None:
        self.query_one("#migrations-filter", Input).focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "clear_filter":
            # Only offered when there is something to clear or leave.
            field = self.query_one("#migrations-filter", Input)
            return bool(field.value) or field.has_focus
        return True

    def action_clear_filter(self) -> None:
        self.query_one("#migrations-filter", Input).value = ""
        self.query_one(MigrationsTable).focus()

    @on(Input.Changed, "#migrations-filter")
    def _filter_changed(self) -> None:
        self._fill()
        self.refresh_bindings()

    @on(Input.Submitted, "#migrations-filter")
    def _filter_submitted(self) -> None:
        self.query_one(MigrationsTable).focus()

    def _visible(self) -> list[MigrationRecord]:
        text = self.query_one("#migrations-filter", Input).value
        wanted = self.status_filter
        return [
            record
            for record in self._records
            if (wanted is None or record.status is wanted) and matches(record, text)
        ]

    # -- the table -------------------------------------------------------------------------

    def _fill(self) -> None:
        """Redraw the rows, keeping the cursor on the same migration when it is still shown."""
        show_rows(
            self.query_one(MigrationsTable),
            [
                (
                    record.id,
                    (
                        record.id,
                        Text(status_label(record)),
                        f"{count(record.processed_records)}/{count(record.total_records)}",
                        count(record.failed_records),
                        local_time(record.started_at, seconds=False),
                        local_time(record.completed_at, seconds=False),
                    ),
                )
                for record in self._visible()
            ],
        )
        self._show_detail()

    def _selected_id(self) -> str | None:
        table = self.query_one(MigrationsTable)
        if not table.row_count:
            return None
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value

    @on(DataTable.RowHighlighted, "#migrations-table")
    def _show_detail(self) -> None:
        selected = self._selected_id()
        record = next((record for record in self._records if record.id == selected), None)
        detail = self.query_one("#migrations-detail", Static)
        if record is not None:
            detail.update(detail_text(record))
        elif self._records:
            detail.update("No migration matches the filter. esc clears it; s changes the status shown.")
        else:
            detail.update("")

    @on(DataTable.RowSelected, "#migrations-table")
    def _open(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value is not None:
            self.post_message(MonitorRequested(event.row_key.value))
