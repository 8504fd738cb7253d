"""Dropped, disabled or replaced audit triggers are noticed: health says so, and every change is
refused (nothing written, the refusal audited) until they are restored."""

from __future__ import annotations

import json

import pytest

from tests.storage.test_audit import drop_triggers
from tests.support.cli import where
from tests.support.databases import BOTH_BACKENDS
from tests.support.migration_helpers import raw_dump
from tui_migrator.cli.main import main
from tui_migrator.common.errors import PermissionDenied
from tui_migrator.common.settings import Settings
from tui_migrator.service.facade import MigratorService
from tui_migrator.storage import audit_triggers
from tui_migrator.storage.audit_triggers import AuditUnprotected

pytestmark = BOTH_BACKENDS


def _tamper(service: MigratorService, how: str) -> None:
    with service.engine.begin() as connection:
        postgresql = connection.dialect.name == "postgresql"
        if how == "dropped":
            drop_triggers(service)
        elif how == "disabled":  # PostgreSQL only: SQLite triggers can only be dropped or replaced
            connection.exec_driver_sql("ALTER TABLE tm_audit DISABLE TRIGGER tm_audit_no_update_delete")
        elif postgresql:  # replaced: a function that lets everything through
            connection.exec_driver_sql(
                "CREATE OR REPLACE FUNCTION tm_audit_append_only() RETURNS trigger LANGUAGE plpgsql "
                "AS $$ BEGIN RETURN OLD; END $$"
            )
        else:
            connection.exec_driver_sql("DROP TRIGGER tm_audit_no_delete")
            connection.exec_driver_sql(
                "CREATE TRIGGER tm_audit_no_delete BEFORE DELETE ON tm_audit BEGIN SELECT 1; END"
            )


@pytest.mark.parametrize("how", ["dropped", "replaced"])
def test_changes_are_refused_while_the_triggers_are_not_in_force(
    service: MigratorService, settings: Settings, capsys: pytest.CaptureFixture[str], how: str
) -> None:
    _tamper(service, how)
    _refused_until_restored(service, settings, capsys)


@pytest.mark.backends("postgresql")
def test_changes_are_refused_while_a_trigger_is_disabled(
    service: MigratorService, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    _tamper(service, "disabled")
    _refused_until_restored(service, settings, capsys)


def _refused_until_restored(
    service: MigratorService, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    with service.engine.connect() as connection:
        assert audit_triggers.problems(connection)
    before = raw_dump(service.engine)

    health = service.health()
    assert health.system_health.audit_trail_protected is False
    assert any("audit trail is not protected" in alert for alert in health.alerts)

    code = main(["start", "--yes", "--batch-size", "50", "--json", *where(settings)])
    refusal = json.loads(capsys.readouterr().out)
    assert code == 2
    assert refusal["errorCode"] == "audit_unprotected"
    # Both commands it suggests reach this database.
    flags = f"--db {settings.effective_database_url}"
    assert f"tui-migrator {flags} audit --restore-triggers" in refusal["hint"]
    assert f"tui-migrator {flags} audit --verify" in refusal["hint"]
    assert service.list_migrations()[0] == []
    assert raw_dump(service.engine) == before
    with pytest.raises(AuditUnprotected):
        service.grant("mallory", "super_admin")
    latest = service.audit_entries(limit=1).entries[0]
    assert latest.operation == "audit_unprotected_refusal"
    assert latest.details["attemptedOperation"] == "operators grant"

    # Restored, everything works again; the trail records what was wrong.
    assert main(["audit", "--restore-triggers", "--json", *where(settings)]) == 0
    restored = json.loads(capsys.readouterr().out)
    assert restored["data"]["problems"]
    with service.engine.connect() as connection:
        assert audit_triggers.problems(connection) == []
    assert service.health().system_health.audit_trail_protected is True
    assert service.start({"batch_size": 50, "data_categories": ["DEMOGRAPHICS"]}).status.value == "completed"
    assert service.verify_audit().intact


def test_reading_goes_on_and_only_a_super_admin_restores(
    service: MigratorService, settings: Settings
) -> None:
    service.grant("watcher", "viewer")
    drop_triggers(service)
    assert service.audit_entries(limit=5).entries
    assert service.list_migrations() is not None
    with MigratorService.open(settings, user="watcher") as watcher, pytest.raises(PermissionDenied):
        watcher.restore_audit_triggers()
    assert service.restore_audit_triggers()
