"""Fixtures of the HTTP API's tests: the app over the test's service (in process), and API
tokens of a super_admin and of a viewer."""

from __future__ import annotations

import os
import pwd
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tui_migrator.http.app import create_app
from tui_migrator.service.facade import MigratorService

VIEWER = "carol"


@pytest.fixture
def client(service: MigratorService) -> Iterator[TestClient]:
    # raise_server_exceptions=False: an unexpected error is answered as a client sees it (500).
    with TestClient(create_app(service), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def admin_token(service: MigratorService) -> str:
    token, _info = service.create_api_token(expires_days=1)
    return token


@pytest.fixture
def viewer_token(service: MigratorService) -> str:
    service.grant(VIEWER, "viewer")
    with service.acting_as(VIEWER) as viewer:
        token, _info = viewer.create_api_token(expires_days=1)
    return token


@pytest.fixture
def workers_may_run(service: MigratorService) -> None:
    """Detached workers (a started migration, a background rollback) run as the real OS user,
    who needs a role too (in-process calls act as the template's administrator)."""
    service.grant(pwd.getpwuid(os.geteuid()).pw_name, "super_admin")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
