"""An operator's requests to a running migration: cancel, pause and continue.

They are written to the migration's row; the worker reads them between batches, so in-flight
batches always finish. Which statuses allow each request is the record's rule
(storage/migration_records.py), and a refusal names the statuses that would have allowed it.
"""

from __future__ import annotations

import time
from typing import Any, NoReturn

from sqlalchemy.engine import Connection

from tui_migrator.common.errors import BadInput, StateConflict
from tui_migrator.engine import control as run_control
from tui_migrator.service.access import authorize
from tui_migrator.service.session import Session
from tui_migrator.storage import migration_records as migrations
from tui_migrator.storage.audit_operations import AuditOperation
from tui_migrator.storage.database import serialized_write
from tui_migrator.storage.migration_records import MigrationRecord
from tui_migrator.storage.migration_status import (
    CANCELLABLE_STATUSES,
    CONTINUABLE_STATUSES,
    PAUSABLE_STATUSES,
    RESUMABLE_STATUSES,
    Status,
    describe_statuses,
)
from tui_migrator.storage.operators import Action
from tui_migrator.storage.tables import utc_now

# How often a cancel looks again whether the worker has stopped.
CANCEL_POLL_SECONDS = 0.2


def cancel(session: Session, migration_id: str, reason: str, *, wait_seconds: float) -> MigrationRecord:
    """Ask the worker to stop after its in-flight batches; wait for it to acknowledge."""
    reason = reason.strip()
    if not reason:
        raise BadInput(
            "A cancel needs a reason.", hint='Add --reason "why", e.g. --reason "Emergency maintenance".'
        )
    authorize(session, Action.MIGRATE, "cancel")
    with serialized_write(session.engine) as connection:
        record = migrations.load(connection, migration_id, for_update=True)
        migrations.refuse_during_rollback(record, "cancel")
        if not record.can_cancel:
            raise StateConflict(
                f"Migration {migration_id} is {record.status.value}; only a "
                f"{describe_statuses(CANCELLABLE_STATUSES)} migration can be cancelled."
            )
        values: dict[str, Any] = {
            "cancel_requested": True,
            "cancel_reason": reason,
            "cancelled_by": session.user,
            # When the operator cancelled: shown at once, also while the worker finishes its
            # in-flight batches ("cancelling"), and kept when it stops.
            "cancelled_at": utc_now(),
        }
        if not record.worker_alive:
            # Nobody is running it: it stops here and now.
            values.update(status=Status.CANCELLED.value)
        migrations.update(connection, migration_id, **values)
        session.audit.append(
            connection,
            AuditOperation.MIGRATION_CANCEL_REQUESTED,
            user_id=session.user,
            success=True,
            migration_id=migration_id,
            details={"reason": reason},
        )
    deadline = time.monotonic() + wait_seconds
    record = migrations.get(session.engine, migration_id)
    while record.status is not Status.CANCELLED and record.worker_alive and time.monotonic() < deadline:
        time.sleep(CANCEL_POLL_SECONDS)
        record = migrations.get(session.engine, migration_id)
    return record


def pause(session: Session, migration_id: str) -> MigrationRecord:
    authorize(session, Action.MIGRATE, "pause")
    with serialized_write(session.engine) as connection:
        record = migrations.load(connection, migration_id, for_update=True)
        # One waiting for its window may be paused too: it then stays paused when the window opens.
        if not (record.can_pause or record.waits_for_schedule):
            _refuse_request(record, "pause", PAUSABLE_STATUSES)
        migrations.update(connection, migration_id, pause_requested=True)
        _audit_request(session, connection, migration_id, AuditOperation.MIGRATION_PAUSE_REQUESTED)
    return migrations.get(session.engine, migration_id)


def continue_(session: Session, migration_id: str) -> MigrationRecord:
    """Withdraw a pause (one that has not taken effect yet, too). A migration waiting for its
    own schedule is refused: the schedule is what the operator asked for when starting it, and
    it goes on by itself when the window opens."""
    authorize(session, Action.MIGRATE, "continue")
    with serialized_write(session.engine) as connection:
        record = migrations.load(connection, migration_id, for_update=True)
        if record.waits_for_schedule:
            _refuse_scheduled_continue(record)
        if not record.can_continue:
            _refuse_request(record, "continue", CONTINUABLE_STATUSES)
        migrations.update(connection, migration_id, pause_requested=False)
        _audit_request(session, connection, migration_id, AuditOperation.MIGRATION_CONTINUE_REQUESTED)
    return migrations.get(session.engine, migration_id)


def _refuse_request(record: MigrationRecord, verb: str, allowed: tuple[Status, ...]) -> NoReturn:
    raise StateConflict(
        f"Migration {record.id} is {record.status.value}; '{verb}' needs it {describe_statuses(allowed)}.",
        hint=f"Resume an interrupted or cancelled migration with: tui-migrator resume {record.id}"
        if record.status in RESUMABLE_STATUSES
        else None,
    )


def _refuse_scheduled_continue(record: MigrationRecord) -> NoReturn:
    schedule = record.config.schedule
    when = (
        ""
        if schedule is None
        else f" at {schedule.runs_from(run_control.wall_clock()).isoformat(timespec='minutes')}"
    )
    raise StateConflict(
        f"Migration {record.id} is paused by its schedule ({record.pause_reason}), not by an "
        f"operator; it continues by itself{when}. Nothing was changed.",
        hint=f'To stop it instead: tui-migrator cancel {record.id} --reason "..."',
    )


def _audit_request(
    session: Session, connection: Connection, migration_id: str, operation: AuditOperation
) -> None:
    session.audit.append(
        connection, operation, user_id=session.user, success=True, migration_id=migration_id, details={}
    )
