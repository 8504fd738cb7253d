"""Rollback from every state a migration can stop in — failed, cancelled, interrupted (its worker
killed in the middle of a batch), paused then cancelled — gives back every user table byte for
byte; a token that no longer opens is restored from the sealed backup, and a row whose backup is
tampered with too is refused, with nothing written in its place — both whether the rollback
opens its tokens in its own process or in worker processes."""

from __future__ import annotations

import json
import os
import pwd
import re
import signal
import textwrap
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.support.application_writes import MOTOR, app_write, stored_row
from tests.support.databases import BOTH_BACKENDS
from tests.support.faults import (
    FAULT_MESSAGE,
    BatchGate,
    fail_batches_after,
    sealed_keys,
    sealed_rows,
    tamper_contact_and_backup,
    tampered_token,
    with_row_from,
)
from tests.support.migration_helpers import (
    Background,
    latest,
    process_alive,
    raw_dump,
    wait_for,
    worker_pid,
)
from tests.support.rollback_workers import PoolsSeen, assert_opened_where_asked
from tui_migrator.common.errors import DecryptionFailed
from tui_migrator.engine.log_files import log_path
from tui_migrator.engine.rollback import RollbackIncomplete
from tui_migrator.reader import RecordReader
from tui_migrator.service.facade import MigratorService
from tui_migrator.storage import migration_records as migrations
from tui_migrator.storage.migration_records import MigrationRecord
from tui_migrator.storage.migration_status import Status

pytestmark = BOTH_BACKENDS

# Several batches per table, so a migration stopped after a few has sealed some rows, not all.
SMALL_BATCHES = {"batch_size": 20, "max_concurrency": 2}


def assert_rolls_back_exactly(service: MigratorService, stopped: MigrationRecord, before: object) -> None:
    """The stopped migration sealed some rows, not all, with nothing half-written (the rows
    holding tokens are exactly the ones it counted); its rollback restores exactly those and
    every user table is back byte for byte."""
    assert 0 < stopped.encrypted_records < stopped.total_records
    assert sealed_rows(service.engine, service.mapping()) == stopped.encrypted_records
    assert stopped.can_rollback
    rolled, result = service.rollback(stopped.id, confirm=True)
    assert rolled.status is Status.ROLLED_BACK
    assert result.restored_rows == stopped.encrypted_records
    assert result.restored_from_backup == 0 and result.unrecoverable == []
    assert raw_dump(service.engine) == before
    assert sealed_rows(service.engine, service.mapping()) == 0


def test_rollback_of_a_failed_migration_is_byte_exact(
    service: MigratorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    # motor_symptoms (113 rows) commits three batches of 20, then the database refuses the fourth.
    fail_batches_after(monkeypatch, "motor_symptoms", committed=3)
    before = raw_dump(service.engine)
    record = service.start({"batch_size": 20, "max_concurrency": 1})
    assert record.status is Status.FAILED
    assert "motor_symptoms" in (record.error_message or "")
    assert FAULT_MESSAGE in (record.error_message or "")
    # The three batches before the refused one committed; the refused one left nothing behind
    # (its UPDATE had run in its transaction, which was rolled back).
    assert sealed_keys(service.engine, service.mapping(), "motor_symptoms") == [(i,) for i in range(1, 61)]
    assert_rolls_back_exactly(service, record, before)


def test_rollback_of_a_cancelled_migration_is_byte_exact(
    service: MigratorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = raw_dump(service.engine)
    gate = BatchGate(monkeypatch, open_for=4)
    running = Background(lambda: service.start(SMALL_BATCHES))
    assert gate.holding.wait(60)
    migration_id = latest(service).id  # type: ignore[union-attr]
    service.cancel(migration_id, "Emergency maintenance required", wait_seconds=0)
    gate.release()
    record = running.join()
    assert record.status is Status.CANCELLED
    assert record.cancel_reason == "Emergency maintenance required"
    assert_rolls_back_exactly(service, service.status(migration_id), before)


def test_rollback_of_a_paused_then_cancelled_migration_is_byte_exact(
    service: MigratorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = raw_dump(service.engine)
    gate = BatchGate(monkeypatch, open_for=4)
    running = Background(lambda: service.start(SMALL_BATCHES))
    assert gate.holding.wait(60)
    migration_id = latest(service).id  # type: ignore[union-attr]
    service.pause(migration_id)
    gate.release()
    wait_for(lambda: service.status(migration_id).stored_status is Status.PAUSED)
    paused = service.status(migration_id)
    assert paused.worker_alive
    # Paused means nothing in flight: every row it counted is committed, nothing more.
    assert sealed_rows(service.engine, service.mapping()) == paused.encrypted_records

    service.cancel(migration_id, "Called off while paused", wait_seconds=30)
    record = running.join()
    assert record.status is Status.CANCELLED
    assert record.encrypted_records == paused.encrypted_records  # no batch ran after the pause
    operations = [e.operation for e in service.audit_entries(limit=None, migration_id=migration_id).entries]
    assert "data_migration_paused" in operations
    assert_rolls_back_exactly(service, service.status(migration_id), before)


# -- interrupted: the detached worker is killed inside a batch's transaction -------------------

# Put on the detached worker's PYTHONPATH: after the worker has committed HANG_AFTER batches, the
# next batch runs all its writes (backups, the UPDATE, row metadata, counters) inside its open
# transaction, says so in the marker file, and waits there to be killed.
_HANG_IN_A_BATCH = textwrap.dedent(
    """
    import json, os, time

    from tui_migrator.engine import batches

    _real_write_in = batches.TableBatches.write_in
    _after = int(os.environ["TM_TEST_HANG_AFTER"])
    _state = {"batches": 0, "rows": 0}


    def _write_in_then_hang(self, connection, sealed, *args, **kwargs):
        _real_write_in(self, connection, sealed, *args, **kwargs)
        if self.dry_run or self.migration_id == "calibration" or not sealed:
            return
        if _state["batches"] < _after:
            _state["batches"] += 1
            _state["rows"] += len(sealed)
            return
        marker = os.environ["TM_TEST_HANG_MARKER"]
        with open(marker + ".tmp", "w") as out:
            json.dump(
                {"committedRows": _state["rows"], "inFlightRows": len(sealed), "pid": os.getpid()},
                out,
            )
        os.replace(marker + ".tmp", marker)
        while True:
            time.sleep(60)


    batches.TableBatches.write_in = _write_in_then_hang
    """
)


def test_rollback_of_an_interrupted_migration_killed_mid_batch_is_byte_exact(
    service: MigratorService, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The detached worker runs as the real operating-system user, who needs the role too.
    service.grant(pwd.getpwuid(os.geteuid()).pw_name, "super_admin")
    hook = tmp_path / "hang-hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(_HANG_IN_A_BATCH)
    marker = tmp_path / "in-flight.json"
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(hook), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("TM_TEST_HANG_AFTER", "3")
    monkeypatch.setenv("TM_TEST_HANG_MARKER", str(marker))
    monkeypatch.setattr(migrations, "HEARTBEAT_STALE_SECONDS", 2.0)
    before = raw_dump(service.engine)

    started = service.start({"batch_size": 8, "max_concurrency": 1}, detach=True)
    pid: int | None = None
    try:
        try:
            wait_for(marker.exists, timeout=60)
        except AssertionError:
            log = log_path(service.settings, started.id)
            pytest.fail(f"the worker never reached its fourth batch; its log:\n{log.read_text()[-3000:]}")
        in_flight = json.loads(marker.read_text())
        pid = int(in_flight["pid"])
        assert pid != os.getpid()
        assert in_flight["committedRows"] > 0 and in_flight["inFlightRows"] > 0
        # The batch's UPDATE has run in the worker's open transaction; nobody else sees it.
        assert sealed_rows(service.engine, service.mapping()) == in_flight["committedRows"]
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not process_alive(pid), timeout=10)
    finally:
        # Never leave a worker behind, whatever failed above.
        pid = pid or worker_pid(service.status(started.id))
        if pid is not None and process_alive(pid):
            os.kill(pid, signal.SIGKILL)
    wait_for(lambda: service.status(started.id).status is Status.INTERRUPTED, timeout=30)
    interrupted = service.status(started.id)
    assert interrupted.stored_status is Status.RUNNING and not interrupted.worker_alive
    # The killed batch is gone with its transaction: counters and tokens agree.
    assert interrupted.encrypted_records == in_flight["committedRows"]
    assert_rolls_back_exactly(service, interrupted, before)


# -- tokens that no longer open ----------------------------------------------------------------


def test_a_token_that_no_longer_opens_is_restored_from_the_sealed_backup(
    service: MigratorService, opened_in: PoolsSeen | None
) -> None:
    before = raw_dump(service.engine)
    record = service.start({"batch_size": 40, "max_concurrency": 2})
    assert record.status is Status.COMPLETED
    with service.engine.begin() as connection:
        row_id, token, organization = connection.exec_driver_sql(
            "SELECT id, last_name, organization_id FROM demographics "
            "WHERE last_name IS NOT NULL ORDER BY id LIMIT 1"
        ).one()
        bad = tampered_token(token)
        connection.execute(
            sa.text("UPDATE demographics SET last_name = :bad WHERE id = :id"), {"bad": bad, "id": row_id}
        )
    reader = RecordReader.for_service(service)
    with pytest.raises(DecryptionFailed):
        reader.read_value(
            bad, table="demographics", column="last_name", primary_key=row_id, organization_id=organization
        )

    rolled, result = service.rollback(record.id, confirm=True)
    assert rolled.status is Status.ROLLED_BACK
    assert result.restored_from_backup == 1
    assert result.restored_rows == record.total_records
    assert result.unrecoverable == []
    assert raw_dump(service.engine) == before
    assert_opened_where_asked(opened_in)


def test_a_row_the_application_wrote_during_the_run_is_backed_up_as_its_batch_sealed_it(
    service: MigratorService, monkeypatch: pytest.MonkeyPatch, opened_in: PoolsSeen | None
) -> None:
    # While the second batch waits, the application writes a row of a later batch. Its batch
    # seals the new value and backs it up with it: when its token is damaged later, the rollback
    # restores the application's value from that backup.
    written = "written by the application during the run"
    before = raw_dump(service.engine)
    with service.engine.connect() as connection:
        late = connection.exec_driver_sql(
            "SELECT max(id) FROM motor_symptoms WHERE gait_notes IS NOT NULL"
        ).scalar_one()
    original = stored_row(service, late)["gait_notes"]
    gate = BatchGate(monkeypatch, open_for=1)
    running = Background(lambda: service.start({**MOTOR, "batch_size": 20, "max_concurrency": 1}))
    assert gate.holding.wait(60)
    app_write(service, late, gait_notes=written)
    gate.release()
    record = running.join()
    assert record.status is Status.COMPLETED, record.error_message
    token = stored_row(service, late)["gait_notes"]
    with service.engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE motor_symptoms SET gait_notes = :bad WHERE id = :id"),
            {"bad": tampered_token(token), "id": late},
        )

    rolled, result = service.rollback(record.id, confirm=True)
    assert rolled.status is Status.ROLLED_BACK and result.unrecoverable == []
    assert result.restored_from_backup == 1
    assert stored_row(service, late)["gait_notes"] == written
    app_write(service, late, gait_notes=original)  # the application's write put back
    assert raw_dump(service.engine) == before
    assert_opened_where_asked(opened_in)


def test_a_row_whose_token_and_backup_are_both_tampered_is_refused_and_nothing_wrong_is_written(
    service: MigratorService, opened_in: PoolsSeen | None
) -> None:
    before = raw_dump(service.engine)
    record = service.start({"batch_size": 40, "max_concurrency": 2})
    assert record.status is Status.COMPLETED
    backup_table = next(t.backup_table for t in record.tables if t.name == "emergency_contacts")
    assert backup_table is not None
    contact = tamper_contact_and_backup(service.engine, backup_table)
    tampered = raw_dump(service.engine)

    with pytest.raises(RollbackIncomplete, match=re.escape(contact.shown())) as refused:
        service.rollback(record.id, confirm=True)
    assert str(refused.value).startswith("1 row")  # that row alone

    # Every other row is restored exactly; the refused row keeps what it held (its tokens, the
    # altered one included), and no other column, table or value differs.
    key = {"patient_id": contact.patient, "contact_no": contact.contact}
    assert raw_dump(service.engine) == with_row_from(before, tampered, "emergency_contacts", key)
    assert with_row_from(before, tampered, "emergency_contacts", key) != before
    assert sealed_keys(service.engine, service.mapping(), "emergency_contacts") == [
        (contact.patient, contact.contact)
    ]
    still = service.status(record.id)
    assert still.status is Status.COMPLETED and still.can_rollback
    operations = [e.operation for e in service.audit_entries(limit=None, migration_id=record.id).entries]
    assert "data_migration_rollback_failed" in operations
    assert "data_migration_rolled_back" not in operations

    # Once the backup is repaired, rollback finishes the one row left, from the backup.
    contact.repair_backup(service.engine)
    rolled, result = service.rollback(record.id, confirm=True)
    assert rolled.status is Status.ROLLED_BACK
    assert (result.restored_rows, result.restored_from_backup) == (1, 1)
    assert raw_dump(service.engine) == before
    assert_opened_where_asked(opened_in)
