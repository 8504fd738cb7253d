"""The audit trail is append-only, chained and authenticated; --verify finds every kind of tampering."""

from __future__ import annotations

import hashlib
import json
import threading

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DatabaseError

from tests.support.databases import ADMIN, BOTH_BACKENDS
from tui_migrator.cli.main import main
from tui_migrator.common.settings import Settings
from tui_migrator.service.facade import MigratorService
from tui_migrator.storage.audit import AuditTrail
from tui_migrator.storage.tables import audit_table


def fill(service: MigratorService, count: int = 6) -> None:
    for number in range(count):
        service._session.audit.record(
            "test_event",
            user_id=ADMIN,
            success=True,
            migration_id=f"m{number % 2}",
            details={"n": number, "note": "äöü"},
        )


pytestmark = BOTH_BACKENDS


def drop_triggers(service: MigratorService) -> None:
    """What an attacker with DDL rights would do before editing history."""
    with service.engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql("DROP TRIGGER tm_audit_no_update_delete ON tm_audit")
            connection.exec_driver_sql("DROP TRIGGER tm_audit_no_truncate ON tm_audit")
        else:
            connection.exec_driver_sql("DROP TRIGGER tm_audit_no_update")
            connection.exec_driver_sql("DROP TRIGGER tm_audit_no_delete")


def test_fresh_trail_verifies(service: MigratorService) -> None:
    fill(service)
    result = service.verify_audit()
    assert result.intact
    assert result.verified_entries == result.total_entries == 7  # tool_initialized + 6


@pytest.mark.parametrize("statement", ["UPDATE tm_audit SET user_id = 'mallory'", "DELETE FROM tm_audit"])
def test_triggers_reject_update_and_delete(service: MigratorService, statement: str) -> None:
    fill(service, 2)
    with pytest.raises(DatabaseError, match="append-only"), service.engine.begin() as connection:
        connection.exec_driver_sql(statement)
    assert service.verify_audit().intact


@pytest.mark.backends("postgresql")
def test_trigger_rejects_truncate_on_postgresql(service: MigratorService) -> None:
    fill(service, 2)
    with pytest.raises(DatabaseError, match="append-only: TRUNCATE"), service.engine.begin() as connection:
        connection.exec_driver_sql("TRUNCATE tm_audit")
    assert service.verify_audit().intact
    assert service.verify_audit(record=False).total_entries == 4


def test_verify_names_an_edited_entry(service: MigratorService) -> None:
    fill(service)
    drop_triggers(service)
    with service.engine.begin() as connection:
        connection.execute(sa.update(audit_table).where(audit_table.c.seq == 4).values(user_id="mallory"))
    result = service.verify_audit()
    assert not result.intact
    assert result.first_broken_seq == 4
    assert "#4 (audit_000004) was altered" in (result.problem or "")


def test_verify_names_where_an_entry_was_deleted(service: MigratorService) -> None:
    fill(service)
    drop_triggers(service)
    with service.engine.begin() as connection:
        connection.execute(sa.delete(audit_table).where(audit_table.c.seq == 3))
    result = service.verify_audit()
    assert result.first_broken_seq == 4
    assert "removed before #4" in (result.problem or "")


def test_verify_names_an_inserted_entry_even_with_a_correct_hash(service: MigratorService) -> None:
    fill(service)
    drop_triggers(service)
    with service.engine.begin() as connection:
        last = (
            connection.execute(sa.select(audit_table).order_by(audit_table.c.seq.desc()).limit(1))
            .mappings()
            .one()
        )
        fields = {
            "seq": last["seq"] + 1,
            "entryId": f"audit_{last['seq'] + 1:06d}",
            "operation": "data_migration_started",
            "userId": "mallory",
            "success": True,
            "timestamp": "2026-01-01T00:00:00.000000Z",
            "migrationId": None,
            "details": {},
            "previousHash": last["entry_hash"],
        }
        forged_hash = hashlib.sha256(
            json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()
        ).hexdigest()
        connection.execute(
            sa.insert(audit_table).values(
                seq=fields["seq"],
                entry_id=fields["entryId"],
                operation=fields["operation"],
                user_id="mallory",
                success=True,
                timestamp=fields["timestamp"],
                migration_id=None,
                details="{}",
                previous_hash=last["entry_hash"],
                entry_hash=forged_hash,
                proof="0" * 64,
            )
        )
    result = service.verify_audit()
    assert result.first_broken_seq == last["seq"] + 1
    assert "inserted or forged" in (result.problem or "")


def test_verify_detects_entries_cut_from_the_end(service: MigratorService) -> None:
    fill(service)
    drop_triggers(service)
    with service.engine.begin() as connection:
        connection.execute(sa.delete(audit_table).where(audit_table.c.seq >= 6))
    result = service.verify_audit()
    assert not result.intact
    assert "last 2 entries were removed" in (result.problem or "")


def test_concurrent_appends_extend_one_chain(service: MigratorService) -> None:
    trails = [AuditTrail(service.engine, service._session.master_key) for _ in range(4)]

    def append_many(trail: AuditTrail) -> None:
        for number in range(10):
            trail.record("concurrent", user_id=ADMIN, success=True, details={"n": number})

    threads = [threading.Thread(target=append_many, args=(trail,)) for trail in trails]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result = service.verify_audit(record=False)
    assert result.intact
    assert result.total_entries == 41


def test_cli_audit_json_has_the_seed_shape(
    settings: Settings, service: MigratorService, capsys: pytest.CaptureFixture[str]
) -> None:
    fill(service, 3)
    code = main(["audit", "--json", "--limit", "2", "--migration", "m0", *_location(settings)])
    assert code == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["success"] is True
    data = payload["data"]
    assert data["totalEntries"] == 2 and data["secureAuditTrail"] is True
    entry = data["auditEntries"][0]
    assert set(entry) >= {
        "id",
        "operation",
        "userId",
        "success",
        "timestamp",
        "migrationDetails",
        "cryptographicProof",
    }
    assert entry["migrationDetails"]["migrationId"] == "m0"
    assert entry["cryptographicProof"].startswith("hmac-sha256:")


def test_cli_verify_exits_1_and_names_the_broken_entry(
    settings: Settings, service: MigratorService, capsys: pytest.CaptureFixture[str]
) -> None:
    fill(service)
    drop_triggers(service)
    with service.engine.begin() as connection:
        connection.execute(sa.update(audit_table).where(audit_table.c.seq == 2).values(success=False))
    code = main(["audit", "--verify", "--json", *_location(settings)])
    payload = json.loads(capsys.readouterr().out)
    assert code == 1
    assert payload["success"] is False
    assert "#2 (audit_000002) was altered" in payload["error"]
    assert payload["data"]["verification"]["firstBrokenSequence"] == 2
    assert payload["data"]["secureAuditTrail"] is False


def _location(settings: Settings) -> list[str]:
    return ["--db", settings.effective_database_url, "--data-dir", str(settings.data_dir)]
