"""Starting a migration, running it (here or in a detached worker), joining it, and resuming it.

Every path checks the plan and the pre-flight checks before writing, and audits what it set off.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from tui_migrator.common.errors import StateConflict
from tui_migrator.engine import cpu_pool, detached, scope
from tui_migrator.engine.joiner import JoiningWorker, JoinSummary
from tui_migrator.engine.rotation_runner import RotationRunner
from tui_migrator.engine.runner import MigrationRunner
from tui_migrator.engine.work import MigrationWork
from tui_migrator.service import sweeping
from tui_migrator.service.access import authorize
from tui_migrator.service.planning import calibrate, plan
from tui_migrator.service.preflight import preflight_checks, refuse_failed_checks
from tui_migrator.service.session import Session
from tui_migrator.storage import migration_creation, table_locks
from tui_migrator.storage import migration_records as migrations
from tui_migrator.storage.audit_operations import AuditOperation
from tui_migrator.storage.database import database_file, serialized_write
from tui_migrator.storage.migration_records import MigrationRecord
from tui_migrator.storage.migration_status import (
    RESUMABLE_STATUSES,
    MigrationKind,
    Status,
    describe_statuses,
)
from tui_migrator.storage.operators import Action

log = logging.getLogger(__name__)

OnProgress = Callable[[MigrationRecord], None]


def start(
    session: Session, config_values: dict[str, Any], *, detach: bool, on_progress: OnProgress | None
) -> MigrationRecord:
    """Plan, check and create a migration, then run it here or in a detached worker."""
    authorize(session, Action.MIGRATE, "start")
    migration_plan = plan(session, config_values)
    config = migration_plan.config
    scope.refuse_rows_without_organization(migration_plan.scope)
    scope.refuse_rows_without_key(migration_plan.scope)
    if migration_plan.held and not config.dry_run:
        table_locks.raise_table_held(migration_plan.held)
    calibration, seconds = calibrate(session, migration_plan, reuse_fresh=True)
    # After the calibration, never beside it: the fork server's imports (half a second of one
    # core) would make its sample short (cli/launch.py). They overlap the checks and the
    # migration's creation instead; the CLI has it running already.
    if not detach:
        cpu_pool.start_process_server(config.max_concurrency, migration_plan.scope.pending_rows)
    refuse_failed_checks(
        preflight_checks(session, migration_plan, calibration, database_file(session.engine))
    )
    warnings = []
    if not config.create_backups:
        warnings.append(
            "Backups are disabled (--no-backups): rollback relies on decrypting the tokens alone."
        )
    if config.skip_integrity_checks:
        warnings.append("Integrity checks are skipped: written rows are not read back and verified.")
    if config.sweep_later and session.engine.dialect.name == "sqlite" and not config.dry_run:
        warnings.append(
            "The sweep is put off (--sweep-later): the old plaintext stays in the database file's "
            "free space until tui-migrator sweep ID runs."
        )
    migration_id = migration_creation.create(
        session.engine,
        config=config,
        created_by=session.user,
        tables=[
            (table.name, table.access.mapped.category.value, table.pending_rows)
            for table in migration_plan.scope.tables
        ],
        skipped_records=migration_plan.scope.encrypted_rows,
        estimated_seconds=seconds,
        warnings=warnings,
    )
    session.audit.record(
        AuditOperation.MIGRATION_STARTED,
        user_id=session.user,
        success=True,
        migration_id=migration_id,
        details={
            "batchSize": config.batch_size,
            "maxConcurrency": config.max_concurrency,
            "totalRecords": migration_plan.scope.pending_rows,
            "dryRun": config.dry_run,
            "dataCategories": [category.value for category in config.data_categories],
            "organizationIds": config.organization_ids,
            "createBackups": config.create_backups,
            "sweepLater": config.sweep_later,
            "warnings": warnings,
        },
    )
    if on_progress is not None:
        # The first report is the migration as created, before any batch: whoever follows it
        # knows its id from now on (the CLI's Ctrl-C cancels it safely from this moment).
        on_progress(migrations.get(session.engine, migration_id))
    return run_or_detach(session, migration_id, detach=detach, on_progress=on_progress)


def run(session: Session, migration_id: str, *, on_progress: OnProgress | None) -> MigrationRecord:
    """Run (or resume) a migration in this process until it reaches a final state."""
    authorize(session, Action.MIGRATE, "worker")
    work = _work(session, migration_id)
    kind = migrations.get(session.engine, migration_id).kind
    runner = RotationRunner if kind is MigrationKind.ROTATION else MigrationRunner
    record = runner(work, on_progress=on_progress).run()
    if record.status is Status.COMPLETED:
        sweeping.after_completion(session, migration_id)
    return record


def join(
    session: Session,
    migration_id: str,
    *,
    on_batch: Callable[[JoinSummary], None] | None,
    leave: threading.Event | None = None,
) -> JoinSummary:
    """Take batches of a migration another worker is running, until none are left or ``leave``
    is set (PostgreSQL)."""
    authorize(session, Action.MIGRATE, "join")
    record = migrations.get(session.engine, migration_id)
    if record.kind is MigrationKind.ROTATION:
        raise StateConflict(
            f"Migration {migration_id} is a key rotation, which runs in one worker; another worker "
            "cannot join it.",
            hint=f"Follow it with: tui-migrator status {migration_id}",
        )
    return JoiningWorker(_work(session, migration_id), on_batch=on_batch, leave=leave).run()


def resume(
    session: Session, migration_id: str, *, detach: bool, on_progress: OnProgress | None
) -> MigrationRecord:
    """Continue a cancelled, failed or interrupted migration from its last checkpoint; failed
    records are retried."""
    authorize(session, Action.MIGRATE, "resume")
    with serialized_write(session.engine) as connection:
        # Decided on the row as it is now, locked: a rollback or another resume that started
        # since the operator looked cannot both go ahead. The worker's claim checks again.
        record = migrations.load(connection, migration_id, for_update=True)
        _refuse_unless_resumable(record)
        if record.retries_failed_records:
            # Completion released its tables; retrying its failed records takes them again.
            table_locks.retake(connection, migration_id, [table.name for table in record.tables])
        for table in record.tables:
            if table.failed_records:
                migrations.update_table(connection, migration_id, table.name, done=False)
        # The operator runs it again: a cancel it was stopped by no longer stands.
        migrations.update(connection, migration_id, cancel_requested=False)
        session.audit.append(
            connection,
            AuditOperation.MIGRATION_RESUMED,
            user_id=session.user,
            success=True,
            migration_id=migration_id,
            details={
                "previousStatus": record.status.value,
                "failedRecordsToRetry": record.failed_records,
            },
        )
    return run_or_detach(session, migration_id, detach=detach, on_progress=on_progress)


def _refuse_unless_resumable(record: MigrationRecord) -> None:
    migrations.refuse_during_rollback(record, "resume")
    if not record.can_resume:
        raise StateConflict(
            f"Migration {record.id} is {record.status.value}; only a "
            f"{describe_statuses(RESUMABLE_STATUSES)} migration (or a completed one with failed "
            "records) can be resumed.",
            hint="A paused one continues with: tui-migrator continue " + record.id
            if record.status is Status.PAUSED
            else None,
        )


def run_or_detach(
    session: Session, migration_id: str, *, detach: bool, on_progress: OnProgress | None
) -> MigrationRecord:
    if detach:
        return _spawn_and_await_claim(session, migration_id)
    return run(session, migration_id, on_progress=on_progress)


def _spawn_and_await_claim(session: Session, migration_id: str) -> MigrationRecord:
    """Start the detached worker and return once it has claimed the migration, so whatever the
    operator does next (pause, cancel, a second worker joining) finds it running, not still
    planned or cancelled. A worker that exits before claiming it is an error naming its log."""
    epoch_before = migrations.get(session.engine, migration_id).claim_epoch

    def claimed() -> bool:
        record = migrations.get(session.engine, migration_id)
        return record.claim_epoch > epoch_before or record.cancel_requested

    detached.begin(
        session.settings,
        migration_id,
        claimed,
        what=f"The background worker for {migration_id}",
        undone="nothing was run",
        again=f"tui-migrator resume {migration_id}",
    )
    return migrations.get(session.engine, migration_id)


def _work(session: Session, migration_id: str) -> MigrationWork:
    # Each run seals under the organizations' active keys as they are now: a rotation (in this
    # process or another) may have made a newer generation active since they were read.
    session.keyring.forget_active()
    return MigrationWork(
        session.engine,
        migration_id=migration_id,
        mapping=session.mapping(),
        cipher=session.value_cipher(),
        master_key=session.master_key,
        audit=session.audit,
        user=session.user,
        retry=session.retry_policy,
    )
