"""Every message of the app, in one place.

Service calls run in thread workers, which must not touch widgets: each posts a message with
what it found, and the screen that started it shows it. Screens never import the app either:
what only the app can do (open the monitor over any screen) they ask for with a message that
bubbles up to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual.message import Message

from tui_migrator.service.health import HealthReport
from tui_migrator.service.inspection import AuditPage
from tui_migrator.service.logs import LogTail
from tui_migrator.service.planning import Estimate
from tui_migrator.service.sweeping import SweepStatus
from tui_migrator.storage.audit import AuditEntry, AuditVerification
from tui_migrator.storage.keyring import DataKeyInfo
from tui_migrator.storage.migration_records import MigrationRecord

# -- asked of the app --------------------------------------------------------------------------


@dataclass
class MonitorRequested(Message):
    """Open the monitor of this migration on top of the current screen."""

    migration_id: str


# -- dashboard ---------------------------------------------------------------------------------


@dataclass
class DashboardLoaded(Message):
    health: HealthReport
    # None when the operator may not read migrations.
    latest: list[MigrationRecord] | None


# -- new migration and its confirmation ---------------------------------------------------------


@dataclass
class ScopeCounted(Message):
    """Records still to encrypt, per category and per organization, for the whole database."""

    by_category: dict[str, int]
    by_organization: dict[str, int]
    # Still to encrypt per category, then per organization: what a selection of both holds.
    by_category_and_organization: dict[str, dict[str, int]]
    already_encrypted: int


@dataclass
class StartEstimated(Message):
    estimate: Estimate


@dataclass
class MigrationStarted(Message):
    migration_id: str


# -- estimate ----------------------------------------------------------------------------------


@dataclass
class EstimateReady(Message):
    values: dict[str, Any]
    estimate: Estimate


# -- migrations list ---------------------------------------------------------------------------


@dataclass
class MigrationsLoaded(Message):
    """Every migration, newest first, and the seed's count of them by status."""

    records: list[MigrationRecord]
    by_status: dict[str, int]


# -- monitor -----------------------------------------------------------------------------------


@dataclass
class MonitorUpdated(Message):
    record: MigrationRecord
    entries: list[AuditEntry]
    sweep: SweepStatus

    def can_replace(self, message: Message) -> bool:
        # Only the newest state matters: a queued older update is dropped, not painted.
        return isinstance(message, MonitorUpdated)


@dataclass
class ActionDone(Message):
    """A monitor action (cancel, pause, continue, rollback) went through: tell the operator.

    Posted to the app, not the monitor: a rollback can outlast the operator's stay on the
    monitor, and its outcome must still be told.
    """

    text: str


@dataclass
class SweepDone(Message):
    """A sweep ran: what it proved, in words. Posted to the app, like ActionDone; one that
    found plaintext, or could not prove anything, is told as a warning."""

    text: str
    succeeded: bool


@dataclass
class FailedRecordsLoaded(Message):
    """The records a migration could not process, to show in their dialog."""

    rows: list[dict[str, Any]]


# -- audit -------------------------------------------------------------------------------------


@dataclass
class AuditLoaded(Message):
    page: AuditPage


@dataclass
class AuditVerified(Message):
    verification: AuditVerification
    page: AuditPage


# -- keys ------------------------------------------------------------------------------------


@dataclass
class KeysLoaded(Message):
    """The data keys (None when the operator may not read them), the master key's fingerprint
    and where it was read from, and why this operator may not rotate keys (None when they may)."""

    infos: list[DataKeyInfo] | None
    fingerprint: str
    source: str
    denied_reason: str | None


# -- log view ----------------------------------------------------------------------------------


@dataclass
class LogsLoaded(Message):
    """The tails of the error log and, when the view is for a migration, of its worker log."""

    errors: LogTail
    worker: LogTail | None
