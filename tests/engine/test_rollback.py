"""Rollback restores every value a migration encrypted, exactly, and keeps what the application wrote since."""

from __future__ import annotations

from tests.support.databases import BOTH_BACKENDS
from tests.support.migration_helpers import (
    FAST,
    assert_fully_encrypted,
    raw_dump,
)
from tui_migrator.service.facade import MigratorService
from tui_migrator.storage.migration_status import Status

pytestmark = BOTH_BACKENDS


def test_complete_migration_leaves_no_plaintext_and_rollback_restores_everything(
    service: MigratorService,
) -> None:
    before = raw_dump(service.engine)
    record = service.start(FAST)
    assert record.status is Status.COMPLETED, record.error_message
    assert record.encrypted_records == record.total_records > 400
    assert record.failed_records == 0
    assert record.verification and record.verification["passed"]
    assert record.verification["verifiedRows"] == record.total_records
    assert assert_fully_encrypted(service, service.mapping(), before) == record.total_records
    assert all(table.backup_verified and table.backup_rows == table.total_records for table in record.tables)

    rolled, result = service.rollback(record.id, confirm=True)
    assert rolled.status is Status.ROLLED_BACK
    assert result.restored_rows == record.total_records
    assert raw_dump(service.engine) == before  # values, storage classes and columns
    operations = [e.operation for e in service.audit_entries(limit=None, migration_id=record.id).entries]
    for expected in (
        "data_migration_started",
        "backup_created",
        "integrity_verified",
        "data_migration_completed",
        "data_migration_rolled_back",
    ):
        assert expected in operations


def test_migration_without_backups_warns_and_still_rolls_back(service: MigratorService) -> None:
    before = raw_dump(service.engine)
    record = service.start({**FAST, "create_backups": False})
    assert any("--no-backups" in w for w in record.warnings)
    assert all(t.backup_table is None for t in record.tables)
    service.rollback(record.id, confirm=True)
    assert raw_dump(service.engine) == before


def test_rollback_keeps_values_the_application_wrote_after_the_migration(service: MigratorService) -> None:
    record = service.start(FAST)
    with service.engine.begin() as connection:
        connection.exec_driver_sql("UPDATE demographics SET notes = 'written by the app later' WHERE id = 2")
    _, result = service.rollback(record.id, confirm=True)
    assert result.kept_newer_values == 1
    with service.engine.connect() as connection:
        assert (
            connection.exec_driver_sql("SELECT notes FROM demographics WHERE id = 2").scalar_one()
            == "written by the app later"
        )
