"""A migration's status and stage, and what each status allows: the one place those rules live.

The service enforces them, the CLI and the TUI show or hide actions by them, and their refusals
name the statuses that would have allowed the action, so the words and the rule cannot drift.
"""

from __future__ import annotations

from enum import StrEnum

from tui_migrator.common.errors import BadInput


class Status(StrEnum):
    PLANNED = "planned"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"
    ROLLED_BACK = "rolled_back"

    @property
    def is_live(self) -> bool:
        """A worker is (or should be) moving it: its heartbeat decides whether it really is."""
        return self in LIVE_STATUSES

    @property
    def is_finished(self) -> bool:
        """No worker moves it any more; only an operator's resume or rollback changes it."""
        return self in FINISHED_STATUSES


class MigrationKind(StrEnum):
    """What a migration does to the cells it touches."""

    # Seals plaintext into tokens (the seed's data migration).
    ENCRYPTION = "encryption"
    # Re-seals tokens under an older data key generation with the organization's newest one
    # (``keys rotate``): no value changes, so there is no backup and nothing to roll back.
    ROTATION = "rotation"

    @property
    def described(self) -> str:
        return "key rotation" if self is MigrationKind.ROTATION else "encryption migration"


class Phase(StrEnum):
    """The seed's eight-stage workflow."""

    PLANNING = "planning"
    ANALYSIS = "analysis"
    BACKUP = "backup"
    BATCH_PROCESSING = "batch_processing"
    ENCRYPTION = "encryption"
    VERIFICATION = "verification"
    AUDIT = "audit"
    REPORTING = "reporting"


PHASE_TITLES = {
    Phase.PLANNING: "Migration Planning",
    Phase.ANALYSIS: "Data Analysis & Estimation",
    Phase.BACKUP: "Backup Creation",
    Phase.BATCH_PROCESSING: "Batch Processing",
    Phase.ENCRYPTION: "Encryption & Migration",
    Phase.VERIFICATION: "Integrity Verification",
    Phase.AUDIT: "Audit Trail Creation",
    Phase.REPORTING: "Completion Reporting",
}

LIVE_STATUSES = (Status.RUNNING, Status.PAUSED)
FINISHED_STATUSES = (
    Status.COMPLETED,
    Status.FAILED,
    Status.CANCELLED,
    Status.INTERRUPTED,
    Status.ROLLED_BACK,
)
# A migration in these states may still change or restore data, so it keeps its tables locked.
HOLDING_STATUSES = (
    Status.PLANNED,
    Status.RUNNING,
    Status.PAUSED,
    Status.FAILED,
    Status.CANCELLED,
    Status.INTERRUPTED,
)
# What each operator action needs. A completed migration with failed records may also be
# resumed (to retry them): that depends on the record, see MigrationRecord.can_resume.
CANCELLABLE_STATUSES = (Status.RUNNING, Status.PAUSED, Status.PLANNED, Status.INTERRUPTED)
PAUSABLE_STATUSES = (Status.RUNNING,)
# Continue on a running migration withdraws a pause that has not taken effect yet.
CONTINUABLE_STATUSES = (Status.PAUSED, Status.RUNNING)
RESUMABLE_STATUSES = (Status.FAILED, Status.CANCELLED, Status.INTERRUPTED, Status.PLANNED)
ROLLBACK_STATUSES = (Status.COMPLETED, Status.FAILED, Status.CANCELLED, Status.INTERRUPTED)


def describe_statuses(statuses: tuple[Status, ...]) -> str:
    """'a, b or c', for refusals that say which statuses would have allowed an action."""
    words = [status.value.replace("_", " ") for status in statuses]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def parse_status(text: str) -> Status:
    """A status word an operator typed (``list --status``), or a refusal listing the real ones."""
    try:
        return Status(text)
    except ValueError:
        raise BadInput(
            f"'{text}' is not a migration status.", hint=f"Use one of: {', '.join(s.value for s in Status)}."
        ) from None
