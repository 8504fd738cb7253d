"""Home screen: is the system ready, what happened lately, and the latest migrations."""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.timer import Timer
from textual.widgets import DataTable, Static
from textual.worker import Worker, WorkerState

from tui_migrator.service.health import HealthReport, SystemHealth
from tui_migrator.storage.migration_records import MigrationRecord
from tui_migrator.storage.operators import Action
from tui_migrator.tui.formatting import count, local_time, status_label
from tui_migrator.tui.messages import DashboardLoaded, MonitorRequested
from tui_migrator.tui.screen_frame import KeyFooter, TitleHeader
from tui_migrator.tui.screens.base import AppScreen
from tui_migrator.tui.table_rows import show_rows

LATEST_MIGRATIONS = 10
# Health and the latest migrations move while workers run: read again this often while shown.
REFRESH_SECONDS = 5.0
LOAD_GROUP = "dashboard"
ACTIVITY_TITLE = "Latest migrations (enter opens the monitor)"


class DashboardScreen(AppScreen):
    """Health, alerts, recommendations and the latest migrations (enter follows one)."""

    BINDINGS = [
        Binding("r", "refresh", "Refresh", id="dashboard.refresh", tooltip="Reload health and activity"),
    ]
    AUTO_FOCUS = "#latest-migrations"

    def __init__(self) -> None:
        super().__init__()
        self._timer: Timer | None = None

    def compose(self) -> ComposeResult:
        yield TitleHeader()
        with Horizontal(id="dashboard-top"):
            with Vertical(id="health-panel", classes="panel"):
                yield Static("System health", classes="panel-title")
                yield Static("Loading…", id="health-body")
            with Vertical(id="advice-panel", classes="panel"):
                yield Static("Alerts and recommendations", classes="panel-title")
                # Scrolled, not grown: however much advice there is, the latest migrations keep
                # their room below (styles/dashboard.tcss).
                with VerticalScroll(id="advice-scroll"):
                    yield Static("", id="advice-body")
        with Vertical(id="activity-panel", classes="panel"):
            yield Static(ACTIVITY_TITLE, classes="panel-title")
            yield DataTable(id="latest-migrations", cursor_type="row", zebra_stripes=True)
        yield KeyFooter()

    def on_mount(self) -> None:
        table = self.query_one("#latest-migrations", DataTable)
        # Four columns, so the start time is never cut at 80 columns (the monitor has the rest).
        table.add_columns("migration", "status", "records", "started")
        self.action_refresh()

    def on_screen_resume(self) -> None:
        # Back from another screen (a migration may have started or finished meanwhile).
        self.action_refresh()

    def action_refresh(self) -> None:
        self._load()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # The next read is planned only once this one ended, so slow reads never pile up, and
        # only while the dashboard is in front.
        if event.worker.group == LOAD_GROUP and event.state in (WorkerState.SUCCESS, WorkerState.ERROR):
            if self._timer is not None:
                self._timer.stop()
            self._timer = self.set_timer(REFRESH_SECONDS, self._refresh_if_shown)

    def _refresh_if_shown(self) -> None:
        self._timer = None
        if self.is_current:
            self._load()

    @work(thread=True, group=LOAD_GROUP, exclusive=True, exit_on_error=False)
    def _load(self) -> None:
        service = self.host.service
        health = service.health()
        # Without the right to read migrations the panel says so; asking anyway would only add
        # a refusal to the audit trail on every refresh.
        latest = service.list_migrations(limit=LATEST_MIGRATIONS)[0] if service.can(Action.READ) else None
        self.post_message(DashboardLoaded(health, latest))

    @on(DashboardLoaded)
    def _show(self, message: DashboardLoaded) -> None:
        self.query_one("#health-body", Static).update(_health_text(message.health))
        self.query_one("#advice-body", Static).update(_advice_text(message.health))
        self._fill_latest(message.latest)

    def _fill_latest(self, records: list[MigrationRecord] | None) -> None:
        table = self.query_one("#latest-migrations", DataTable)
        title = self.query_one("#activity-panel .panel-title", Static)
        if records is None:
            show_rows(table, [])
            title.update(
                f"Latest migrations: not shown, {self.host.service.user} has no role that may read them"
            )
            return
        # Said afresh on every load: the empty-database line must not outlive the first migration.
        title.update(ACTIVITY_TITLE if records else "No migrations yet: press n to configure one")
        # Refreshed every few seconds (table_rows: only what changed, the cursor on its row).
        show_rows(
            table,
            [
                (
                    record.id,
                    (
                        record.id,
                        status_label(record),
                        f"{count(record.processed_records)}/{count(record.total_records)}",
                        local_time(record.started_at, seconds=False),
                    ),
                )
                for record in records
            ],
        )

    @on(DataTable.RowSelected, "#latest-migrations")
    def _open(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value is not None:
            self.post_message(MonitorRequested(event.row_key.value))


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
        # The full URL is in the header; here what kind of database it is and how big.
        f"Database:    {_database_text(system)}",
        f"Last 24 h:   {activity.last24_hours} migrations, {activity.success_rate} succeeded",
        f"Average:     {count(activity.average_records_per_migration)} records a migration",
        f"Operator:    {operator.user} ({operator.role or 'no role'}{readonly})",
    ]
    return "\n".join(lines)


def _advice_text(report: HealthReport) -> str:
    lines = [f"ALERT: {alert}" for alert in report.alerts]
    lines += [f"• {line}" for line in report.recommendations]
    return "\n".join(lines) or "No alerts."


def _database_text(system: SystemHealth) -> str:
    size = system.database_bytes
    return system.database_dialect + (f", {size / 2**20:,.1f} MiB" if size is not None else "")
