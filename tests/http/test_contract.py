"""One contract for every face: each of the seed's eight responses, as the HTTP API and the
CLI's --json give it, carries every field the seed's example names, with the seed's types
(extra fields are allowed; none is renamed). One table of cases, both faces."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.http import seed_examples as seed
from tests.http.conftest import bearer
from tests.support.cli import run
from tests.support.faults import BatchGate
from tests.support.migration_helpers import FAST, Background, wait_for
from tui_migrator.common.settings import Settings
from tui_migrator.service.facade import MigratorService
from tui_migrator.storage.migration_status import Status

API = "/api/data-migration"
# Fields the seed shows with a value that a finished migration has none for.
NULL_WHEN_FINISHED = frozenset({"estimatedRemainingMinutes"})


def shape_problems(expected: Any, actual: Any, path: str = "data") -> list[str]:
    """Where ``actual`` lacks a field of ``expected`` or holds another type than it does."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{path}: an object in the seed, {type(actual).__name__} here"]
        problems = []
        for key, value in expected.items():
            if key not in actual:
                problems.append(f"{path}.{key}: missing")
            else:
                problems += shape_problems(value, actual[key], f"{path}.{key}")
        return problems
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return [f"{path}: a list in the seed, {type(actual).__name__} here"]
        if expected and actual:
            return shape_problems(expected[0], actual[0], f"{path}[0]")
        return []
    if expected is None or (actual is None and path.rsplit(".", 1)[-1] in NULL_WHEN_FINISHED):
        return []
    if isinstance(expected, bool) or isinstance(actual, bool):
        same = isinstance(expected, bool) and isinstance(actual, bool)
    elif isinstance(expected, (int, float)):
        same = isinstance(actual, (int, float))
    else:
        same = isinstance(actual, type(expected))
    return [] if same else [f"{path}: {type(expected).__name__} in the seed, {actual!r} here"]


def test_the_shape_check_finds_a_missing_field_and_a_wrong_type() -> None:
    assert shape_problems({"a": {"b": 1, "c": "x"}}, {"a": {"b": "1"}}) == [
        "data.a.b: int in the seed, '1' here",
        "data.a.c: missing",
    ]
    assert shape_problems({"rate": "95%", "n": 2}, {"rate": None, "n": 2.5}) == [
        "data.rate: str in the seed, None here"
    ]


class Faces:
    """One operation through either face, as its data object."""

    def __init__(
        self,
        face: str,
        service: MigratorService,
        settings: Settings,
        client: TestClient,
        token: str,
        capsys: Any,
    ) -> None:
        self.face, self.service, self.settings = face, service, settings
        self.client, self.token, self.capsys = client, token, capsys

    def ask(
        self, method: str, path: str, argv: list[str], body: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        if self.face == "http":
            response = self.client.request(method, API + path, headers=bearer(self.token), json=body)
            payload = response.json()
            assert response.status_code == 200, payload
        else:
            code, payload = run(self.settings, self.capsys, *argv)
            assert code == 0, payload
        assert payload["success"] is True
        return dict(payload["data"])

    def completed(self) -> str:
        record = self.service.start({**FAST, "data_categories": ["DEMOGRAPHICS"]})
        assert record.status is Status.COMPLETED
        return record.id

    def finished(self, migration_id: str, status: Status) -> None:
        wait_for(lambda: self.service.status(migration_id).status is status, timeout=60)


def start(faces: Faces) -> dict[str, Any]:
    data = faces.ask(
        "POST",
        "/start",
        ["start", "--detach", "--yes", "--batch-size", "50", "--category", "DEMOGRAPHICS"],
        {"batchSize": 50, "dataCategories": ["DEMOGRAPHICS"]},
    )
    faces.finished(data["migrationId"], Status.COMPLETED)
    return data


def estimate(faces: Faces) -> dict[str, Any]:
    return faces.ask("GET", "/estimate?batchSize=100", ["estimate", "--batch-size", "100"])


def status(faces: Faces) -> dict[str, Any]:
    migration_id = faces.completed()
    return faces.ask("GET", f"/{migration_id}", ["status", migration_id])


def cancel(faces: Faces, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    # Both faces wait for the worker's acknowledgement for a while, then answer "cancelling":
    # here they wait until it has stopped, however busy the machine (the worker stops after
    # the batch the gate releases).
    real_cancel = MigratorService.cancel

    def cancel_until_stopped(self: MigratorService, migration_id: str, reason: str, **_wait: float) -> Any:
        return real_cancel(self, migration_id, reason, wait_seconds=float("inf"))

    monkeypatch.setattr(MigratorService, "cancel", cancel_until_stopped)
    gate = BatchGate(monkeypatch, open_for=1)
    running = Background(lambda: faces.service.start({"batch_size": 20, "max_concurrency": 1}))
    assert gate.holding.wait(60)
    migration_id = faces.service.list_migrations(limit=1)[0][0].id
    # The held batch goes on once the request is written; the worker then stops after it.
    threading.Timer(0.3, gate.release).start()
    data = faces.ask(
        "POST",
        f"/{migration_id}/cancel",
        ["cancel", migration_id, "--reason", "Emergency maintenance required"],
        {"reason": "Emergency maintenance required"},
    )
    assert running.join().status is Status.CANCELLED
    return data


def rollback(faces: Faces) -> dict[str, Any]:
    migration_id = faces.completed()
    data = faces.ask(
        "POST",
        f"/{migration_id}/rollback",
        ["rollback", migration_id, "--confirm", "--detach"],
        {"confirmRollback": True},
    )
    faces.finished(migration_id, Status.ROLLED_BACK)
    return data


def listing(faces: Faces) -> dict[str, Any]:
    faces.completed()
    data = faces.ask("GET", "/list", ["list"])
    assert data["migrations"], "an entry to compare"
    return data


def audit(faces: Faces) -> dict[str, Any]:
    faces.completed()
    data = faces.ask("GET", "/audit", ["audit"])
    # The seed's entry is a start's, whose details name the batch size and the records.
    started = [entry for entry in data["auditEntries"] if entry["operation"] == "data_migration_started"]
    assert started, "a start's entry to compare"
    return {**data, "auditEntries": started}


def health(faces: Faces) -> dict[str, Any]:
    return faces.ask("GET", "/health", ["health"])


CASES: list[tuple[str, dict[str, Any], Callable[..., dict[str, Any]]]] = [
    ("start", seed.START, start),
    ("estimate", seed.ESTIMATE, estimate),
    ("status", seed.STATUS, status),
    ("cancel", seed.CANCEL, cancel),
    ("rollback", seed.ROLLBACK, rollback),
    ("list", seed.LIST, listing),
    ("audit", seed.AUDIT, audit),
    ("health", seed.HEALTH, health),
]


@pytest.mark.parametrize("face", ["http", "cli"])
@pytest.mark.parametrize(("operation", "example", "call"), CASES, ids=[case[0] for case in CASES])
def test_every_response_has_the_seed_fields_and_types(
    face: str,
    operation: str,
    example: dict[str, Any],
    call: Callable[..., dict[str, Any]],
    service: MigratorService,
    settings: Settings,
    client: TestClient,
    admin_token: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    workers_may_run: None,
) -> None:
    faces = Faces(face, service, settings, client, admin_token, capsys)
    data = call(faces, monkeypatch) if operation == "cancel" else call(faces)
    assert shape_problems(example, data) == []


def test_sweep_later_through_http_is_forecast_and_kept_with_the_migration(
    service: MigratorService,
    settings: Settings,
    client: TestClient,
    admin_token: str,
    capsys: pytest.CaptureFixture[str],
    workers_may_run: None,
) -> None:
    faces = Faces("http", service, settings, client, admin_token, capsys)
    sqlite = service.engine.dialect.name == "sqlite"
    forecast = faces.ask("GET", "/estimate?batchSize=100&sweepLater=true", [])["sweep"]
    assert forecast["putOff"] is sqlite and forecast["automatic"] is False

    started = faces.ask(
        "POST", "/start", [], {"batchSize": 50, "dataCategories": ["DEMOGRAPHICS"], "sweepLater": True}
    )

    faces.finished(started["migrationId"], Status.COMPLETED)
    status = faces.ask("GET", f"/{started['migrationId']}", [])
    assert status["config"]["sweepLater"] is True
    assert service.sweep_status(started["migrationId"]).swept is False
