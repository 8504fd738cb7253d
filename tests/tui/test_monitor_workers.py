"""The workers on a migration, read from its record and its audit trail: the owner with its
heartbeat, and each joined worker with when it joined and, once it left, its rows (of batches and
of the windows of the backup copy and verification it did)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from tests.support.migration_helpers import FAST
from tui_migrator.service.facade import MigratorService
from tui_migrator.service.workers import workers_of
from tui_migrator.storage.audit import AuditEntry
from tui_migrator.tui.formatting import worker_words


def _entry(seq: int, operation: str, at: str, **details: Any) -> AuditEntry:
    return AuditEntry(seq, f"audit_{seq:06d}", operation, "op", True, at, "m", details, "", "", "")


def test_the_owner_then_each_joined_worker_with_its_rows_once_it_left(service: MigratorService) -> None:
    record = replace(service.start(FAST), worker="db-a:100")
    entries = [
        _entry(1, "worker_joined", "2026-03-02T09:00:00Z", worker="db-b:200", owner="db-a:100"),
        _entry(2, "worker_joined", "2026-03-02T09:01:00Z", worker="db-c:300", owner="db-a:100"),
        _entry(
            3,
            "worker_left",
            "2026-03-02T09:05:00Z",
            worker="db-b:200",
            rowsProcessed=1200,
            windowRowsByStep={"backup-copy": 900, "verification": 1100},
            leftBecause="the owner is past verification: nothing is left to share",
        ),
        _entry(4, "backup_created", "2026-03-02T09:06:00Z", table="demographics"),
    ]
    workers = workers_of(record, entries)
    assert [(w.worker, w.owner) for w in workers] == [
        ("db-a:100", True),
        ("db-b:200", False),
        ("db-c:300", False),
    ]
    left, working = workers[1], workers[2]
    assert left.rows == 1200 and left.left_at is not None and left.left_because
    assert working.left_at is None and working.rows is None
    assert "(owner, heartbeat" in worker_words(workers[0])
    assert left.window_rows == {"backup-copy": 900, "verification": 1100}
    assert worker_words(left).endswith(
        "after 1,200 rows (and 900 of the backup copy, 1,100 of the verification)"
    )
    assert worker_words(working).endswith(", working")


def test_a_migration_nobody_joined_has_its_owner_alone(service: MigratorService) -> None:
    record = service.start(FAST)
    entries = service.audit_entries(limit=None, migration_id=record.id).entries
    assert [w.owner for w in workers_of(record, entries)] == ([True] if record.worker else [])
