"""Every refusal of the HTTP API, with its status: 400 bad input, 401 no or bad token, 403 role,
404 unknown migration or path, 409 conflicting state, 413 too large, 500 with no internals —
each with the CLI's error object, and nothing written where the request was refused."""

from __future__ import annotations

import io
import zipfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.http.conftest import bearer
from tests.support.faults import server_restarting
from tests.support.migration_helpers import FAST, raw_dump
from tui_migrator.common.settings import Settings
from tui_migrator.http.app import create_app
from tui_migrator.http.throttle import RefusalThrottle
from tui_migrator.service import api_tokens
from tui_migrator.service.evidence_bundle import verify_with_settings
from tui_migrator.service.facade import MigratorService
from tui_migrator.storage.audit_operations import AuditOperation
from tui_migrator.storage.migration_status import Status
from tui_migrator.storage.tables import utc_now

API = "/api/data-migration"
# Each endpoint that changes something, with a body it accepts.
MUTATING = [
    ("POST", "/start", {"batchSize": 50}),
    ("POST", "/{id}/cancel", {"reason": "why"}),
    ("POST", "/{id}/rollback", {"confirmRollback": True}),
    ("POST", "/{id}/pause", None),
    ("POST", "/{id}/continue", None),
    ("POST", "/{id}/resume", None),
]


def refused(response: Any, status: int, code: str) -> dict[str, Any]:
    payload = response.json()
    assert response.status_code == status, payload
    assert payload["success"] is False and payload["errorCode"] == code and payload["error"]
    return dict(payload)


@pytest.mark.parametrize(
    ("method", "path", "body", "fragments"),
    [
        # A body is read as a configuration file is: its keys, its types, every problem at once.
        (
            "POST",
            "/start",
            {"batchSize": 0, "batch_size": 1},
            ["2 problems", "batchSize: must be from 1 to 1000", "did you mean batchSize"],
        ),
        (
            "POST",
            "/start",
            {"batchSize": "500", "dryRun": 1},
            ["batchSize: must be a whole number", "dryRun: must be true or false"],
        ),
        ("POST", "/start", {"dataCategories": ["NOPE"]}, ["NOPE is not a data category"]),
        ("POST", "/start", [1, 2], ["must be one object"]),
        # The schedule's keys are MigrationConfig's too: the body is checked like a file.
        ("POST", "/start", {"window": "25:00-03:00"}, ["window"]),
        ("POST", "/start", {"window": "01:00-05:00", "timezone": "Mars/Olympus"}, ["Mars/Olympus"]),
        ("GET", "/estimate?maxConcurrency=many", None, ["maxConcurrency"]),
        ("GET", "/list?limit=0", None, ["limit"]),
        ("GET", "/list?status=done", None, ["'done' is not a migration status"]),
        ("POST", "/{id}/cancel", {}, ["reason"]),
        ("POST", "/{id}/rollback", {"confirmRollback": False}, ["needs confirmation"]),
        ("POST", "/{id}/rollback", {"confirm": True}, ["confirmRollback"]),
    ],
)
def test_bad_input_is_a_400_naming_the_problem_and_writes_nothing(
    client: TestClient,
    service: MigratorService,
    admin_token: str,
    method: str,
    path: str,
    body: Any,
    fragments: list[str],
) -> None:
    migration_id = service.start({**FAST, "data_categories": ["DEMOGRAPHICS"]}).id
    before = raw_dump(service.engine)
    response = client.request(
        method, API + path.format(id=migration_id), headers=bearer(admin_token), json=body
    )
    payload = response.json()
    assert response.status_code == 400, payload
    assert payload["success"] is False and payload["errorCode"] in ("bad_input", "invalid_config")
    for fragment in fragments:
        assert fragment in payload["error"]
    assert raw_dump(service.engine) == before


def _audited_refusals(service: MigratorService) -> list[dict[str, Any]]:
    page = service.audit_entries(limit=1000)
    return [entry.details for entry in page.entries if entry.operation == AuditOperation.API_REQUEST_REFUSED]


def test_no_malformed_unknown_revoked_or_expired_token_is_let_in_and_each_is_audited(
    client: TestClient, service: MigratorService, admin_token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    token_id = admin_token.split("_")[1] + "_" + admin_token.split("_")[2]
    wrong_secret = admin_token[:-4] + ("AAAA" if not admin_token.endswith("AAAA") else "BBBB")
    for headers in ({}, {"Authorization": "Basic abc"}, bearer("nonsense"), bearer(wrong_secret)):
        response = client.get(f"{API}/health", headers=headers)
        payload = refused(response, 401, "unauthenticated")
        assert response.headers["www-authenticate"] == "Bearer"
        assert admin_token not in response.text and wrong_secret[-20:] not in response.text
    assert client.get(f"{API}/health", headers=bearer(admin_token)).status_code == 200

    expiring, _info = service.create_api_token(expires_days=1)
    later = utc_now() + timedelta(days=1, seconds=1)
    monkeypatch.setattr(api_tokens, "utc_now", lambda: later)
    payload = refused(client.get(f"{API}/health", headers=bearer(expiring)), 401, "unauthenticated")
    assert "expired" in payload["error"]
    monkeypatch.undo()

    service.revoke_api_token(token_id)
    payload = refused(client.get(f"{API}/health", headers=bearer(admin_token)), 401, "unauthenticated")
    assert "revoked" in payload["error"]
    refusals = _audited_refusals(service)
    assert len(refusals) == 6
    assert all(admin_token not in str(details) and wrong_secret not in str(details) for details in refusals)


@pytest.mark.parametrize(("method", "path", "body"), MUTATING)
def test_a_viewer_token_is_refused_on_every_mutating_endpoint(
    client: TestClient,
    service: MigratorService,
    viewer_token: str,
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    migration_id = service.start({**FAST, "data_categories": ["DEMOGRAPHICS"]}).id
    before = raw_dump(service.engine)
    response = client.request(
        method, API + path.format(id=migration_id), headers=bearer(viewer_token), json=body
    )
    payload = refused(response, 403, "permission_denied")
    assert "viewer" in payload["error"] or "carol" in payload["error"]
    # What a viewer may do, it does.
    assert client.get(f"{API}/{migration_id}", headers=bearer(viewer_token)).status_code == 200
    # Only the refusal itself was written (the audit trail records it).
    after = raw_dump(service.engine)
    assert {name: rows for name, rows in after.items() if name != "tm_audit"} == {
        name: rows for name, rows in before.items() if name != "tm_audit"
    }


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/nope", None),
        ("GET", "/nope/failed", None),
        ("GET", "/nope/report", None),
        ("GET", "/audit?migrationId=nope", None),
        *MUTATING[1:],
    ],
)
def test_an_unknown_migration_is_a_404(
    client: TestClient, admin_token: str, method: str, path: str, body: dict[str, Any] | None
) -> None:
    response = client.request(method, API + path.format(id="nope"), headers=bearer(admin_token), json=body)
    payload = refused(response, 404, "unknown_migration")
    assert "'nope'" in payload["error"]


def test_an_unknown_path_or_method_answers_in_the_same_json_form(
    client: TestClient, admin_token: str
) -> None:
    refused(client.get("/api/nowhere", headers=bearer(admin_token)), 404, "not_found")
    refused(client.delete(f"{API}/health", headers=bearer(admin_token)), 405, "method_not_allowed")


@pytest.mark.parametrize(
    ("path", "body"), [("/{id}/resume", None), ("/{id}/cancel", {"reason": "why"}), ("/{id}/pause", None)]
)
def test_an_operation_the_migration_state_does_not_allow_is_a_409(
    client: TestClient, service: MigratorService, admin_token: str, path: str, body: dict[str, Any] | None
) -> None:
    record = service.start({**FAST, "data_categories": ["DEMOGRAPHICS"]})
    assert record.status is Status.COMPLETED
    payload = refused(
        client.post(API + path.format(id=record.id), headers=bearer(admin_token), json=body),
        409,
        "conflicting_state",
    )
    assert "completed" in payload["error"]


def test_a_body_over_the_limit_is_refused_before_it_is_read(client: TestClient, admin_token: str) -> None:
    response = client.post(f"{API}/start", headers=bearer(admin_token), content=b"{" + b" " * 70_000 + b"}")
    refused(response, 413, "request_too_large")


def test_an_unexpected_error_is_a_500_without_its_details(
    client: TestClient, admin_token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(_self: MigratorService) -> None:
        raise RuntimeError("patient Jane Doe, born 1950-01-02")

    monkeypatch.setattr(MigratorService, "health", broken)
    response = client.get(f"{API}/health", headers=bearer(admin_token))
    payload = refused(response, 500, "internal_error")
    assert "Jane" not in response.text and "1950" not in response.text
    assert "RuntimeError" in payload["error"] and "error log" in payload["hint"]


def test_the_database_failing_under_a_request_is_a_503_in_its_words(
    client: TestClient, admin_token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def restarting(_self: MigratorService) -> None:
        raise server_restarting()

    monkeypatch.setattr(MigratorService, "health", restarting)
    payload = refused(client.get(f"{API}/health", headers=bearer(admin_token)), 503, "database_error")
    assert payload["error"] == "The database failed: terminating connection due to administrator command."
    assert "run the command again" in payload["hint"]


def test_the_openapi_description_names_every_endpoint_and_the_start_body(client: TestClient) -> None:
    description = client.get("/openapi.json").json()
    paths = description["paths"]
    for path in (
        "/start",
        "/estimate",
        "/{migration_id}",
        "/{migration_id}/cancel",
        "/{migration_id}/rollback",
        "/list",
        "/audit",
        "/health",
    ):
        assert API + path in paths, path
    body = paths[f"{API}/start"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    # The seed's MigrationConfig keys, the schedule's and the sweep's.
    assert set(body["properties"]) == {
        "batchSize",
        "maxConcurrency",
        "dryRun",
        "dataCategories",
        "organizationIds",
        "skipIntegrityChecks",
        "createBackups",
        "window",
        "timezone",
        "notBefore",
        "sweepLater",
    }
    assert "DEMOGRAPHICS" in body["properties"]["dataCategories"]["items"]["enum"]


def test_an_address_sending_refused_tokens_is_turned_away_unheard_for_a_while(
    service: MigratorService, admin_token: str
) -> None:
    """Each refused token is audited; a flood of them must not fill the trail (or hold the
    database's write lock): after the limit, the address gets 429 without the service being
    asked, until the window has passed."""
    now = [1000.0]
    throttle = RefusalThrottle(limit=3, window=60, clock=lambda: now[0])
    with TestClient(create_app(service, throttle=throttle), raise_server_exceptions=False) as client:
        for _ in range(3):
            refused(client.get(f"{API}/health", headers=bearer("tmtok_guess")), 401, "unauthenticated")
        audited = len(_audited_refusals(service))
        for headers in (bearer("tmtok_guess"), bearer(admin_token)):
            response = client.get(f"{API}/health", headers=headers)
            refused(response, 429, "too_many_refusals")
            assert response.headers["retry-after"] == "60"
        assert len(_audited_refusals(service)) == audited == 3
        now[0] += 61
        assert client.get(f"{API}/health", headers=bearer(admin_token)).status_code == 200


def test_the_evidence_bundle_comes_as_a_zip_that_verifies_offline(
    client: TestClient, service: MigratorService, settings: Settings, admin_token: str, tmp_path: Path
) -> None:
    record = service.start({**FAST, "data_categories": ["DEMOGRAPHICS"]})
    response = client.get(f"{API}/{record.id}/evidence", headers=bearer(admin_token))
    assert response.status_code == 200 and response.headers["content-type"] == "application/zip"
    assert f'filename="{record.id}-evidence.zip"' in response.headers["content-disposition"]
    zipfile.ZipFile(io.BytesIO(response.content)).extractall(tmp_path / "unzipped")
    verification = verify_with_settings(settings, tmp_path / "unzipped" / record.id)
    assert verification.intact, verification
    # An id from the URL names nothing on the server's disk before it is known.
    refused(client.get(f"{API}/..%2F..%2Fetc/evidence", headers=bearer(admin_token)), 404, "not_found")
    refused(client.get(f"{API}/nope/evidence", headers=bearer(admin_token)), 404, "unknown_migration")
