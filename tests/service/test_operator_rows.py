"""Roles are authenticated rows: a database writer who inserts, edits or copies a row of
tm_operators gains nothing, and is refused in words that say what happened."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from tests.support.cli import where
from tests.support.databases import ADMIN, BOTH_BACKENDS
from tui_migrator.cli.main import main
from tui_migrator.common.settings import Settings
from tui_migrator.service.facade import MigratorService
from tui_migrator.storage.operators import UnauthenticatedRole
from tui_migrator.storage.tables import operators_table

pytestmark = BOTH_BACKENDS


def _as(monkeypatch: pytest.MonkeyPatch, user: str) -> None:
    monkeypatch.setattr("tui_migrator.storage.operators.current_os_user", lambda: user)


def test_a_role_row_inserted_behind_the_tool_grants_nothing(
    settings: Settings,
    service: MigratorService,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with service.engine.begin() as connection:
        connection.execute(
            sa.insert(operators_table).values(
                username="eve", role="super_admin", granted_by=ADMIN, granted_at=datetime.now(UTC)
            )
        )
    _as(monkeypatch, "eve")
    code = main(["operators", "grant", "mallory", "super_admin", "--json", *where(settings)])
    refusal = json.loads(capsys.readouterr().out)
    assert code == 3
    assert refusal["errorCode"] == "unauthenticated_role"
    assert "role of 'eve' in tm_operators was not written by tui-migrator" in refusal["error"]

    roles = {operator.username: operator for operator in service.list_operators()}
    assert "mallory" not in roles
    assert roles["eve"].authenticated is False and roles[ADMIN].authenticated is True
    latest = service.audit_entries(limit=1).entries[0]
    assert (latest.operation, latest.user_id, latest.details.get("unauthenticatedRole")) == (
        "permission_denied",
        "eve",
        True,
    )
    # The trail still verifies: the attack was on a plain table, which is now authenticated.
    assert service.verify_audit().intact


@pytest.mark.parametrize("edit", ["promote", "copy_admins_proof"])
def test_an_edited_or_copied_row_is_refused(
    service: MigratorService, settings: Settings, monkeypatch: pytest.MonkeyPatch, edit: str
) -> None:
    service.grant("victor", "viewer")
    with service.engine.begin() as connection:
        if edit == "promote":
            connection.execute(
                sa.update(operators_table)
                .where(operators_table.c.username == "victor")
                .values(role="super_admin")
            )
        else:
            admin = connection.execute(
                sa.select(operators_table).where(operators_table.c.username == ADMIN)
            ).one()
            connection.execute(
                sa.update(operators_table)
                .where(operators_table.c.username == "victor")
                .values(
                    role=admin.role,
                    granted_by=admin.granted_by,
                    granted_at=admin.granted_at,
                    proof=admin.proof,
                )
            )
    with MigratorService.open(settings, user="victor") as victor:
        with pytest.raises(UnauthenticatedRole):
            victor.grant("mallory", "super_admin")
        with pytest.raises(UnauthenticatedRole):
            victor.start({"batch_size": 50})
    # A super_admin repairs it: granting again writes a proven row.
    service.grant("victor", "viewer")
    assert {o.username: o.authenticated for o in service.list_operators()}["victor"] is True


def test_a_revoke_removes_an_unauthenticated_row(service: MigratorService) -> None:
    with service.engine.begin() as connection:
        connection.execute(
            sa.insert(operators_table).values(
                username="eve", role="super_admin", granted_by=ADMIN, granted_at=datetime.now(UTC)
            )
        )
    service.revoke("eve")
    assert "eve" not in {o.username for o in service.list_operators()}


def test_health_names_an_unauthenticated_role(service: MigratorService, settings: Settings) -> None:
    with service.engine.begin() as connection:
        connection.execute(
            sa.insert(operators_table).values(
                username="eve", role="viewer", granted_by=ADMIN, granted_at=datetime.now(UTC)
            )
        )
    with MigratorService.open(settings, user="eve") as eve:
        report = eve.health()
    assert report.operator.role is None
    assert any("role of 'eve'" in alert for alert in report.alerts)
