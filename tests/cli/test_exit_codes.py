"""Exit codes as scripts see them: 0 for a completed start or rollback, 1 for a start that ends
failed or cancelled and for a rollback that could not restore every row, 2 for bad input (with
nothing written). In-process through main(), and through the real `python -m tui_migrator`."""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import sys
import threading
from typing import Any

import pytest
import sqlalchemy as sa

from tests.support.cli import run, where
from tests.support.databases import BOTH_BACKENDS
from tests.support.faults import (
    FAULT_MESSAGE,
    BatchGate,
    fail_batches_after,
    sealed_keys,
    tamper_contact_and_backup,
    with_row_from,
)
from tests.support.migration_helpers import latest, raw_dump
from tui_migrator.common.settings import Settings
from tui_migrator.service.facade import MigratorService

pytestmark = BOTH_BACKENDS


def test_a_start_that_ends_failed_exits_1_and_its_rollback_exits_0(
    settings: Settings,
    engine: sa.Engine,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before = raw_dump(engine)
    fail_batches_after(monkeypatch, "motor_symptoms", committed=2)
    code, payload = run(settings, capsys, "start", "--yes", "--batch-size", "20", "--max-concurrency", "1")
    assert code == 1, payload
    assert payload["success"] is False
    assert FAULT_MESSAGE in payload["error"]
    data = payload["data"]
    assert data["status"] == "failed" and data["canRollback"] is True
    assert 0 < data["progress"]["encryptedRecords"] < data["progress"]["totalRecords"]

    code, payload = run(settings, capsys, "rollback", data["id"], "--confirm")
    assert code == 0, payload
    assert payload["success"] is True and payload["data"]["status"] == "rolled_back"
    assert payload["data"]["rollback"]["restoredRows"] == data["progress"]["encryptedRecords"]
    assert raw_dump(engine) == before


def test_a_start_that_ends_cancelled_exits_1(
    settings: Settings,
    service: MigratorService,
    engine: sa.Engine,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before = raw_dump(engine)
    gate = BatchGate(monkeypatch, open_for=3)
    problems: list[BaseException] = []

    def cancel_when_batches_are_held() -> None:
        try:
            assert gate.holding.wait(60), "the migration never reached its fourth batch"
            record = latest(service)
            assert record is not None
            service.cancel(record.id, "Emergency maintenance required", wait_seconds=0)
        except BaseException as error:
            problems.append(error)
        finally:
            gate.release()

    operator = threading.Thread(target=cancel_when_batches_are_held, daemon=True)
    operator.start()
    # main() runs in the main thread: its Ctrl-C handler can only be installed there.
    code, payload = run(settings, capsys, "start", "--yes", "--batch-size", "20")
    operator.join(60)
    assert problems == []
    assert code == 1, payload
    assert payload["success"] is False and payload["error"]
    data = payload["data"]
    assert data["status"] == "cancelled"
    assert data["cancellation"]["reason"] == "Emergency maintenance required"
    assert 0 < data["progress"]["encryptedRecords"] < data["progress"]["totalRecords"]

    code, payload = run(settings, capsys, "rollback", data["id"], "--confirm")
    assert code == 0, payload
    assert raw_dump(engine) == before


# -- the installed entry point, as a separate process ------------------------------------------


def cli(settings: Settings, *argv: str) -> tuple[int, dict[str, Any]]:
    """`python -m tui_migrator ARGV --json` as its own process: exit status and JSON output."""
    completed = subprocess.run(
        [sys.executable, "-m", "tui_migrator", *argv, "--json", *where(settings)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    try:
        payload = json.loads(completed.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"no JSON from {argv}: {completed.stdout!r} {completed.stderr!r}")
    return completed.returncode, payload


def test_exit_codes_of_the_real_entry_point_for_bad_input_start_and_complete_and_incomplete_rollback(
    settings: Settings, service: MigratorService, engine: sa.Engine
) -> None:
    # The process runs as the real operating-system user, who needs the role.
    service.grant(pwd.getpwuid(os.geteuid()).pw_name, "super_admin")
    before = raw_dump(engine)

    code, payload = cli(settings, "start", "--yes", "--batch-size", "0")
    assert code == 2, payload
    assert payload["success"] is False and payload["errorCode"] == "invalid_config"
    assert "--batch-size" in payload["error"]
    assert raw_dump(engine) == before
    code, payload = cli(settings, "list")
    assert code == 0 and payload["data"]["summary"]["total"] == 0  # nothing was started

    code, payload = cli(settings, "start", "--yes", "--batch-size", "40")
    assert code == 0, payload
    started = payload["data"]
    assert started["status"] == "completed"
    backup_table = next(t["backupTable"] for t in started["tables"] if t["name"] == "emergency_contacts")
    contact = tamper_contact_and_backup(engine, backup_table)
    tampered = raw_dump(engine)

    code, payload = cli(settings, "rollback", started["id"], "--confirm")
    assert code == 1, payload
    assert payload["success"] is False and payload["errorCode"] == "rollback_incomplete"
    assert contact.shown() in payload["error"]
    # Every other row was restored; the refused row kept its tokens and nothing else differs.
    key = {"patient_id": contact.patient, "contact_no": contact.contact}
    assert raw_dump(engine) == with_row_from(before, tampered, "emergency_contacts", key)
    assert sealed_keys(engine, service.mapping(), "emergency_contacts") == [
        (contact.patient, contact.contact)
    ]
    code, payload = cli(settings, "status", started["id"])
    assert code == 0 and payload["data"]["status"] == "completed" and payload["data"]["canRollback"]

    contact.repair_backup(engine)
    code, payload = cli(settings, "rollback", started["id"], "--confirm")
    assert code == 0, payload
    assert payload["data"]["status"] == "rolled_back"
    assert payload["data"]["rollback"]["restoredFromBackup"] == 1
    assert raw_dump(engine) == before
