"""The workers on a migration, as the migration's record and its audit trail tell them: the owner
(the worker that started or resumed it, with its heartbeat) and every worker that joined it on
PostgreSQL (``worker ID`` from another process or host), with when it joined and, once it has
left, the rows it took (of batches, and of the windows of the backups' read-back and verification
it did) and why it left. A joined worker's rows are known when it leaves: its batches count in
the tables' progress as they commit, not per worker."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from tui_migrator.storage.audit import AuditEntry
from tui_migrator.storage.audit_operations import AuditOperation
from tui_migrator.storage.migration_records import MigrationRecord


@dataclass(frozen=True)
class WorkerView:
    worker: str
    owner: bool
    joined_at: datetime | None = None
    left_at: datetime | None = None
    rows: int | None = None
    # Rows of the windows it did, by step (engine/window_steps.py names them).
    window_rows: dict[str, int] = field(default_factory=dict)
    left_because: str | None = None
    heartbeat_at: datetime | None = None


def workers_of(record: MigrationRecord, entries: list[AuditEntry]) -> list[WorkerView]:
    """The owner first, then joined workers in the order they joined."""
    found: list[WorkerView] = []
    if record.worker:
        found.append(WorkerView(record.worker, owner=True, heartbeat_at=record.heartbeat_at))
    joined: dict[str, WorkerView] = {}
    for entry in sorted(entries, key=lambda e: e.seq):
        worker = entry.details.get("worker")
        if not isinstance(worker, str):
            continue
        moment = datetime.fromisoformat(entry.timestamp.replace("Z", "+00:00"))
        if entry.operation == AuditOperation.WORKER_JOINED.value:
            joined[worker] = WorkerView(worker, owner=False, joined_at=moment)
        elif entry.operation == AuditOperation.WORKER_LEFT.value and worker in joined:
            rows = entry.details.get("rowsProcessed")
            because = entry.details.get("leftBecause")
            windows = entry.details.get("windowRowsByStep")
            joined[worker] = WorkerView(
                worker,
                owner=False,
                joined_at=joined[worker].joined_at,
                left_at=moment,
                rows=rows if isinstance(rows, int) else None,
                window_rows={
                    step: count
                    for step, count in (windows if isinstance(windows, dict) else {}).items()
                    if isinstance(count, int)
                },
                left_because=because if isinstance(because, str) else None,
            )
    return found + list(joined.values())
