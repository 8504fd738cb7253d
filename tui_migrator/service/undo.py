"""Undoing a migration (rollback) and dropping its sealed backups once they are no longer wanted.

Both destroy something an operator may need, so both ask for confirmation before anything else,
and each holds the migration's operation guard while it runs (a sweep or the other one waits).
Afterwards the database files are swept (service/sweeping.py).
"""

from __future__ import annotations

from tui_migrator.common.errors import BadInput, MigratorError
from tui_migrator.crypto.ciphers import RowSealer
from tui_migrator.engine import backup, rollback
from tui_migrator.engine.rollback import RollbackResult
from tui_migrator.service import sweeping
from tui_migrator.service.access import authorize
from tui_migrator.service.session import Session
from tui_migrator.storage import migration_records as migrations
from tui_migrator.storage import operation_guard, table_locks
from tui_migrator.storage.audit_operations import AuditOperation
from tui_migrator.storage.database import serialized_write
from tui_migrator.storage.migration_records import MigrationRecord
from tui_migrator.storage.migration_status import ROLLBACK_STATUSES, Status, describe_statuses
from tui_migrator.storage.operators import Action
from tui_migrator.storage.tables import utc_now


def roll_back(
    session: Session, migration_id: str, *, confirm: bool
) -> tuple[MigrationRecord, RollbackResult]:
    """Restore every value the migration encrypted and remove what it added."""
    if not confirm:
        raise BadInput(
            f"Rolling back {migration_id} rewrites every value it encrypted, so it needs confirmation.",
            hint=f"Run: tui-migrator rollback {migration_id} --confirm",
        )
    authorize(session, Action.MIGRATE, "rollback")
    with operation_guard.exclusive(session.engine, migration_id, "rollback"):
        record = migrations.get(session.engine, migration_id)
        if record.dry_run:
            raise BadInput(
                f"Migration {migration_id} was a dry run: it changed no data, so there is nothing to roll back."
            )
        if not record.can_rollback:
            raise BadInput(
                f"Migration {migration_id} is {record.status.value}; rollback works on "
                f"{describe_statuses(ROLLBACK_STATUSES)} migrations.",
                hint=f'Cancel it first: tui-migrator cancel {migration_id} --reason "..."'
                if record.status.is_live
                else None,
            )
        result = _roll_back_now(session, record)
    # The values are plaintext again: the last sweep proves nothing now (SQLite sweeps anew).
    sweeping.after_change(session, migration_id, data_changed=True)
    return migrations.get(session.engine, migration_id), result


def _roll_back_now(session: Session, record: MigrationRecord) -> RollbackResult:
    migration_id = record.id
    session.audit.record(
        AuditOperation.ROLLBACK_STARTED,
        user_id=session.user,
        success=True,
        migration_id=migration_id,
        details={"previousStatus": record.status.value},
    )
    try:
        result = rollback.roll_back(
            session.engine,
            record,
            session.mapping(),
            session.value_cipher(),
            RowSealer(session.master_key, migration_id),
        )
    except MigratorError as error:
        session.audit.record(
            AuditOperation.ROLLBACK_FAILED,
            user_id=session.user,
            success=False,
            migration_id=migration_id,
            details={"error": str(error)},
        )
        raise
    with serialized_write(session.engine) as connection:
        migrations.update(
            connection,
            migration_id,
            status=Status.ROLLED_BACK.value,
            rolled_back_at=utc_now(),
            rollback_seconds=result.seconds,
        )
        table_locks.release_locks(connection, migration_id)
        session.audit.append(
            connection,
            AuditOperation.ROLLED_BACK,
            user_id=session.user,
            success=True,
            migration_id=migration_id,
            details=result.to_json(),
        )
    return result


def purge_backups(session: Session, migration_id: str, *, confirm: bool) -> list[str]:
    """Drop the migration's backup tables; returns their names."""
    if not confirm:
        raise BadInput(
            f"Purging the backups of {migration_id} removes the sealed copies rollback can fall back on.",
            hint=f"Run: tui-migrator purge-backups {migration_id} --confirm",
        )
    authorize(session, Action.MIGRATE, "purge-backups")
    with operation_guard.exclusive(session.engine, migration_id, "purge-backups"):
        record = migrations.get(session.engine, migration_id)
        if not record.can_purge_backups:
            raise BadInput(f"Migration {migration_id} is {record.status.value}; its backups are in use.")
        dropped = []
        with serialized_write(session.engine) as connection:
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
        sweeping.after_change(session, migration_id, data_changed=False)
    return dropped
