"""The data keys over HTTP: GET /keys answers what ``keys list --json`` prints (one view for both
faces, never key material); POST /keys/rotate starts a key rotation in a detached worker and
answers as /start does; a viewer may list but not rotate, and an organization without keys is
bad input. Nothing is written where a rotation is refused."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.http.conftest import bearer
from tests.support.cli import run
from tests.support.databases import ADMIN
from tests.support.migration_helpers import FAST, wait_for
from tui_migrator.common.settings import Settings
from tui_migrator.service.facade import MigratorService
from tui_migrator.storage.keyring import KEY_STATUS_ACTIVE, KEY_STATUS_RETIRED
from tui_migrator.storage.migration_status import Status

API = "/api/data-migration"
FINAL = {status.value for status in Status if status.is_finished}


def encrypted(service: MigratorService) -> str:
    """A completed migration, so that every organization has a data key."""
    record = service.start({**FAST, "data_categories": ["DEMOGRAPHICS"]})
    assert record.status is Status.COMPLETED, record.error_message
    return record.id


def answered(response: Any, status: int = 200) -> dict[str, Any]:
    payload = response.json()
    assert response.status_code == status, payload
    return dict(payload)


def keys_by_generation(data: dict[str, Any]) -> dict[tuple[str, int], str]:
    return {(key["organizationId"], key["generation"]): key["status"] for key in data["dataKeys"]}


def test_keys_answers_what_keys_list_json_prints(
    client: TestClient,
    admin_token: str,
    service: MigratorService,
    settings: Settings,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    encrypted(service)
    data = answered(client.get(f"{API}/keys", headers=bearer(admin_token)))["data"]
    monkeypatch.setattr("tui_migrator.storage.operators.current_os_user", lambda: ADMIN)
    code, printed = run(settings, capsys, "keys", "list")
    assert code == 0, printed
    assert data == printed["data"]
    assert data["masterKeyFingerprint"] == service.master_key_fingerprint
    assert [key["keyId"] for key in data["dataKeys"]] == [info.key_id for info in service.data_keys()]
    # What may be shown of a key, and nothing of the key itself.
    assert {field for key in data["dataKeys"] for field in key} == {
        "keyId",
        "organizationId",
        "generation",
        "algorithm",
        "status",
        "createdAt",
        "createdBy",
    }


@pytest.mark.usefixtures("workers_may_run")
def test_rotate_runs_detached_and_its_status_says_rotation_until_completed(
    client: TestClient, admin_token: str, service: MigratorService
) -> None:
    encrypted(service)
    before = keys_by_generation(answered(client.get(f"{API}/keys", headers=bearer(admin_token)))["data"])
    organizations = sorted({organization for organization, _generation in before})

    started = answered(
        client.post(f"{API}/keys/rotate", headers=bearer(admin_token), json={"batchSize": 50})
    )["data"]
    assert started["status"] == "started" and started["migrationId"]
    assert started["config"]["organizationIds"] == organizations
    assert started["config"]["createBackups"] is False

    def status() -> dict[str, Any]:
        return answered(client.get(f"{API}/{started['migrationId']}", headers=bearer(admin_token)))["data"]

    wait_for(lambda: status()["status"] in FINAL, timeout=60)
    final = status()
    assert final["status"] == Status.COMPLETED.value, final["errorMessage"]
    assert final["kind"] == "rotation"
    assert final["canRollback"] is False

    after = keys_by_generation(answered(client.get(f"{API}/keys", headers=bearer(admin_token)))["data"])
    assert after == {
        **{(organization, 1): KEY_STATUS_RETIRED for organization in organizations},
        **{(organization, 2): KEY_STATUS_ACTIVE for organization in organizations},
    }


def test_a_viewer_may_list_keys_but_rotating_is_forbidden_and_writes_no_key(
    client: TestClient, viewer_token: str, service: MigratorService
) -> None:
    encrypted(service)
    keys_before, migrations_before = service.data_keys(), service.list_migrations(limit=None)[1]
    listed = answered(client.get(f"{API}/keys", headers=bearer(viewer_token)))["data"]
    assert len(listed["dataKeys"]) == len(keys_before)

    refused = answered(client.post(f"{API}/keys/rotate", headers=bearer(viewer_token), json={}), 403)
    assert refused["success"] is False and refused["errorCode"] == "permission_denied"
    assert "keys rotate" in refused["error"]
    assert service.data_keys() == keys_before
    assert service.list_migrations(limit=None)[1] == migrations_before


@pytest.mark.parametrize(
    ("body", "fragments"),
    [
        (
            {"organizationIds": ["org_nowhere"]},
            ["No data key to rotate for org_nowhere", "Nothing was started"],
        ),
        # A setting of /start's body that a rotation has no use for, named as the body named it.
        ({"dataCategories": ["DEMOGRAPHICS"]}, ["does not take dataCategories"]),
        # Read as /start reads its body: the same types.
        ({"batchSize": "50"}, ["batchSize"]),
    ],
    ids=["unknown-organization", "setting-not-taken", "wrong-type"],
)
def test_a_rotation_the_body_cannot_start_is_bad_input_and_writes_nothing(
    client: TestClient,
    admin_token: str,
    service: MigratorService,
    body: dict[str, Any],
    fragments: list[str],
) -> None:
    encrypted(service)
    keys_before, migrations_before = service.data_keys(), service.list_migrations(limit=None)[1]
    refused = answered(client.post(f"{API}/keys/rotate", headers=bearer(admin_token), json=body), 400)
    assert refused["success"] is False
    for fragment in fragments:
        assert fragment in refused["error"], refused
    assert service.data_keys() == keys_before
    assert service.list_migrations(limit=None)[1] == migrations_before


def test_keys_is_not_taken_for_a_migration_id(client: TestClient, admin_token: str) -> None:
    """/keys is its own endpoint: a database with no keys yet lists none (no unknown migration)."""
    data = answered(client.get(f"{API}/keys", headers=bearer(admin_token)))["data"]
    assert data["dataKeys"] == []
