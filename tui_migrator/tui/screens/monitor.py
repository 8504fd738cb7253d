"""Monitor: one migration, live — its stage in the seed's workflow, progress, rate, tables and events.

The screen follows the migration through the database on a self-rescheduling timer, so it shows
migrations run by any process, and a slow read never stacks refreshes. Updates coalesce: a burst
of them becomes one repaint.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, ProgressBar, RichLog, Sparkline, Static
from textual.worker import Worker, WorkerState

from tui_migrator.service.sweeping import SweepStatus
from tui_migrator.service.views import alerts as migration_alerts
from tui_migrator.service.views import rollback_stop_reason, rollback_words, schedule_lines
from tui_migrator.service.workers import workers_of
from tui_migrator.storage.audit import AuditEntry
from tui_migrator.storage.migration_records import MigrationRecord, TableProgress
from tui_migrator.storage.migration_status import PHASE_TITLES, MigrationKind, Phase, Status
from tui_migrator.tui.formatting import (
    STOPPED_STAGE_MARKS,
    count,
    duration,
    kind_label,
    local_time,
    sealed_words,
    state_words,
    status_heading,
    worker_words,
)
from tui_migrator.tui.messages import ActionDone, FailedRecordsLoaded, MonitorUpdated, SweepDone
from tui_migrator.tui.screen_frame import KeyFooter, TitleHeader
from tui_migrator.tui.screens.base import AppScreen
from tui_migrator.tui.screens.monitor_modals import (
    CancelModal,
    EvidenceModal,
    FailedRecordsModal,
    PurgeBackupsModal,
    ResumeModal,
    RollbackModal,
    SweepModal,
)
from tui_migrator.tui.table_rows import show_rows
from tui_migrator.tui.worker_errors import UNTIL_DISMISSED_SECONDS

REFRESH_SECONDS = 1.0
RATE_HISTORY = 60
STAGES = list(Phase)
LOAD_GROUP = "monitor"
ACTION_GROUP = "monitor-action"
MUTATING_ACTIONS = ("cancel", "pause", "resume", "rollback", "sweep", "purge_backups")


class MonitorScreen(AppScreen):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back", id="monitor.back"),
        Binding("c", "cancel", "Cancel", id="monitor.cancel", tooltip="Stop after the in-flight batches"),
        Binding(
            "p", "pause", "Pause/continue", id="monitor.pause", tooltip="Pause, or continue a paused run"
        ),
        Binding("r", "rollback", "Roll back", id="monitor.rollback", tooltip="Restore every encrypted value"),
        Binding("f", "failed", "Failed", id="monitor.failed", tooltip="Records that could not be processed"),
        Binding(
            "s",
            "sweep",
            "Sweep",
            id="monitor.sweep",
            tooltip="Remove the plaintext left in the database files, and prove it",
        ),
        # Last: at 80 columns the footer cuts it first, and the status line names it anyway.
        Binding(
            "u",
            "resume",
            "Resume",
            id="monitor.resume",
            tooltip="Continue a cancelled, failed or interrupted migration in a background worker",
        ),
        Binding("g", "log", "Log", id="monitor.log", tooltip="The worker log and the recent errors"),
        # The app's n and l, kept out of this footer: with every action of a stopped migration
        # it would pass 80 columns and lose "q Quit". They work as everywhere (and `?` lists them).
        Binding("n,f3", "app.go('new')", "New", id="monitor.new", show=False),
        Binding("l,f5", "app.go('migrations')", "Migrations", id="monitor.migrations", show=False),
        # Rare, and the footer has no room at 80 columns: in help and the command palette.
        Binding(
            "b",
            "purge_backups",
            "Purge backups",
            id="monitor.purge_backups",
            tooltip="Drop the sealed backups (rollback then relies on decryption alone)",
            show=False,
        ),
        # A read (viewers and read-only sessions may), rare: in help and the command palette.
        Binding(
            "v",
            "evidence",
            "Evidence",
            id="monitor.evidence",
            tooltip="Write a signed evidence bundle for auditors (report --evidence)",
            show=False,
        ),
    ]

    def __init__(self, migration_id: str) -> None:
        super().__init__()
        self.migration_id = migration_id
        self.record: MigrationRecord | None = None
        self._rates: list[float] = []
        self._logged: set[int] = set()
        self._sweep_seen: SweepStatus | None = None
        # What check_action said of each of MUTATING_ACTIONS at the last poll (see _offer_keys).
        self._offered: tuple[bool | None, ...] = ()
        # A sweep asked for on this screen, and the sweep time recorded before it.
        self._sweep_asked = False
        self._swept_when_asked: datetime | None = None

    def compose(self) -> ComposeResult:
        yield TitleHeader()
        yield Static(self.migration_id, id="monitor-title")
        denied = self.host.denied_reason
        if denied:
            yield Static(f"Actions that change data are not available: {denied}.", id="monitor-access")
        with Horizontal(id="monitor-top"):
            with Vertical(id="stages-panel", classes="panel"):
                yield Static("Workflow", classes="panel-title")
                yield Static("", id="stages")
            with Vertical(id="progress-panel", classes="panel"):
                yield ProgressBar(total=100, show_eta=False, id="progress")
                yield Static("", id="counts")
                yield Sparkline([], id="rate")
                yield Static("", id="timing")
        with Horizontal(id="monitor-bottom"):
            yield DataTable(id="tables", cursor_type="row", zebra_stripes=True)
            # Wraps (at 80 columns an operation name is longer than the panel) and follows the
            # newest line; plain text, never markup (a reason typed by an operator is data).
            yield RichLog(id="events", max_lines=500, wrap=True, min_width=16, markup=False, auto_scroll=True)
        yield Static("", id="monitor-workers", markup=False)
        yield Static("", id="monitor-alerts")
        yield Static("", id="monitor-sweep")
        yield KeyFooter()

    def on_mount(self) -> None:
        table = self.query_one("#tables", DataTable)
        table.add_columns("table", "done", "total", "failed", "state")
        self._refresh()

    # -- polling ---------------------------------------------------------------------------

    def _refresh(self) -> None:
        self._load()

    @work(thread=True, group=LOAD_GROUP, exclusive=True, exit_on_error=False)
    def _load(self) -> None:
        service = self.host.service
        record = service.status(self.migration_id)
        entries = service.audit_entries(limit=200, migration_id=self.migration_id).entries
        self.post_message(MonitorUpdated(record, entries, service.sweep_status(self.migration_id)))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # Rescheduled only after a load finished (or failed: the base class notifies that), so
        # slow reads never pile up.
        if event.worker.group == LOAD_GROUP and event.state in (WorkerState.SUCCESS, WorkerState.ERROR):
            self._schedule_next()
        # A sweep that did not begin (its error is notified) has no outcome to wait for.
        if event.worker.name == self._sweep.__name__ and event.state is WorkerState.ERROR:
            self._sweep_asked = False

    def _schedule_next(self) -> None:
        if self.is_attached:
            self.set_timer(REFRESH_SECONDS, self._refresh)

    @on(MonitorUpdated)
    def _show(self, message: MonitorUpdated) -> None:
        record = message.record
        self._tell_rollback_outcome(self.record, record)
        self.record = record
        status = state_words(record).upper()
        dry = "  (dry run: nothing is written)" if record.dry_run else ""
        self.query_one("#monitor-title", Static).update(f"{record.id}{kind_label(record)} — {status}{dry}")
        self.query_one("#stages", Static).update(_stages_text(record))
        done, total = _progress_of(record)
        self.query_one("#progress", ProgressBar).update(total=max(1, total), progress=done)
        self.query_one("#counts", Static).update(_counts_text(record))
        if record.status is Status.RUNNING and record.rate_per_second:
            self._rates = [*self._rates, record.rate_per_second][-RATE_HISTORY:]
            self.query_one("#rate", Sparkline).data = self._rates
        self.query_one("#timing", Static).update(_timing_text(record))
        self._show_tables(record)
        self._log_events(message.entries)
        found = migration_alerts(record)
        report = _report_line(record)
        self.query_one("#monitor-alerts", Static).update(
            "\n".join(
                [
                    *schedule_lines(record),
                    *(f"ALERT: {a}" for a in found),
                    *(f"Warning: {w}" for w in record.warnings),
                    *([report] if report else []),
                ]
            )
        )
        self._show_workers(record, message.entries)
        self._show_sweep(record, message.sweep)
        self._tell_sweep_outcome(message.sweep)
        self._offer_keys()

    def _offer_keys(self) -> None:
        """Have the footer and help offer the keys this poll allows, only where they changed:
        each change rebuilds the footer's keys, which a poll a second need not do."""
        offered = tuple(self.check_action(action, ()) for action in MUTATING_ACTIONS)
        if offered != self._offered:
            self._offered = offered
            self.refresh_bindings()

    def _tell_rollback_outcome(self, before: MigrationRecord | None, now: MigrationRecord) -> None:
        """A rollback runs in its own process: when the one this screen watched ends, say how."""
        if before is None or not before.rolling_back or now.rolling_back:
            return
        if now.status is Status.ROLLED_BACK:
            self.app.notify(
                f"Rolled back {now.id}: {_restored_rows(now):,} rows restored in "
                f"{duration(now.rollback_seconds)}."
            )
        else:
            self.app.notify(
                f"The rollback of {now.id} stopped: {rollback_stop_reason(now, log_hint=_LOG_HINT)}",
                severity="error",
                timeout=UNTIL_DISMISSED_SECONDS,
            )

    def _show_workers(self, record: MigrationRecord, entries: list[AuditEntry]) -> None:
        """Shown once another worker has joined (PostgreSQL): who works on it, and how it went."""
        workers = workers_of(record, entries)
        line = self.query_one("#monitor-workers", Static)
        line.display = any(not worker.owner for worker in workers)
        line.update("Workers: " + " · ".join(worker_words(worker) for worker in workers))

    def _tell_sweep_outcome(self, sweep: SweepStatus) -> None:
        """The sweep asked for here has ended (a newer sweep is recorded): say what it proved."""
        if self._sweep_asked and not sweep.running and sweep.swept_at != self._swept_when_asked:
            self._sweep_asked = False
            done = SweepDone(f"Sweep of {self.migration_id}: {sweep.summary}", bool(sweep.succeeded))
            self.app.post_message(done)
        self._sweep_seen = sweep

    def _show_sweep(self, record: MigrationRecord, sweep: SweepStatus) -> None:
        line = self.query_one("#monitor-sweep", Static)
        # Only a finished migration has something to sweep; a dry run never does.
        line.display = record.is_complete and not record.dry_run
        line.set_class(bool(sweep.succeeded), "sweep-clean")
        line.set_class(sweep.succeeded is False, "sweep-problem")
        line.set_class(sweep.succeeded is None and sweep.command is not None, "sweep-pending")
        hint = " — press s" if sweep.command and self.host.mutation_state() is True else ""
        if sweep.running and not record.rolling_back:
            line.update("Sweep: running in a background process (VACUUM, then the file search)…")
        elif sweep.swept_at is None:
            line.update(f"Sweep: {sweep.summary}{hint}")
        else:
            line.update(f"Swept {local_time(sweep.swept_at)[11:]} — {sweep.summary}{hint}")

    def _show_tables(self, record: MigrationRecord) -> None:
        show_rows(
            self.query_one("#tables", DataTable),
            [(progress.name, _table_row(progress)) for progress in record.tables],
        )

    def _log_events(self, entries: list[AuditEntry]) -> None:
        log = self.query_one("#events", RichLog)
        for entry in sorted(entries, key=lambda e: e.seq):
            if entry.seq in self._logged:
                continue
            self._logged.add(entry.seq)
            outcome = "" if entry.success else " FAILED"
            log.write(f"{local_time(entry.timestamp)[11:]} {entry.operation}{outcome} ({entry.user_id})")

    # -- actions ---------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action not in MUTATING_ACTIONS:
            return True
        allowed = self.host.mutation_state()
        if allowed is not True:
            return allowed
        record = self.record
        if record is None:
            return False
        possible = {
            "cancel": record.can_cancel,
            # One key pauses a running migration and continues a paused one.
            "pause": record.can_pause or record.can_continue,
            "resume": record.can_resume,
            "rollback": record.can_rollback,
            # A rotation writes no plaintext: the service refuses to sweep for it.
            "sweep": record.is_complete
            and not record.dry_run
            and record.kind is not MigrationKind.ROTATION
            and not self._guard_busy(),
            "purge_backups": record.can_purge_backups
            and not record.rolling_back
            and any(table.backup_table for table in record.tables),
        }[action]
        # Not possible in this state: hidden, so the footer and help offer only keys that do
        # something now (a viewer still sees them disabled, with the reason above).
        return bool(possible)

    def _guard_busy(self) -> bool:
        """A rollback, purge or sweep of this migration runs now (as the last poll saw it)."""
        return self._sweep_seen is not None and self._sweep_seen.running

    def action_cancel(self) -> None:
        def reason_given(reason: str | None) -> None:
            if reason:
                self._cancel(reason)

        self.app.push_screen(CancelModal(self.migration_id), reason_given)

    @work(thread=True, group=ACTION_GROUP, exit_on_error=False)
    def _cancel(self, reason: str) -> None:
        self.host.service.cancel(self.migration_id, reason, wait_seconds=0)
        self.app.post_message(ActionDone("Cancel requested: in-flight batches finish first."))

    @work(thread=True, group=ACTION_GROUP, exit_on_error=False)
    def action_pause(self) -> None:
        service = self.host.service
        # Paused by its own schedule (a closed window), "p" pauses it for the operator too; the
        # service refuses to continue a schedule's pause (it goes on when the window opens).
        if self.record is not None and (
            (self.record.stored_status is Status.PAUSED and not self.record.waits_for_schedule)
            or self.record.pause_requested
        ):
            service.continue_(self.migration_id)
            self.app.post_message(ActionDone("Continuing."))
        else:
            service.pause(self.migration_id)
            self.app.post_message(ActionDone("Pause requested: in-flight batches finish, then it waits."))

    def _confirm_then(self, dialog: ModalScreen[bool], action: Callable[[], object]) -> None:
        """Open the action's confirmation dialog; run the action only if the operator confirms."""

        def confirmed(yes: bool | None) -> None:
            if yes:
                action()

        self.app.push_screen(dialog, confirmed)

    def action_resume(self) -> None:
        self._confirm_then(ResumeModal(self.migration_id), self._resume)

    @work(thread=True, group=ACTION_GROUP, exit_on_error=False)
    def _resume(self) -> None:
        self.host.service.resume(self.migration_id, detach=True)
        self.app.post_message(ActionDone("Resumed: a background worker continues from the resume keys."))

    def action_rollback(self) -> None:
        self._confirm_then(RollbackModal(self.migration_id), self._rollback)

    @work(thread=True, group=ACTION_GROUP, exit_on_error=False)
    def _rollback(self) -> None:
        # In a process of its own, like a migration's worker: it survives this terminal, and
        # this screen stays responsive and follows its progress.
        self.host.service.rollback_in_background(self.migration_id, confirm=True)
        self.app.post_message(ActionDone("Rolling back in a background process; its progress shows here."))

    def action_sweep(self) -> None:
        # SQLite sweeps after every migration anyway; PostgreSQL's VACUUM FULL locks tables.
        if self.host.service.engine.dialect.name != "postgresql":
            self._ask_for_sweep()
        else:
            self._confirm_then(SweepModal(self.migration_id), self._ask_for_sweep)

    def _ask_for_sweep(self) -> None:
        self._sweep_asked = True
        self._swept_when_asked = None if self._sweep_seen is None else self._sweep_seen.swept_at
        self._sweep()

    @work(thread=True, group=ACTION_GROUP, exit_on_error=False)
    def _sweep(self) -> None:
        # In a process of its own, like a rollback: the sweep line says it runs, then what it
        # proved (and a notification tells the outcome, see _tell_sweep_outcome).
        self.host.service.sweep_in_background(self.migration_id, confirm=True)
        self.app.post_message(ActionDone("Sweeping in a background process; its outcome shows here."))

    def action_purge_backups(self) -> None:
        self._confirm_then(PurgeBackupsModal(self.migration_id), self._purge_backups)

    @work(thread=True, group=ACTION_GROUP, exit_on_error=False)
    def _purge_backups(self) -> None:
        dropped = self.host.service.purge_backups(self.migration_id, confirm=True)
        self.app.post_message(ActionDone(f"Purged {len(dropped)} backup table(s) of {self.migration_id}."))

    def action_evidence(self) -> None:
        def folder_given(folder: Path | None) -> None:
            if folder is not None:
                self._export_evidence(folder)

        self.app.push_screen(EvidenceModal(self.migration_id, self._suggested_folder()), folder_given)

    def _suggested_folder(self) -> Path:
        """In the data dir, which only this user can read, named by migration and time."""
        written = datetime.now().strftime("%Y%m%d-%H%M%S")
        return self.host.service.settings.data_dir / "evidence" / f"{self.migration_id}-{written}"

    @work(thread=True, group=ACTION_GROUP, exit_on_error=False)
    def _export_evidence(self, folder: Path) -> None:
        exported = self.host.service.export_evidence(self.migration_id, folder)
        self.app.post_message(
            ActionDone(
                f"Evidence bundle of {self.migration_id} written to {exported.bundle.directory} "
                f"({len(exported.bundle.files)} files). Check it with: tui-migrator evidence verify "
                f"{exported.bundle.directory}"
            )
        )

    def action_failed(self) -> None:
        self._load_failed()

    @work(thread=True, group=ACTION_GROUP, exit_on_error=False)
    def _load_failed(self) -> None:
        self.post_message(FailedRecordsLoaded(self.host.service.failed_records(self.migration_id)))

    @on(FailedRecordsLoaded)
    def _show_failed(self, message: FailedRecordsLoaded) -> None:
        self.app.push_screen(FailedRecordsModal(self.migration_id, message.rows))

    def action_log(self) -> None:
        self.host.open_log(self.migration_id)


def _table_row(progress: TableProgress) -> tuple[str, ...]:
    """A table's line in the monitor's table of tables: done, partial (some rows processed, each
    changed row with its backup) or waiting."""
    state = "done" if progress.done else ("partial" if progress.processed_records else "waiting")
    return (
        progress.name,
        count(progress.processed_records),
        count(progress.total_records),
        count(progress.failed_records),
        state,
    )


def _stages_text(record: MigrationRecord) -> str:
    """The eight stages, each marked done, current or to come — in symbols and words."""
    current = STAGES.index(Phase(record.phase)) if record.phase in list(Phase) else -1
    # A rolled-back migration went through every stage before it was undone (the title says so).
    finished = record.is_complete
    lines = []
    for index, phase in enumerate(STAGES):
        if phase in record.skipped_phases:
            mark = "– skip"
        elif finished or index < current:
            mark = "✔ done"
        elif index == current:
            mark = STOPPED_STAGE_MARKS.get(record.status, "▶ now")
        else:
            mark = "· next"
        lines.append(f"{mark:<8} {index + 1} {PHASE_TITLES[phase]}")
    return "\n".join(lines)


# What the backup and the verification are doing, in the counts line.
PHASE_VERBS = {Phase.BACKUP.value: "backing up", Phase.VERIFICATION.value: "verifying"}


def _progress_of(record: MigrationRecord) -> tuple[int, int]:
    """Done and total for the bar: the rows of the backup or verification while one runs,
    else the records processed."""
    rollback = record.rollback_progress
    if rollback is not None and (record.rolling_back or record.status is Status.ROLLED_BACK):
        return rollback.restored_rows, rollback.rows_to_restore
    if record.phase_progress is not None:
        return record.phase_progress.done, record.phase_progress.total
    return record.processed_records, record.total_records


def _counts_text(record: MigrationRecord) -> str:
    rollback = record.rollback_progress
    if rollback is not None and record.rolling_back:
        return f"restoring {count(rollback.restored_rows)} of {count(rollback.rows_to_restore)} rows"
    if record.status is Status.ROLLED_BACK:
        # Nothing it encrypted is encrypted any more: the counts say what was undone.
        restored = "-" if rollback is None else count(rollback.restored_rows)
        return f"rolled back: {restored} rows restored\nof {count(record.encrypted_records)} it had encrypted"
    progress = record.phase_progress
    if progress is not None:
        verb = PHASE_VERBS.get(progress.phase, progress.phase)
        head = f"{verb} {count(progress.done)} of {count(progress.total)} rows"
    else:
        head = f"processed {count(record.processed_records)} of {count(record.total_records)}"
    return f"{head}\n{sealed_words(record)} {count(record.encrypted_records)}  failed {count(record.failed_records)}"


def _timing_text(record: MigrationRecord) -> str:
    """The rate and ETA of the backup or verification while one runs, else of the batches."""
    if record.phase_progress is not None:
        per_second, remaining, unit = (
            record.phase_progress.rate_per_second,
            record.phase_remaining_seconds,
            "rows/s",
        )
    else:
        per_second, remaining, unit = record.rate_per_second, record.remaining_seconds, "rec/s"
    rate = f"{per_second:,.0f} {unit}" if per_second else f"- {unit}"
    return f"rate {rate}\nelapsed {duration(record.elapsed_seconds)}  ETA {duration(remaining)}"


def _restored_rows(record: MigrationRecord) -> int:
    progress = record.rollback_progress
    return 0 if progress is None else progress.restored_rows


# Where the log of a rollback that went silent is, as the monitor says it.
_LOG_HINT = ": g shows its log"


def _rollback_line(record: MigrationRecord) -> str | None:
    """A rollback running or stopped part-way, in words (service.views); None when there is neither."""
    return rollback_words(record, log_hint=_LOG_HINT, again="press r to run it again")


def _report_line(record: MigrationRecord) -> str | None:
    rolling_back = _rollback_line(record)
    if rolling_back is not None:
        return rolling_back
    if not record.is_finished:
        return None
    if record.status is Status.COMPLETED:
        verified = record.verification or {}
        return (
            f"COMPLETED: {record.encrypted_records:,} {sealed_words(record)}, {record.failed_records:,} failed in "
            f"{duration(record.elapsed_seconds)}"
            + (f"; {verified.get('verifiedRows', 0):,} rows verified" if verified else "")
            + (" — press f for failures" if record.failed_records else "")
        )
    if record.status is Status.ROLLED_BACK:
        return (
            f"ROLLED BACK in {duration(record.rollback_seconds)}: {_restored_rows(record):,} rows "
            "restored; every value it encrypted is plaintext again."
        )
    text = f"{status_heading(record.status)}: " + (
        record.error_message or record.cancel_reason or "the worker stopped"
    )
    # Only what it allows: a key rotation (or a dry run) has nothing to roll back.
    actions = [
        *(["resume with u"] if record.can_resume else []),
        *(["roll back with r"] if record.can_rollback else []),
    ]
    return text + (" — " + ", or ".join(actions) if actions else "")
