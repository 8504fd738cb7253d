"""Messages workers post to the app when a service call finishes."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from tui_migrator.service.health import HealthReport
from tui_migrator.storage.migration_records import MigrationRecord


@dataclass
class DashboardLoaded(Message):
    health: HealthReport
    # None when the operator may not read migrations.
    latest: list[MigrationRecord] | None
