"""Reading the tool's own records: migrations, their failed records and reports, the audit trail
and the data keys. Any operator with a role may; nothing here writes, except that an explicit
audit verification is itself recorded."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tui_migrator.service import sweeping
from tui_migrator.service.access import authorize, can
from tui_migrator.service.report import completion_report
from tui_migrator.service.session import Session
from tui_migrator.storage import migration_records as migrations
from tui_migrator.storage.audit import AuditEntry, AuditVerification
from tui_migrator.storage.audit_operations import AuditOperation
from tui_migrator.storage.keyring import DataKeyInfo
from tui_migrator.storage.migration_records import MigrationRecord
from tui_migrator.storage.migration_status import parse_status
from tui_migrator.storage.operators import Action


@dataclass(frozen=True)
class AuditPage:
    entries: list[AuditEntry]
    total_entries: int


def status(session: Session, migration_id: str) -> MigrationRecord:
    authorize(session, Action.READ, "status")
    return migrations.get(session.engine, migration_id)


def list_migrations(
    session: Session, *, limit: int | None, status: str | None
) -> tuple[list[MigrationRecord], list[MigrationRecord]]:
    """Newest first: the page asked for (filtered, limited), and every migration, for the
    summary by status."""
    authorize(session, Action.READ, "list")
    wanted = parse_status(status) if status else None
    everything = migrations.list_records(session.engine)
    matching = [record for record in everything if wanted is None or record.status is wanted]
    return (matching[:limit] if limit else matching), everything


def failed_records(session: Session, migration_id: str) -> list[dict[str, Any]]:
    authorize(session, Action.READ, "failed")
    migrations.get(session.engine, migration_id)  # an unknown id is an error, not an empty list
    return migrations.failed_records(session.engine, migration_id)


def report(session: Session, migration_id: str) -> dict[str, Any]:
    authorize(session, Action.READ, "report")
    record = migrations.get(session.engine, migration_id)
    swept = sweeping.sweep_record(session, migration_id)
    dialect = session.engine.dialect.name
    return completion_report(
        record,
        migrations.failed_records(session.engine, migration_id),
        sweep=sweeping.report_data(sweeping.sweep_status(record, swept, dialect), swept, dialect),
    )


def audit_entries(session: Session, *, limit: int | None, migration_id: str | None) -> AuditPage:
    authorize(session, Action.READ, "audit")
    entries, total = session.audit.entries(limit=limit, migration_id=migration_id)
    if migration_id is not None and not total:
        # An id this database never had is the same error as for status (a migration whose
        # record is gone but whose entries remain is still listed).
        with session.engine.connect() as connection:
            if not migrations.exists(connection, migration_id):
                raise migrations.unknown_migration(migration_id)
    return AuditPage(entries, total)


def verify_audit(session: Session, *, record: bool) -> AuditVerification:
    """Recompute the chain. With ``record``, the verification itself is audited after it ran —
    by an operator who may change the database: for a viewer or a read-only session it stays a
    read, which writes nothing."""
    authorize(session, Action.READ, "audit --verify")
    result = session.audit.verify()
    if record and can(session, Action.MIGRATE):
        session.audit.record(
            AuditOperation.AUDIT_VERIFIED,
            user_id=session.user,
            success=result.intact,
            details={
                "verifiedEntries": result.verified_entries,
                "firstBrokenEntry": result.first_broken_seq,
            },
        )
    return result


def data_keys(session: Session) -> list[DataKeyInfo]:
    authorize(session, Action.READ, "keys list")
    return session.keyring.describe()
