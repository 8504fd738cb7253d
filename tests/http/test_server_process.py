"""The API end to end, as a platform uses it: a real `tui-migrator serve` process (uvicorn) on a
free port, driven over HTTP — start, poll the status until completed, list, audit, roll back,
poll until rolled back — on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from tests.http.conftest import bearer
from tests.support.databases import BOTH_BACKENDS
from tui_migrator.common.settings import Settings
from tui_migrator.service.facade import MigratorService

pytestmark = [BOTH_BACKENDS, pytest.mark.slow]
API = "/api/data-migration"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def server(settings: Settings, workers_may_run: None, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "XDG_DATA_HOME": str(tmp_path / "xdg-data"),
        "LANG": "C.UTF-8",
    }
    command = [
        sys.executable, "-m", "tui_migrator", "serve", "--port", str(port),
        "--db", settings.effective_database_url, "--data-dir", str(settings.data_dir),
    ]  # fmt: skip
    log = (tmp_path / "server.log").open("w")
    process = subprocess.Popen(command, env=environment, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        # Until it answers, or has exited (which fails the test with its log): no deadline,
        # so a slow machine only makes it wait.
        while True:
            assert process.poll() is None, (tmp_path / "server.log").read_text()
            try:
                httpx.get(base + API + "/health", timeout=None)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        yield base
    finally:
        # Ctrl-C: uvicorn finishes the requests in flight and exits 0 (checked below).
        process.send_signal(signal.SIGINT)
        process.wait()
        log.close()
    assert process.returncode == 0, (tmp_path / "server.log").read_text()


def poll(client: httpx.Client, path: str, until: str) -> dict[str, Any]:
    """The status once it is ``until``; a migration that ended otherwise fails the test (a
    worker that died shows as interrupted once its heartbeat stops), and so does a rollback that
    stopped part way (its process refused or died: its mark's heartbeat went stale). A rollback
    refused at its start once left the migration marked as rolling back and this loop polling
    for ever (2026-12-07, storage/operation_guard.py)."""
    while True:
        response = client.get(API + path)
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()["data"]
        if data["status"] == until:
            return data
        assert data["status"] not in ("failed", "interrupted", "cancelled"), data
        rollback = data.get("rollback") or {}
        assert not rollback.get("stoppedPartWay") and not rollback.get("error"), data
        time.sleep(0.2)


def test_start_poll_list_audit_and_roll_back_over_http(server: str, service: MigratorService) -> None:
    token, _info = service.create_api_token(expires_days=1)
    with httpx.Client(base_url=server, headers=bearer(token), timeout=None) as client:
        started = client.post(
            API + "/start", json={"batchSize": 50, "maxConcurrency": 2, "dataCategories": ["DEMOGRAPHICS"]}
        )
        assert started.status_code == 200, started.text
        start = started.json()["data"]
        assert (start["status"], start["message"]) == ("started", "Data migration started successfully")
        migration_id = start["migrationId"]

        done = poll(client, f"/{migration_id}", "completed")
        assert done["isComplete"] and done["canRollback"]
        assert done["progress"]["encryptedRecords"] == done["progress"]["totalRecords"] > 0

        listing = client.get(API + "/list", params={"status": "completed"}).json()["data"]
        assert [item["id"] for item in listing["migrations"]] == [migration_id]

        audit = client.get(API + "/audit", params={"migrationId": migration_id}).json()["data"]
        operations = {entry["operation"] for entry in audit["auditEntries"]}
        assert {"data_migration_started", "data_migration_completed"} <= operations
        assert audit["secureAuditTrail"] is True
        # The start was the token's operator's, not the server's OS user's.
        assert {e["userId"] for e in audit["auditEntries"] if e["operation"] == "data_migration_started"} == {
            service.user
        }

        # On SQLite a sweep follows the completion at once; a rollback is refused (409) until
        # the sweep has released the migration.
        while (
            rolling := client.post(API + f"/{migration_id}/rollback", json={"confirmRollback": True})
        ).status_code == 409:
            assert "sweep" in rolling.text, rolling.text
            time.sleep(0.2)
        assert rolling.status_code == 200, rolling.text
        back = poll(client, f"/{migration_id}", "rolled_back")
        assert back["rollback"]["rolledBackAt"]
    # Every plaintext value is back as it was: the service reads the same table as before.
    record = service.status(migration_id)
    assert record.status.value == "rolled_back"
