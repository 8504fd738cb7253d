"""Home screen: is the system ready, and what happened lately."""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Footer, Header, Static

from tui_migrator.health import HealthReport
from tui_migrator.service import AuditPage
from tui_migrator.tui.formatting import local_time
from tui_migrator.tui.messages import DashboardLoaded
from tui_migrator.tui.screens.base import AppScreen

AUDIT_ROWS = 20


class DashboardScreen(AppScreen):
    """Health, alerts, recommendations and the latest audit entries."""

    BINDINGS = [
        Binding("r", "refresh", "Refresh", id="dashboard.refresh", tooltip="Reload health and activity"),
    ]

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="dashboard-top"):
            with Vertical(id="health-panel", classes="panel"):
                yield Static("System health", classes="panel-title")
                yield Static("Loading…", id="health-body")
            with Vertical(id="advice-panel", classes="panel"):
                yield Static("Alerts and recommendations", classes="panel-title")
                yield Static("", id="advice-body")
        with Vertical(id="activity-panel", classes="panel"):
            yield Static("Recent audit entries", classes="panel-title")
            yield DataTable(id="audit-table", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#audit-table", DataTable)
        table.add_columns("#", "time", "operation", "user", "result", "migration")
        self.action_refresh()

    def action_refresh(self) -> None:
        self._load()

    @work(thread=True, group="dashboard", exclusive=True, exit_on_error=False)
    def _load(self) -> None:
        health = self.app.service.health()
        audit = self.app.service.audit_entries(limit=AUDIT_ROWS)
        self.post_message(DashboardLoaded(health, audit))

    @on(DashboardLoaded)
    def _show(self, message: DashboardLoaded) -> None:
        self.query_one("#health-body", Static).update(_health_text(message.health))
        self.query_one("#advice-body", Static).update(_advice_text(message.health))
        self._fill_audit(message.audit)

    def _fill_audit(self, page: AuditPage) -> None:
        table = self.query_one("#audit-table", DataTable)
        table.clear()
        for entry in page.entries:
            table.add_row(
                str(entry.seq),
                local_time(entry.timestamp),
                entry.operation,
                entry.user_id,
                "ok" if entry.success else "FAILED",
                entry.migration_id or "",
                key=entry.entry_id,
            )


def _health_text(report: HealthReport) -> str:
    system = report.system_health
    activity = report.recent_activity
    operator = report.operator
    encryption = "ready" if system.encryption_system_ready else "NOT READY"
    backups = "ready" if system.backup_system_ready else "NOT READY"
    if system.free_disk_percent is not None:
        backups += f" ({system.free_disk_percent}% disk free)"
    readonly = ", read-only" if operator.readonly else ""
    lines = [
        f"Engine:      {'online' if system.migration_engine_online else 'OFFLINE'}",
        f"Running:     {system.running_migrations} migration(s)",
        f"Encryption:  {encryption} ({system.data_keys} data keys)",
        f"Backups:     {backups}",
        f"Database:    {system.database}",
        f"Last 24 h:   {activity.last24_hours} migrations, success {activity.success_rate or 'n/a'}",
        f"Operator:    {operator.user} ({operator.role or 'no role'}{readonly})",
    ]
    return "\n".join(lines)


def _advice_text(report: HealthReport) -> str:
    lines = [f"ALERT: {alert}" for alert in report.alerts]
    lines += [f"• {line}" for line in report.recommendations]
    return "\n".join(lines) or "No alerts."
