"""Completion reports, and the seed's recommendations and risk assessment for an estimate."""

from __future__ import annotations

from collections import Counter
from typing import Any

from tui_migrator.common.models import ResponseModel
from tui_migrator.engine import batch_size
from tui_migrator.engine.estimate import Calibration
from tui_migrator.engine.plan import Plan
from tui_migrator.service.views import iso, status_data
from tui_migrator.storage.migration_records import MigrationRecord


class Recommendations(ResponseModel):
    """The seed's guidelines for this dataset; the estimate screen can apply the first two."""

    optimal_batch_size: int
    recommended_concurrency: int
    concurrency_note: str
    suggested_maintenance_window: str
    backup_recommendation: str


class RiskAssessment(ResponseModel):
    complexity: str
    downtime: str
    rollback_time: str
    data_integrity: str
    typed_columns_using_companions: int
    estimated_seconds: float


def completion_report(
    record: MigrationRecord, failed: list[dict[str, Any]], *, sweep: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Counts, timings, throughput, failures, verification and sweep of one migration."""
    running_seconds = record.elapsed_seconds
    reasons = Counter(item["reason"] for item in failed)
    return {
        "migrationId": record.id,
        "status": record.status.value,
        "dryRun": record.dry_run,
        "kind": record.kind.value,
        "createdBy": record.created_by,
        "config": record.config.to_json_data(),
        "counts": {
            "totalRecords": record.total_records,
            "processedRecords": record.processed_records,
            "encryptedRecords": record.encrypted_records,
            "failedRecords": record.failed_records,
            "alreadyEncryptedRecords": record.skipped_records,
        },
        "timing": {
            "startedAt": iso(record.started_at),
            "completedAt": iso(record.completed_at),
            "elapsedSeconds": round(record.elapsed_seconds, 2),
            "pausedSeconds": round(record.paused_seconds, 2),
            "estimatedSeconds": None
            if record.estimated_seconds is None
            else round(record.estimated_seconds, 2),
            "phaseSeconds": {phase: round(seconds, 3) for phase, seconds in record.phase_seconds.items()},
        },
        "throughput": {
            "recordsPerSecond": round(record.encrypted_records / running_seconds, 1)
            if running_seconds
            else None,
        },
        "failures": {
            "count": len(failed),
            "byReason": dict(reasons.most_common()),
            "byTable": dict(Counter(item["table_name"] for item in failed)),
        },
        "verification": record.verification,
        # Whether the plaintext the UPDATEs left in the database files was removed, what proved
        # it, and what no sweep reaches (service/sweeping.py).
        "sweep": sweep,
        "backups": [
            {
                "table": t.name,
                "backupTable": t.backup_table,
                "rows": t.backup_rows,
                "verified": t.backup_verified,
            }
            for t in record.tables
            if t.backup_table
        ],
        "warnings": record.warnings,
        "errorMessage": record.error_message,
        "progress": status_data(record)["progress"],
    }


def recommendations(rows: int, dialect: str) -> Recommendations:
    """The seed's batch-size and concurrency guidelines applied to this dataset and database."""
    concurrency = 2 if dialect == "sqlite" else 5
    return Recommendations(
        optimal_batch_size=batch_size.recommended(rows),
        recommended_concurrency=concurrency,
        concurrency_note="SQLite has one writer at a time: 2 keeps it writing while worker processes seal "
        "the next batch; more only queues for the writer"
        if dialect == "sqlite"
        else "5-10 for production, watching the connection pool and the server's CPU. Worker "
        "processes are one per core this machine lets the tool use: past those cores, more adds "
        "batches in flight, each holding its rows locked, not processes",
        suggested_maintenance_window="Schedule during low-usage hours",
        backup_recommendation="Always create backups for production migrations",
    )


def risk_assessment(rows: int, calibration: Calibration, plan: Plan, seconds: float) -> RiskAssessment:
    typed = sum(
        1
        for table in plan.scope.tables
        for column in table.access.mapped.columns
        if column.companion is not None
    )
    complexity = "Low" if rows < 10_000 and typed == 0 else ("Medium" if rows < 1_000_000 else "High")
    # Rollback reads, decrypts and writes each row once: about the encrypt and write stages again.
    rollback = rows * (
        calibration.per_row("read") + calibration.per_row("encrypt") + calibration.per_row("write")
    )
    return RiskAssessment(
        complexity=complexity,
        downtime="Zero downtime - reads remain available during migration (through the read API)",
        rollback_time=f"about {_seconds(max(1, round(rollback)))}, by decryption or from the sealed backups",
        data_integrity="HMAC-SHA-256 verification for all records",
        typed_columns_using_companions=typed,
        estimated_seconds=round(seconds, 1),
    )


def _seconds(whole: int) -> str:
    return "1 second" if whole == 1 else f"{whole} seconds"
