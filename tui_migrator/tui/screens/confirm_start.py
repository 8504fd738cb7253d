"""The confirmation that starts a migration: the plan in words, its estimate, then Start.

Starting runs the migration in a detached worker process, so it keeps going if the app quits or
the SSH connection drops; once it exists, the app opens its monitor.
"""

from __future__ import annotations

from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static
from textual.worker import Worker, WorkerState

from tui_migrator.common.migration_config import parse_config
from tui_migrator.service.planning import Estimate
from tui_migrator.tui.config_text import summary_lines
from tui_migrator.tui.formatting import count, estimated_duration
from tui_migrator.tui.host import host_of
from tui_migrator.tui.messages import MigrationStarted, MonitorRequested, StartEstimated
from tui_migrator.tui.worker_errors import report_failed_worker


def schedule_lines(values: dict[str, Any]) -> list[str]:
    """When it may take batches, in the summary's columns, each only when set (none: it runs at
    once, at any time): the window in its zone, and the scheduled start as the instant it means
    there (one typed with its own offset is shown in the zone too)."""
    schedule = parse_config(values).schedule
    if schedule is None:
        zone = values["timezone"]
        return [] if zone is None else [f"Time zone:      {zone} (unused: no window, no start time)"]
    zone = schedule.zone.key
    lines = []
    if schedule.window is not None:
        lines.append(f"Window:         {schedule.window.text} daily, {zone}; paused outside it")
    if schedule.not_before is not None:
        local = schedule.not_before.astimezone(schedule.zone).isoformat(sep=" ", timespec="minutes")
        lines.append(f"Not before:     {local} ({zone})")
    return lines


class ConfirmStartModal(ModalScreen[bool]):
    """Summarises the plan and starts it in a detached worker, then opens its monitor."""

    # The issue asks both that `enter` starts the migration and that confirmations default to
    # Cancel. So `enter` is bound to Start explicitly (priority, so it wins over the focused
    # button), while focus starts on Cancel: a stray space or click presses Cancel, and starting
    # takes the deliberate `enter` the dialog asks for in words.
    AUTO_FOCUS = "#confirm-cancel"
    BINDINGS = [
        Binding("enter", "start", "Start", id="confirm_start.start", priority=True),
        # `c` too: tmux's escape-time delays a bare escape.
        Binding("escape,c", "cancel", "Cancel", id="confirm_start.cancel"),
    ]

    def __init__(self, values: dict[str, Any]) -> None:
        super().__init__()
        self._values = values
        self._starting = False

    def compose(self) -> ComposeResult:
        values = self._values
        kind = "dry run" if values["dry_run"] else "migration"
        with Vertical(id="confirm-dialog"):
            yield Static(f"Start this {kind}?", classes="panel-title")
            summary = summary_lines(values) + schedule_lines(values)
            yield Static("\n".join(summary), id="confirm-summary", markup=False)
            yield Static("estimating…", id="confirm-estimate", markup=False)
            with Horizontal(id="confirm-buttons"):
                yield Button("Cancel", id="confirm-cancel")
                yield Button("Start dry run" if values["dry_run"] else "Start", id="confirm-start")
            yield Static("enter starts · esc or c cancels", id="confirm-status", classes="hint", markup=False)

    def on_mount(self) -> None:
        self._estimate()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "start":
            allowed = host_of(self.app).mutation_state()
            return None if allowed and self._starting else allowed
        if action == "cancel":
            # Once the start is under way the migration exists; cancelling this dialog would only
            # lose the way to its monitor.
            return None if self._starting else True
        return True

    def action_cancel(self) -> None:
        if not self._starting:
            self.dismiss(False)

    def action_start(self) -> None:
        if self._starting:
            return
        self._set_starting(True)
        self._start()

    @on(Button.Pressed, "#confirm-cancel")
    def _cancel_pressed(self) -> None:
        self.action_cancel()

    @on(Button.Pressed, "#confirm-start")
    def _start_pressed(self) -> None:
        self.action_start()

    def _set_starting(self, starting: bool) -> None:
        self._starting = starting
        if starting:
            self.query_one("#confirm-status", Static).update("starting…")
        for button in self.query(Button):
            button.disabled = starting
        if not starting:
            self.query_one("#confirm-cancel", Button).focus()
        self.refresh_bindings()

    @work(thread=True, group="confirm-estimate", exclusive=True, exit_on_error=False)
    def _estimate(self) -> None:
        self.post_message(StartEstimated(host_of(self.app).service.estimate(self._values)))

    @work(thread=True, group="confirm-start", exclusive=True, exit_on_error=False)
    def _start(self) -> None:
        record = host_of(self.app).service.start(self._values, detach=True)
        self.post_message(MigrationStarted(record.id))

    @on(StartEstimated)
    def _show_estimate(self, message: StartEstimated) -> None:
        estimate = message.estimate
        tables = sum(1 for rows in estimate.by_table.values() if rows)
        done = count(estimate.already_encrypted_records)
        lines = [
            f"Records:        {count(estimate.estimated_records)} in {tables} {'table' if tables == 1 else 'tables'} ({done} already encrypted)",
            f"Estimated time: {estimated_duration(estimate.estimated_time_seconds)}"
            + _then_the_sweep(estimate),
        ]
        lines += [
            f"FAILED check {check.check}: {check.detail} (start will be refused)"
            for check in estimate.preflight_checks
            if not check.passed
        ]
        self.query_one("#confirm-estimate", Static).update("\n".join(lines))

    @on(MigrationStarted)
    def _started(self, message: MigrationStarted) -> None:
        self.dismiss(True)
        # The dialog is gone once dismissed: the app, which stays, opens the monitor.
        self.app.post_message(MonitorRequested(message.migration_id))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # Worker.StateChanged does not bubble: report a failure here, as every screen does.
        report_failed_worker(self.app, event)
        if event.state is not WorkerState.ERROR:
            return
        # The operator was notified of the error; the dialog says what it means for it.
        if event.worker.group == "confirm-start":
            self.query_one("#confirm-status", Static).update(
                "Not started (see the notification). enter tries again · esc or c cancels"
            )
            self._set_starting(False)
        elif event.worker.group == "confirm-estimate":
            self.query_one("#confirm-estimate", Static).update("Estimate unavailable (see the notification).")


def _then_the_sweep(estimate: Estimate) -> str:
    """SQLite's sweep, which runs by itself after the migration (unless put off) and holds the
    write lock."""
    sweep = estimate.sweep
    if sweep.put_off:
        words = f"; sweep put off ({sweep.duration} when run, writes wait)"
    elif sweep.automatic:
        words = f", then its sweep {sweep.duration} (writes wait)"
    else:
        return ""
    return words if sweep.enough_free_disk else words + "; NOT ENOUGH FREE DISK for it"
