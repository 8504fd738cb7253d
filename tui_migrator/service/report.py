"""Completion reports, and the seed's recommendations and risk assessment for an estimate."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from tui_migrator.service.views import iso, status_data
from tui_migrator.storage.migration_records import MigrationRecord

if TYPE_CHECKING:
    from tui_migrator.engine.estimate import Calibration
    from tui_migrator.service.facade import Plan


def completion_report(record: MigrationRecord, failed: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts, timings, throughput, failures and verification of one migration."""
    running_seconds = max(0.0, record.elapsed_seconds - record.paused_seconds)
    reasons = Counter(item["reason"] for item in failed)
    return {
        "migrationId": record.id,
        "status": record.status.value,
        "dryRun": record.dry_run,
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


def recommendations(rows: int, dialect: str) -> dict[str, Any]:
    """The seed's batch-size and concurrency guidelines applied to this dataset and database."""
    if rows < 1_000:
        batch = 100
    elif rows <= 10_000:
        batch = 500
    else:
        batch = 1000
    concurrency = 1 if dialect == "sqlite" else 5
    return {
        "optimalBatchSize": batch,
        "recommendedConcurrency": concurrency,
        "concurrencyNote": "SQLite has one writer at a time: concurrent batches only wait for each other"
        if dialect == "sqlite"
        else "5-10 for production; watch the connection pool and CPU",
        "suggestedMaintenanceWindow": "Schedule during low-usage hours",
        "backupRecommendation": "Always create backups for production migrations",
    }


def risk_assessment(rows: int, calibration: Calibration, plan: Plan, seconds: float) -> dict[str, Any]:
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
    return {
        "complexity": complexity,
        "downtime": "Zero downtime - reads remain available during migration (through the read API)",
        "rollbackTime": f"about {max(1, round(rollback))} seconds, by decryption or from the sealed backups",
        "dataIntegrity": "HMAC-SHA-256 verification for all records",
        "typedColumnsUsingCompanions": typed,
        "estimatedSeconds": round(seconds, 1),
    }
