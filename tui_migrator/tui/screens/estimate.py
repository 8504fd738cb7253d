"""Estimate: records, time, storage, advice, risk and pre-flight checks for a configuration.

It estimates the configuration the new-migration form shares on the app (``pending_config``, see
tui/host.py), or the defaults, and estimates again whenever that configuration changed while it
was hidden.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import DataTable, Static
from textual.worker import Worker, WorkerState

from tui_migrator.service.planning import Estimate
from tui_migrator.service.report import Recommendations, RiskAssessment
from tui_migrator.tui.config_text import describe_config
from tui_migrator.tui.formatting import count, estimated_duration
from tui_migrator.tui.messages import EstimateReady
from tui_migrator.tui.screen_frame import KeyFooter, TitleHeader
from tui_migrator.tui.screens.base import AppScreen
from tui_migrator.tui.screens.config_fields import DEFAULT_VALUES


class EstimateScreen(AppScreen):
    """The seed's estimate for the shared configuration; `t` takes its recommendation."""

    BINDINGS = [
        Binding("r", "refresh", "Refresh", id="estimate.refresh", tooltip="Calibrate and estimate again"),
        # Its own letter: `a` is the audit trail everywhere, this screen included.
        Binding(
            "t,f7",
            "apply",
            "Take advice",
            id="estimate.apply",
            tooltip="Put the recommended batch size and concurrency into the new-migration form",
        ),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._values: dict[str, Any] | None = None
        self._estimate: Estimate | None = None

    def compose(self) -> ComposeResult:
        yield TitleHeader()
        yield Static("calibrating…", id="estimate-status", markup=False)
        with VerticalScroll(id="estimate-body"):
            with Horizontal(id="estimate-top"):
                with Vertical(id="summary-panel", classes="panel"):
                    yield Static("Estimate", classes="panel-title")
                    yield Static("", id="summary-body", markup=False)
                with Vertical(id="recommendations-panel", classes="panel"):
                    yield Static("Recommendations", classes="panel-title")
                    yield Static("", id="recommendations-body", markup=False)
            with Horizontal(id="estimate-tables"):
                with Vertical(id="category-panel", classes="panel"):
                    yield Static("Records by category", classes="panel-title")
                    yield DataTable(id="category-table", cursor_type="row")
                with Vertical(id="organization-panel", classes="panel"):
                    yield Static("Records by organization", classes="panel-title")
                    yield DataTable(id="organization-table", cursor_type="row")
            with Vertical(id="risk-panel", classes="panel"):
                yield Static("Risk assessment", classes="panel-title")
                yield Static("", id="risk-body", markup=False)
            with Vertical(id="checks-panel", classes="panel"):
                yield Static("Pre-flight checks", classes="panel-title")
                yield Vertical(id="checks-body")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.query_one("#category-table", DataTable).add_columns("category", "records")
        self.query_one("#organization-table", DataTable).add_columns("organization", "records")

    def on_screen_resume(self) -> None:
        wanted = self.host.pending_config or DEFAULT_VALUES
        if wanted != self._values:
            self._load(wanted)

    def action_refresh(self) -> None:
        self._load(self.host.pending_config or DEFAULT_VALUES)

    def action_apply(self) -> None:
        if self._estimate is None or self._values is None:
            self.notify("Wait for the estimate to finish.", title="Nothing to apply yet", severity="warning")
            return
        advice = self._estimate.recommendations
        values = {
            **self._values,
            "batch_size": advice.optimal_batch_size,
            "max_concurrency": advice.recommended_concurrency,
        }
        self.host.pending_config = values
        self.notify(
            f"Batch size {values['batch_size']}, concurrency {values['max_concurrency']}. "
            "Press n to review the form.",
            title="Recommendation applied",
        )
        self._load(values)

    def _load(self, values: dict[str, Any]) -> None:
        self._values = values
        self._estimate = None
        status = self.query_one("#estimate-status", Static)
        status.update(f"calibrating… ({describe_config(values)})")
        status.remove_class("-failed")
        self._compute(values)

    @work(thread=True, group="estimate", exclusive=True, exit_on_error=False)
    def _compute(self, values: dict[str, Any]) -> None:
        self.post_message(EstimateReady(values, self.host.service.estimate(values)))

    @on(EstimateReady)
    def _show(self, message: EstimateReady) -> None:
        if message.values != self._values:
            return  # an estimate for a configuration that has since changed
        estimate = message.estimate
        self._estimate = estimate
        self.query_one("#estimate-status", Static).update(f"Estimate for {describe_config(message.values)}")
        self.query_one("#summary-body", Static).update(_summary_text(estimate))
        self.query_one("#recommendations-body", Static).update(
            _recommendations_text(estimate.recommendations, message.values)
        )
        self.query_one("#risk-body", Static).update(_risk_text(estimate.risk_assessment))
        _fill_counts(self.query_one("#category-table", DataTable), estimate.by_category)
        _fill_counts(self.query_one("#organization-table", DataTable), estimate.by_organization)
        checks = self.query_one("#checks-body", Vertical)
        checks.remove_children()
        checks.mount_all(
            Static(
                f"{'passed' if check.passed else 'FAILED'}  {check.check}: {check.detail}",
                classes="check " + ("-passed" if check.passed else "-failed"),
                markup=False,
            )
            for check in estimate.preflight_checks
        )

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # The app notified the error; the status line must not keep saying "calibrating…".
        if event.worker.group == "estimate" and event.state is WorkerState.ERROR:
            status = self.query_one("#estimate-status", Static)
            status.update("Estimate failed (see the notification); r tries again.")
            status.add_class("-failed")
            self._clear_results()

    def _clear_results(self) -> None:
        """An earlier estimate under a failed one would read as this configuration's figures."""
        for body in ("#summary-body", "#recommendations-body", "#risk-body"):
            self.query_one(body, Static).update("")
        for table in ("#category-table", "#organization-table"):
            self.query_one(table, DataTable).clear()
        self.query_one("#checks-body", Vertical).remove_children()


def _fill_counts(table: DataTable[Any], counts: dict[str, int]) -> None:
    table.clear()
    for name, records in counts.items():
        table.add_row(name, Text(count(records), justify="right"), key=name)
    table.add_row("total", Text(count(sum(counts.values())), justify="right"), key="total")


def _summary_text(estimate: Estimate) -> str:
    ready = (
        ("yes" if estimate.estimated_records else "yes, but it has nothing to encrypt in this scope")
        if estimate.can_start
        else "NO: " + ", ".join(c.check for c in estimate.preflight_checks if not c.passed) + " failed"
    )
    return "\n".join(
        [
            f"Records:       {count(estimate.estimated_records)}",
            f"Already done:  {count(estimate.already_encrypted_records)}",
            f"Time:          {estimated_duration(estimate.estimated_time_seconds)}",
            f"Storage:       +{estimate.estimated_storage_increase} of the database's size"
            if estimate.estimated_storage_increase != "n/a"
            else "Storage:       n/a",
            f"Sweep:         {estimate.sweep.summary}",
            f"Can start:     {ready}",
        ]
    )


def _recommendations_text(advice: Recommendations, values: dict[str, Any]) -> str:
    return "\n".join(
        [
            f"Batch size:   {advice.optimal_batch_size} (now {values['batch_size']})",
            f"Concurrency:  {advice.recommended_concurrency} (now {values['max_concurrency']})",
            f"• {advice.concurrency_note}",
            f"• {advice.suggested_maintenance_window}",
            f"• {advice.backup_recommendation}",
        ]
    )


def _risk_text(risk: RiskAssessment) -> str:
    return "\n".join(
        [
            f"Complexity:  {risk.complexity}",
            f"Downtime:    {risk.downtime}",
            f"Rollback:    {risk.rollback_time}",
            f"Integrity:   {risk.data_integrity}",
        ]
    )
