"""The seed's response shapes, built from the core's records, for both faces.

Field names follow the HTTP design (camelCase, ``migrationId``, ``progress.processedRecords``
...): extra fields are added, none renamed.
"""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tui_migrator.common.migration_config import MigrationConfig
from tui_migrator.common.settings import Settings
from tui_migrator.common.windows import zone_named
from tui_migrator.engine import control as run_control
from tui_migrator.service.hints import addressed
from tui_migrator.storage.migration_records import MigrationRecord
from tui_migrator.storage.migration_status import PHASE_TITLES, Phase, Status

if TYPE_CHECKING:
    from tui_migrator.service.sweeping import SweepStatus
    from tui_migrator.storage.audit import AuditEntry, AuditVerification
    from tui_migrator.storage.keyring import DataKeyInfo

ERROR_RATE_ALERT = 0.05
SLOW_RATE_ALERT = 0.5
MEMORY_ALERT = 0.80
DISK_ALERT = 0.20


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def as_minutes(seconds: float) -> float:
    """The seed's minutes fields: tenths of a minute from one minute up, two significant
    digits below it, so a short time never reads as 0 (0.8 s is 0.013, not 0.0). The seconds
    fields beside them carry the figure itself."""
    if seconds <= 0:
        return 0.0
    minutes = seconds / 60
    return round(minutes, 1) if minutes >= 1 else float(f"{minutes:.2g}")


def status_data(
    record: MigrationRecord, *, disk_path: Path | None = None, sweep: SweepStatus | None = None
) -> dict[str, Any]:
    """The seed's status object; ``sweep`` (when the caller read it) says whether the plaintext
    the migration left in the database files was swept."""
    total = record.total_records
    processed = record.processed_records
    elapsed = record.elapsed_seconds
    remaining = record.remaining_seconds
    phase = record.phase
    return {
        "id": record.id,
        "migrationId": record.id,
        "status": record.status.value,
        "phase": phase,
        "phaseTitle": _phase_title(phase),
        "dryRun": record.dry_run,
        # "encryption" (the seed's migration) or "rotation" (keys rotate: tokens re-sealed under
        # a new data key generation; its encryptedRecords are the rows re-sealed).
        "kind": record.kind.value,
        "progress": {
            "percentage": round(100 * processed / total, 1)
            if total
            else (100.0 if record.is_complete else 0.0),
            "processedRecords": processed,
            "totalRecords": total,
            "encryptedRecords": record.encrypted_records,
            "failedRecords": record.failed_records,
            "skippedRecords": record.skipped_records,
            "ratePerSecond": round(record.rate_per_second, 1) if record.rate_per_second else None,
            # The size in use while it runs (it adapts); the configured one otherwise.
            "batchSize": record.batch_size_current or record.config.batch_size,
        },
        "phaseProgress": phase_progress_data(record),
        "timing": {
            "startedAt": iso(record.started_at),
            "completedAt": iso(record.completed_at),
            "elapsedMinutes": as_minutes(elapsed),
            "estimatedRemainingMinutes": None if remaining is None else as_minutes(remaining),
            "elapsedSeconds": round(elapsed, 1),
            "estimatedRemainingSeconds": None if remaining is None else round(remaining, 1),
            "pausedSeconds": round(record.paused_seconds, 1),
            # Elapsed plus remaining while it runs; the time it took once it ended (never less
            # than elapsed). What was estimated before it started is kept beside it.
            "estimatedTotalSeconds": _total_seconds(record),
            "initialEstimateSeconds": None
            if record.estimated_seconds is None
            else round(record.estimated_seconds, 1),
            "heartbeatAt": iso(record.heartbeat_at),
        },
        "config": record.config.to_json_data(),
        "errorMessage": record.error_message,
        "isComplete": record.is_complete,
        "canRollback": record.can_rollback,
        "createdBy": record.created_by,
        "worker": record.worker,
        "tables": [
            {
                "name": table.name,
                "category": table.category,
                "totalRecords": table.total_records,
                "processedRecords": table.processed_records,
                "encryptedRecords": table.encrypted_records,
                "failedRecords": table.failed_records,
                "done": table.done,
                "backupTable": table.backup_table,
                "backupRows": table.backup_rows,
                "backupVerified": table.backup_verified,
            }
            for table in record.tables
        ],
        "cancellation": None
        if not (record.cancel_requested or record.cancelled_at)
        else {
            "reason": record.cancel_reason,
            "cancelledAt": iso(record.cancelled_at),
            "cancelledBy": record.cancelled_by,
        },
        "pauseRequested": record.pause_requested,
        # Why it is paused when its own schedule paused it; None for an operator's pause.
        "pauseReason": record.pause_reason if record.status is Status.PAUSED else None,
        "schedule": schedule_data(record.config, run_control.wall_clock()),
        "alerts": alerts(record, disk_path=disk_path),
        "warnings": record.warnings,
        "verification": record.verification,
        "rollback": rollback_data(record),
        "sweep": None if sweep is None else sweep.to_json(),
    }


def schedule_data(config: MigrationConfig, now: datetime) -> dict[str, Any] | None:
    """The migration's maintenance window and scheduled start, judged at ``now``; None when it
    has neither."""
    schedule = config.schedule
    if schedule is None:
        return None
    window = schedule.window
    is_open = None if window is None else window.is_open(now)
    return {
        "window": config.window,
        "timezone": config.timezone,
        "windowOpen": is_open,
        # The opening it is in or the next one; when that one closes.
        "nextOpening": None if window is None else iso(window.next_opening(now)),
        "closesAt": None if window is None else iso(window.closes_at(now)),
        "notBefore": iso(schedule.not_before),
        # The first moment from now it may take batches.
        "runsFrom": iso(schedule.runs_from(now)),
    }


def schedule_words(status: dict[str, Any]) -> list[str]:
    """Lines for the text and the TUI from a :func:`status_data` object: the schedule
    ("Schedule: window 01:00-05:00 Europe/Berlin, closed; opens 2026-12-24 01:00+01:00") and,
    while the schedule pauses it, why and until when."""
    data = status["schedule"]
    if data is None:
        return []
    zone = data["timezone"]
    parts = []
    if data["window"] is not None:
        state = "open" if data["windowOpen"] else "closed"
        parts.append(f"window {data['window']} {zone}, {state}")
        parts.append(
            f"closes {_local(data['closesAt'], zone)}"
            if data["windowOpen"]
            else f"opens {_local(data['nextOpening'], zone)}"
        )
    if data["notBefore"] is not None:
        parts.append(f"not before {_local(data['notBefore'], zone)}")
    lines = ["Schedule: " + "; ".join(parts)]
    if status["pauseReason"]:
        lines.append(
            f"Paused: {status['pauseReason']}; it continues by itself at {_local(data['runsFrom'], zone)}"
        )
    return lines


def schedule_lines(record: MigrationRecord) -> list[str]:
    """:func:`schedule_words` for a record, judged now (the TUI's monitor shows these)."""
    return schedule_words(
        {
            "schedule": schedule_data(record.config, run_control.wall_clock()),
            "pauseReason": record.pause_reason if record.status is Status.PAUSED else None,
        }
    )


def _local(instant: str, zone_name: str) -> str:
    moment = datetime.fromisoformat(instant.replace("Z", "+00:00"))
    return moment.astimezone(zone_named(zone_name)).isoformat(sep=" ", timespec="minutes")


def _total_seconds(record: MigrationRecord) -> float | None:
    elapsed = record.elapsed_seconds
    if record.status.is_live:
        remaining = record.remaining_seconds
        return None if remaining is None else round(elapsed + remaining, 1)
    return round(elapsed, 1)


def phase_progress_data(record: MigrationRecord) -> dict[str, Any] | None:
    """Rows done in the backup or verification under way; None in any other phase."""
    progress = record.phase_progress
    if progress is None:
        return None
    remaining = record.phase_remaining_seconds
    return {
        "phase": progress.phase,
        "done": progress.done,
        "total": progress.total,
        "percentage": round(100 * progress.done / progress.total, 1) if progress.total else 100.0,
        "ratePerSecond": progress.rate_per_second,
        "estimatedRemainingSeconds": None if remaining is None else round(remaining, 1),
        "at": iso(progress.at),
    }


def _phase_title(phase: str | None) -> str | None:
    # Stored as text: a phase this version does not know (an older or newer tool's) has no title.
    if phase is None or phase not in Phase.__members__.values():
        return None
    return PHASE_TITLES[Phase(phase)]


def list_data(records: list[MigrationRecord], *, everything: list[MigrationRecord]) -> dict[str, Any]:
    """``records`` is the page shown; the summary counts ``everything``, whatever the filter."""
    by_status = {status.value: 0 for status in Status}
    for record in everything:
        by_status[record.status.value] += 1
    return {
        "migrations": [
            {
                "id": record.id,
                "status": record.status.value,
                "startedAt": iso(record.started_at),
                "completedAt": iso(record.completed_at),
                "totalRecords": record.total_records,
                "processedRecords": record.processed_records,
                "encryptedRecords": record.encrypted_records,
                "failedRecords": record.failed_records,
                "errorMessage": record.error_message,
                "dryRun": record.dry_run,
                "kind": record.kind.value,
                "createdBy": record.created_by,
                "config": record.config.to_json_data(),
            }
            for record in records
        ],
        "summary": {"total": len(everything), "byStatus": by_status},
    }


def keys_data(
    infos: list[DataKeyInfo], *, master_key_fingerprint: str, master_key_source: str
) -> dict[str, Any]:
    """The data keys as ``keys list --json`` and ``GET /keys`` give them: the master key's
    fingerprint and where it was read from, and what may be shown of each data key (never
    key material)."""
    return {
        "masterKeyFingerprint": master_key_fingerprint,
        "masterKeySource": master_key_source,
        "dataKeys": [
            {
                "keyId": info.key_id,
                "organizationId": info.organization_id,
                "generation": info.generation,
                "algorithm": info.algorithm,
                "status": info.status,
                "createdAt": info.created_at.isoformat(),
                "createdBy": info.created_by,
            }
            for info in infos
        ],
    }


def start_data(record: MigrationRecord, settings: Settings | None = None) -> dict[str, Any]:
    """The seed's start response; its hint names the database of ``settings``."""
    return {
        "migrationId": record.id,
        "status": "started",
        "dryRun": record.dry_run,
        "config": record.config.to_json_data(),
        "message": "Data migration started successfully",
        "warning": addressed(
            "Migration is running in a background worker; do not remove its database until it "
            f"completes. Follow it with: tui-migrator status {record.id}",
            settings,
        ),
        "totalRecords": record.total_records,
        "warnings": record.warnings,
    }


def foreground_start_data(
    record: MigrationRecord, settings: Settings | None = None, *, sweep: SweepStatus | None = None
) -> dict[str, Any]:
    """A start run in the foreground answers once it has ended: the final status object, with
    the seed's start fields beside it (``status`` is then the final one, not "started")."""
    data = status_data(record, sweep=sweep)
    ended = record.status.value
    data["message"] = (
        "Data migration started successfully and completed"
        if record.status is Status.COMPLETED
        else f"Data migration started and ended {ended}"
    )
    data["warning"] = addressed(
        f"The migration ran in the foreground and has ended ({ended}). See it again with: "
        f"tui-migrator status {record.id}",
        settings,
    )
    return data


def cancel_data(record: MigrationRecord) -> dict[str, Any]:
    finished = record.status is Status.CANCELLED
    return {
        "migrationId": record.id,
        "status": record.status.value if finished else "cancelling",
        "cancelledAt": iso(record.cancelled_at),
        "reason": record.cancel_reason,
        "message": "Migration cancelled successfully"
        if finished
        else "Cancel requested; the worker stops after its in-flight batches",
        "note": "Partially migrated data remains encrypted. Use rollback to restore if needed, "
        "or resume to finish.",
        "encryptedRecords": record.encrypted_records,
    }


def alerts(record: MigrationRecord, *, disk_path: Path | None = None) -> list[str]:
    """The seed's alert conditions, in words."""
    found = []
    processed = record.processed_records
    if processed and record.failed_records / processed > ERROR_RATE_ALERT:
        found.append(
            f"High error rate: {100 * record.failed_records / processed:.1f}% of records failed (over 5%)."
        )
    if record.status is Status.RUNNING and record.rate_per_second and record.estimated_seconds:
        expected = record.total_records / record.estimated_seconds if record.estimated_seconds > 0 else None
        if expected and record.rate_per_second < SLOW_RATE_ALERT * expected:
            found.append(
                f"Slow processing: {record.rate_per_second:.0f} records/s, under half the "
                f"estimated {expected:.0f} records/s."
            )
    memory = memory_used_fraction()
    if memory is not None and memory > MEMORY_ALERT:
        found.append(f"Memory: {100 * memory:.0f}% in use (over 80%).")
    if disk_path is not None:
        target = disk_path if disk_path.exists() else disk_path.parent
        if target.exists():
            usage = shutil.disk_usage(target)
            if usage.total and usage.free / usage.total < DISK_ALERT:
                found.append(f"Disk space: {100 * usage.free / usage.total:.0f}% free (under 20%).")
    if record.status is Status.INTERRUPTED:
        found.append("The worker stopped without finishing (no heartbeat): resume or roll back.")
    return found


def memory_used_fraction() -> float | None:
    """From /proc/meminfo where there is one (Linux); None elsewhere."""
    try:
        fields = dict(
            line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines() if ":" in line
        )
        total = int(fields["MemTotal"].split()[0])
        available = int(fields["MemAvailable"].split()[0])
    except (OSError, KeyError, ValueError):
        return None
    return 1 - available / total if total else None


def rollback_data(record: MigrationRecord) -> dict[str, Any] | None:
    """The last rollback: finished (when and how long), running, or stopped part-way."""
    progress = record.rollback_progress
    if record.rolled_back_at is None and progress is None:
        return None
    data: dict[str, Any] = {
        "rolledBackAt": iso(record.rolled_back_at),
        "durationSeconds": None if record.rollback_seconds is None else round(record.rollback_seconds, 2),
        "inProgress": record.rolling_back,
    }
    if progress is not None:
        data.update(
            {
                "startedAt": iso(progress.started_at),
                "heartbeatAt": iso(progress.heartbeat_at),
                "restoredRows": progress.restored_rows,
                "rowsToRestore": progress.rows_to_restore,
                "table": progress.table,
                "tablesDone": progress.tables_done,
                "tablesTotal": progress.tables_total,
                "stoppedPartWay": progress.stopped_part_way and record.status is not Status.ROLLED_BACK,
                "error": progress.error,
            }
        )
    return data


# A rollback that stopped part-way without recording why (the face adds where its log is).
_SILENT_ROLLBACK_STOP = (
    "its process stopped without finishing: killed, its machine went down, or it could not start"
)


def rollback_stop_reason(record: MigrationRecord, *, log_hint: str) -> str:
    """Why the rollback stopped part-way: the reason it recorded, or that its process went
    silent and where to look (``log_hint``: the face's, ": g shows its log" say)."""
    progress = record.rollback_progress
    if progress is not None and progress.error:
        return progress.error
    return _SILENT_ROLLBACK_STOP + log_hint


def rollback_words(record: MigrationRecord, *, log_hint: str, again: str) -> str | None:
    """A rollback running or stopped part-way, in words, for the monitor and ``status``; None
    when there is neither. ``log_hint`` and ``again`` are the face's: where a silent one's log
    is (see :func:`rollback_stop_reason`) and how to run a stopped one again (its key, or its
    command)."""
    progress = record.rollback_progress
    if progress is None or record.status is Status.ROLLED_BACK:
        return None
    done = f"{progress.restored_rows:,} of {progress.rows_to_restore:,} rows restored"
    if record.rolling_back:
        where = (
            f"; table {progress.table}, {progress.tables_done} of {progress.tables_total} tables done"
            if progress.table
            else ""
        )
        return f"ROLLING BACK: {done}{where}"
    if progress.stopped_part_way:
        return f"ROLLBACK STOPPED ({done}): {rollback_stop_reason(record, log_hint=log_hint)} — {again}"
    return None


def rollback_started_data(record: MigrationRecord, settings: Settings | None = None) -> dict[str, Any]:
    """A rollback started in a background process (the API's, and the CLI's --detach)."""
    return {
        "migrationId": record.id,
        "status": record.status.value,
        "rollback": rollback_data(record),
        "message": "Rollback started in a background process",
        "note": addressed(f"Follow it with: tui-migrator status {record.id}", settings),
    }


def failed_data(migration_id: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The records a migration could not seal, with why (never their values)."""
    return {
        "migrationId": migration_id,
        "failedRecords": [
            {
                "table": row["table_name"],
                "key": row["key_display"],
                "reason": row["reason"],
                "attempts": row["attempts"],
                "lastFailedAt": iso(row["last_failed_at"]),
            }
            for row in rows
        ],
    }


def audit_data(
    entries: list[AuditEntry], total_entries: int, verification: AuditVerification
) -> dict[str, Any]:
    """The seed's audit response (a page of ``entries`` of ``total_entries``);
    ``secureAuditTrail`` is whether the chain verified."""
    return {
        "auditEntries": [audit_entry_data(entry) for entry in entries],
        "totalEntries": total_entries,
        "secureAuditTrail": verification.intact,
    }


def audit_entry_data(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.entry_id,
        "sequence": entry.seq,
        "operation": entry.operation,
        "userId": entry.user_id,
        "success": entry.success,
        "timestamp": entry.timestamp,
        "migrationDetails": {"migrationId": entry.migration_id, **entry.details},
        "cryptographicProof": f"hmac-sha256:{entry.proof}",
        "entryHash": entry.entry_hash,
        "previousHash": entry.previous_hash,
    }


def audit_verification_data(verification: AuditVerification) -> dict[str, Any]:
    """The whole chain's verification (``audit --verify --json``, evidence bundles)."""
    return {
        "intact": verification.intact,
        "verifiedEntries": verification.verified_entries,
        "totalEntries": verification.total_entries,
        "firstBrokenSequence": verification.first_broken_seq,
        "firstBrokenEntryId": verification.first_broken_entry_id,
        "problem": verification.problem,
        "anchoredEntries": verification.anchored_entries,
        "anchor": verification.anchor,
    }
