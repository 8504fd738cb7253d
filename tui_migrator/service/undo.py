"""Undoing a migration (rollback) and dropping its sealed backups once they are no longer wanted.

Both destroy something an operator may need, so both ask for confirmation before anything else,
and each holds the migration's operation guard while it runs (a sweep or the other one waits).
Afterwards the database files are swept (service/sweeping.py).
"""

from __future__ import annotations

import logging
import secrets
from contextlib import ExitStack
from dataclasses import replace

from sqlalchemy.exc import DBAPIError

from tui_migrator.common.errors import BadInput, Interrupted, MigratorError, OperationFailed, StateConflict
from tui_migrator.crypto.ciphers import RowSealer
from tui_migrator.engine import backup, detached, rollback
from tui_migrator.engine.retry import RetryPolicy, database_failure, with_retries
from tui_migrator.engine.rollback import RollbackResult
from tui_migrator.service import sweeping
from tui_migrator.service.access import authorize
from tui_migrator.service.session import Session
from tui_migrator.storage import (
    migration_claims,
    operation_guard,
    rollback_progress,
    sweep_records,
    table_locks,
)
from tui_migrator.storage import migration_records as migrations
from tui_migrator.storage.audit_operations import AuditOperation
from tui_migrator.storage.database import serialized_write
from tui_migrator.storage.migration_records import MigrationRecord
from tui_migrator.storage.migration_status import ROLLBACK_STATUSES, MigrationKind, Status, describe_statuses
from tui_migrator.storage.operators import Action
from tui_migrator.storage.rollback_progress_writer import ProgressWriter
from tui_migrator.storage.tables import utc_now

log = logging.getLogger(__name__)


def roll_back(
    session: Session, migration_id: str, *, confirm: bool, ticket: str | None = None
) -> tuple[MigrationRecord, RollbackResult]:
    """Restore every value the migration encrypted and remove what it added, in this process
    (the detached process of roll_back_in_background passes the ticket it was given)."""
    _require_confirmation(migration_id, confirm)
    authorize(session, Action.MIGRATE, "rollback")
    with ExitStack() as guarded:
        try:
            guarded.enter_context(operation_guard.exclusive(session.engine, migration_id, "rollback"))
            record, started = _claim_rollback(session, migration_id, ticket)
        except MigratorError as refusal:
            if ticket is not None:
                _record_unbegun(session, migration_id, ticket, str(refusal), {"refused": True})
            raise
        result = _roll_back_now(session, record, started)
    # SQLite sweeps anew: the rollback's UPDATEs left the tokens' old row versions behind.
    sweeping.after_change(session, migration_id)
    return migrations.get(session.engine, migration_id), result


def roll_back_in_background(session: Session, migration_id: str, *, confirm: bool) -> MigrationRecord:
    """Check that the rollback may run, then run it in a detached process (``rollback ID
    --confirm``) that survives the terminal; it reports its progress in the migration's record
    (storage.rollback_progress). Returns once that process has taken the migration, so what
    the operator sees next is the rollback running; a process refused, or gone before it
    began, is an error saying why (and its mark says so too, see _record_unbegun)."""
    _require_confirmation(migration_id, confirm)
    authorize(session, Action.MIGRATE, "rollback")
    ticket = secrets.token_hex(8)
    with operation_guard.exclusive(session.engine, migration_id, "rollback"):
        marked, _started = _claim_rollback(session, migration_id, ticket, requested=True)
    # The detached process takes the guard again and checks again (with the ticket, so the
    # mark above does not refuse it): if another rollback slipped in between, it is refused
    # there, in the audit trail and the migration's log.
    process = detached.spawn(
        session.settings,
        migration_id,
        command=("rollback", migration_id, "--confirm", "--ticket", ticket),
    )
    what = f"The background rollback of {migration_id}"
    exit_code = detached.await_begun(
        process, lambda: _begun_or_refused(session, migration_id, marked.claim_epoch, ticket), what=what
    )
    record = migrations.get(session.engine, migration_id)
    again = f"tui-migrator rollback {migration_id} --confirm"
    refusal = _own_refusal(record, ticket)
    if refusal is not None:
        raise OperationFailed(
            f"{what} was refused: {refusal}", hint=detached.see_log(session.settings, migration_id, again)
        )
    if exit_code is not None:
        error = detached.not_begun(
            session.settings,
            migration_id,
            what=what,
            exit_code=exit_code,
            undone="nothing was restored",
            again=again,
        )
        _record_unbegun(session, migration_id, ticket, error.message, {"exitCode": exit_code})
        raise error
    return record


def _begun_or_refused(session: Session, migration_id: str, epoch: int, ticket: str) -> bool:
    """Whether the detached rollback took the migration (it raised the claim epoch past its
    requester's mark) or recorded its refusal in that mark."""
    record = migrations.get(session.engine, migration_id)
    return record.claim_epoch > epoch or _own_refusal(record, ticket) is not None


def _own_mark(record: MigrationRecord, ticket: str) -> rollback_progress.RollbackProgress | None:
    """The mark of the rollback asked for with ``ticket``, while the record holds it (a
    rollback that claimed the migration since wrote its own)."""
    progress = record.rollback_progress
    return progress if progress is not None and progress.ticket == ticket else None


def _own_refusal(record: MigrationRecord, ticket: str) -> str | None:
    mark = _own_mark(record, ticket)
    return None if mark is None else mark.error


def _record_unbegun(
    session: Session, migration_id: str, ticket: str, reason: str, details: dict[str, object]
) -> None:
    """A detached rollback that did not begin (refused: another rollback, purge-backups or sweep
    held the guard, the migration changed after it was asked for; or its process exited before
    it could even look): the mark its requester wrote says so at once, with the reason, instead
    of "rolling back" until its heartbeat went stale and then "stopped" with no reason but in
    the log. Only that mark: a rollback that claimed the migration since wrote its own, which
    is not this one's to change. Audited, since no one saw it happen."""
    try:
        with serialized_write(session.engine) as connection:
            mark = _own_mark(migrations.load(connection, migration_id, for_update=True), ticket)
            if mark is None or mark.finished or mark.error:
                return
            stopped = replace(mark, error=reason, heartbeat_at=utc_now())
            rollback_progress.write_on(connection, migration_id, stopped)
            session.audit.append(
                connection,
                AuditOperation.ROLLBACK_FAILED,
                user_id=session.user,
                success=False,
                migration_id=migration_id,
                details={"error": reason, **details},
            )
    except (DBAPIError, MigratorError):
        # Then its heartbeat goes stale within rollback_progress.STALE_SECONDS as before.
        log.exception("that the rollback of %s did not begin could not be recorded", migration_id)


def _require_confirmation(migration_id: str, confirm: bool) -> None:
    if not confirm:
        raise BadInput(
            f"Rolling back {migration_id} rewrites every value it encrypted, so it needs confirmation.",
            hint=f"Run: tui-migrator rollback {migration_id} --confirm",
        )


def _claim_rollback(
    session: Session, migration_id: str, ticket: str | None, *, requested: bool = False
) -> tuple[MigrationRecord, rollback_progress.RollbackProgress]:
    """Check that a rollback may run now and take the migration for it, in one transaction on
    its locked row: its tables are held again, its claim epoch is raised (a worker that only
    looked stopped can no longer write) and it is marked as rolling back (no resume or second
    rollback may start). ``requested``: the mark of a detached rollback about to be spawned."""
    with serialized_write(session.engine) as connection:
        record = migrations.load(connection, migration_id, for_update=True)
        _refuse_unless_rollbackable(record, ticket)
        epoch = migration_claims.take_over(connection, record)
        started = rollback_progress.starting(
            rows_to_restore=record.encrypted_records,
            tables_total=len(record.tables),
            ticket=ticket if requested else None,
        )
        rollback_progress.write_on(connection, migration_id, started)
    return replace(record, claim_epoch=epoch), started


def _refuse_unless_rollbackable(record: MigrationRecord, ticket: str | None) -> None:
    migrations.refuse_during_rollback(record, "rollback", ticket)
    if record.dry_run:
        raise StateConflict(
            f"Migration {record.id} was a dry run: it changed no data, so there is nothing to roll back."
        )
    if record.kind is MigrationKind.ROTATION:
        raise StateConflict(
            f"Migration {record.id} is a key rotation: it sealed the same values again under a "
            "newer data key and changed none, so there is nothing to roll back. Every token "
            "opens, whichever generation it is under.",
            hint="To restore plaintext, roll back the encryption migration that sealed it "
            "(tui-migrator list shows it).",
        )
    if record.status not in ROLLBACK_STATUSES:  # (can_rollback is also False during this rollback)
        raise StateConflict(
            f"Migration {record.id} is {record.status.value}; rollback works on "
            f"{describe_statuses(ROLLBACK_STATUSES)} migrations.",
            hint=f'Cancel it first: tui-migrator cancel {record.id} --reason "..."'
            if record.status.is_live
            else None,
        )


def _roll_back_now(
    session: Session, record: MigrationRecord, started: rollback_progress.RollbackProgress
) -> RollbackResult:
    migration_id = record.id
    # The claim wrote the starting mark; from here the writer keeps it current.
    progress = ProgressWriter(session.engine, migration_id, started, epoch=record.claim_epoch)

    retry = session.retry_policy or RetryPolicy()

    def step(table: str, restored_rows: int, tables_done: int) -> None:
        # The rollback's heartbeat: retried like its batches, so a restarting server does not
        # stop a rollback between two of them.
        with_retries(
            retry,
            lambda: progress.step(restored_rows=restored_rows, table=table, tables_done=tables_done),
            what="recording the rollback's progress",
            again=rollback.ROLL_BACK_AGAIN,
        )

    cipher, sealer = session.value_cipher(), RowSealer(session.master_key, migration_id)
    try:
        # Audited before any value changes; if the trail cannot take it, nothing changes.
        session.audit.record(
            AuditOperation.ROLLBACK_STARTED,
            user_id=session.user,
            success=True,
            migration_id=migration_id,
            details={"previousStatus": record.status.value},
        )
        with rollback.pool_for(record, cipher, sealer) as pool:
            result = rollback.roll_back(
                session.engine,
                record,
                session.mapping(),
                cipher,
                sealer,
                epoch=record.claim_epoch,
                on_step=step,
                pool=pool,
                retry=retry,
            )
        with_retries(
            retry,
            lambda: _record_rolled_back(session, record, progress, result),
            what="recording the end of the rollback (every value is restored)",
            again=rollback.ROLL_BACK_AGAIN,
        )
    except KeyboardInterrupt:
        # Ctrl-C: the batch in hand is undone with its transaction, every one committed stays.
        # Recorded, so the rollback is not taken for a running one, and said.
        stopped = Interrupted(
            f"The rollback of {migration_id} was interrupted: every batch it committed stays "
            "restored, the one in hand was undone.",
            hint=f"Run it again to finish: tui-migrator rollback {migration_id} --confirm",
        )
        _record_failure(session, migration_id, progress, stopped)
        raise stopped from None
    except Exception as error:
        failure = error
        if isinstance(error, DBAPIError):  # one no retry covers: said in the engine's words
            failure = database_failure(error, f"rolling back {migration_id}", again=rollback.ROLL_BACK_AGAIN)
        _record_failure(session, migration_id, progress, failure)
        if failure is error:
            raise
        raise failure from None
    return result


def _record_rolled_back(
    session: Session,
    record: MigrationRecord,
    progress: ProgressWriter,
    result: RollbackResult,
) -> None:
    with serialized_write(session.engine) as connection:
        migration_claims.fenced_update(
            connection,
            record.id,
            record.claim_epoch,
            status=Status.ROLLED_BACK.value,
            rolled_back_at=utc_now(),
            rollback_seconds=result.seconds,
        )
        progress.finish(connection, restored_rows=result.rows_back)
        # The values are plaintext again: a sweep that proved them gone from the files proves
        # nothing now, and is forgotten with the change itself (not after it, where a process
        # that died in between left "no plaintext left" on a rolled-back migration).
        sweep_records.clear(connection, record.id)
        table_locks.release_locks(connection, record.id)
        session.audit.append(
            connection,
            AuditOperation.ROLLED_BACK,
            user_id=session.user,
            success=True,
            migration_id=record.id,
            details=result.to_json(),
        )


def _record_failure(session: Session, migration_id: str, progress: ProgressWriter, error: Exception) -> None:
    """Tell whoever follows the rollback (the monitor, status) that it stopped, and why in words
    that are safe to show (the tool's own errors carry no values), and audit it. The database
    may refuse that too (the full disk that stopped the rollback): then it is logged, the
    rollback's heartbeat goes stale within rollback_progress.STALE_SECONDS, and the error that
    stopped it is what the operator sees."""
    try:
        try:
            progress.fail(str(error) if isinstance(error, MigratorError) else type(error).__name__)
        except migration_claims.ClaimLost:
            # Another rollback took it over (this one looked stopped): the record is that one's.
            log.warning(
                "the rollback of %s was taken over; its progress is left to the one running", migration_id
            )
        if isinstance(error, MigratorError):
            session.audit.record(
                AuditOperation.ROLLBACK_FAILED,
                user_id=session.user,
                success=False,
                migration_id=migration_id,
                details={"error": str(error)},
            )
    except DBAPIError:
        log.exception("the stop of the rollback of %s could not be recorded", migration_id)


def purge_backups(session: Session, migration_id: str, *, confirm: bool) -> list[str]:
    """Drop the migration's backup tables; returns their names."""
    if not confirm:
        raise BadInput(
            f"Purging the backups of {migration_id} removes the sealed copies rollback can fall back on.",
            hint=f"Run: tui-migrator purge-backups {migration_id} --confirm",
        )
    authorize(session, Action.MIGRATE, "purge-backups")
    with operation_guard.exclusive(session.engine, migration_id, "purge-backups"):
        dropped = []
        with serialized_write(session.engine) as connection:
            # Decided on the locked row, in the transaction that drops: a resume or a rollback
            # claimed since the operator looked keeps its backups.
            record = migrations.load(connection, migration_id, for_update=True)
            _refuse_unless_purgeable(record)
            for table in record.tables:
                if table.backup_table:
                    backup.drop_backup_table(connection, table.backup_table)
                    dropped.append(table.backup_table)
                    migrations.update_table(
                        connection, migration_id, table.name, backup_table=None, backup_verified=False
                    )
            session.audit.append(
                connection,
                AuditOperation.BACKUPS_PURGED,
                user_id=session.user,
                success=True,
                migration_id=migration_id,
                details={"droppedTables": dropped},
            )
    # On SQLite the dropped tables' pages go too (sealed ciphertext, but the file shrinks).
    if dropped:
        sweeping.after_change(session, migration_id)
    return dropped


def _refuse_unless_purgeable(record: MigrationRecord) -> None:
    migrations.refuse_during_rollback(record, "purge-backups")
    if record.can_purge_backups:
        return
    if record.status is Status.COMPLETED:
        raise StateConflict(
            f"Migration {record.id} completed without a passed integrity verification, so its "
            "backups are the only proof its values can be restored; they were kept.",
            hint=f"Roll it back if its tokens do not open (tui-migrator rollback {record.id} "
            "--confirm); a migration run with verification can purge its backups.",
        )
    raise StateConflict(
        f"Migration {record.id} is {record.status.value}; backups are purged only from a completed "
        "and verified migration or a rolled-back one, since a rollback may still need them. "
        "Nothing was dropped.",
        hint=f"Finish it first: tui-migrator resume {record.id}, or tui-migrator rollback "
        f"{record.id} --confirm",
    )
