"""Roles are enforced in the service, refusals are audited, and the CLI exits 3."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from pydantic import SecretStr

from tests.support.databases import ADMIN, BOTH_BACKENDS, make_settings
from tests.support.threads import run_at_once
from tui_migrator.cli.main import main
from tui_migrator.common.errors import BadInput, PermissionDenied
from tui_migrator.common.settings import Settings
from tui_migrator.service.facade import MigratorService
from tui_migrator.storage import operators
from tui_migrator.storage.operators import Action, Role

pytestmark = BOTH_BACKENDS


def open_as(settings: Settings, user: str) -> MigratorService:
    return MigratorService.open(settings, user=user, may_set_up=True)


def test_user_who_set_the_database_up_is_the_first_super_admin(service: MigratorService) -> None:
    assert service.role() is Role.SUPER_ADMIN
    (only,) = service.list_operators()
    assert (only.username, only.role) == (ADMIN, Role.SUPER_ADMIN)
    initialized = service.audit_entries(limit=None).entries[-1]
    assert initialized.operation == "tool_initialized" and initialized.details["firstSuperAdmin"] == ADMIN


def test_processes_setting_up_a_new_database_at_once_make_one_setup(
    empty_database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Everyone sees an empty database, then all try to create the tool's tables at once."""
    from tui_migrator.crypto.keys import generate_master_key
    from tui_migrator.service import opening as service_module

    users = ["alice", "bob", "carol", "dave"]
    everyone_looked = threading.Barrier(len(users), timeout=20)
    real_check = service_module.tool_tables_exist

    def check_then_wait(engine):  # type: ignore[no-untyped-def]
        found = real_check(engine)
        everyone_looked.wait()
        return found

    monkeypatch.setattr(service_module, "tool_tables_exist", check_then_wait)
    # The key comes from the environment: the key file's own first-use race is not this test's.
    settings = make_settings(tmp_path, database_url=empty_database_url).model_copy(
        update={"master_key": SecretStr(generate_master_key())}
    )

    def open_and_close(user: str) -> None:
        MigratorService.open(settings, user=user, may_set_up=True).close()

    assert run_at_once(open_and_close, users) == []
    monkeypatch.undo()
    (first,) = [u for u in users if _is_super_admin(settings, u)]
    with MigratorService.open(settings, user=first, may_set_up=True) as opened:
        assert [o.username for o in opened.list_operators()] == [first]
        entries = opened.audit_entries(limit=None).entries
        assert [e.operation for e in entries] == ["tool_initialized"]
        assert opened.verify_audit(record=False).intact


def _is_super_admin(settings: Settings, user: str) -> bool:
    with MigratorService.open(settings, user=user, may_set_up=True) as opened:
        return opened.role() is Role.SUPER_ADMIN


def test_viewer_may_read_but_not_manage_and_the_refusal_is_audited(
    service: MigratorService, settings: Settings
) -> None:
    service.grant("bob", "viewer")
    with open_as(settings, "bob") as bob:
        assert bob.audit_entries().total_entries >= 2
        with pytest.raises(PermissionDenied, match="role viewer.*may not run 'operators grant'") as refused:
            bob.grant("bob", "super_admin")
        assert refused.value.exit_code == 3
    latest = service.audit_entries(limit=1).entries[0]
    assert (latest.operation, latest.user_id, latest.success) == ("permission_denied", "bob", False)
    assert latest.details["attemptedOperation"] == "operators grant"
    assert service.role() is Role.SUPER_ADMIN
    assert {o.username: o.role for o in service.list_operators()}["bob"] is Role.VIEWER


def test_user_without_a_role_is_refused_even_reading(service: MigratorService, settings: Settings) -> None:
    with (
        open_as(settings, "carol") as carol,
        pytest.raises(PermissionDenied, match="'carol' has no role.*operators grant carol viewer"),
    ):
        carol.audit_entries()
    assert service.audit_entries(limit=1).entries[0].operation == "permission_denied"


def test_readonly_session_refuses_changes_even_for_a_super_admin(settings: Settings) -> None:
    with open_as(settings.model_copy(update={"readonly": True}), ADMIN) as readonly:
        readonly.audit_entries()
        with pytest.raises(PermissionDenied, match="read-only"):
            readonly.grant("dave", "viewer")


def test_denied_reason_is_the_short_reason_a_ui_shows_beside_a_disabled_action(
    service: MigratorService, settings: Settings
) -> None:
    assert service.denied_reason(Action.MIGRATE) is None
    service.grant("bob", "viewer")
    with open_as(settings, "bob") as bob:
        assert bob.denied_reason(Action.READ) is None
        assert bob.denied_reason(Action.MIGRATE) == "bob is viewer: only a super_admin may change migrations"
    with open_as(settings, "carol") as carol:
        assert (
            carol.denied_reason(Action.MIGRATE)
            == "carol is without a role: only a super_admin may change migrations"
        )
    with open_as(settings.model_copy(update={"readonly": True}), ADMIN) as readonly:
        assert readonly.denied_reason(Action.READ) is None
        assert readonly.denied_reason(Action.MIGRATE) == "read-only session (--readonly)"


def test_last_super_admin_cannot_be_revoked_or_demoted(service: MigratorService) -> None:
    with pytest.raises(BadInput, match="last super_admin"):
        service.revoke(ADMIN)
    with pytest.raises(BadInput, match="last super_admin"):
        service.grant(ADMIN, "viewer")
    service.grant("erin", "super_admin")
    service.revoke(ADMIN)
    with open_as(service.settings, "erin") as erin:
        assert {o.username for o in erin.list_operators()} == {"erin"}


@pytest.mark.parametrize(
    ("user", "role", "message"),
    [
        ("bob", "admin", "'admin' is not a role.*super_admin, viewer"),
        ("bad name", "viewer", "not a valid operating-system user name"),
    ],
)
def test_bad_grant_input_is_exit_2_and_writes_nothing(
    service: MigratorService, user: str, role: str, message: str
) -> None:
    before = service.audit_entries(limit=None).total_entries
    with pytest.raises(BadInput, match=message):
        service.grant(user, role)
    assert service.audit_entries(limit=None).total_entries == before


def test_revoking_an_unknown_user_is_bad_input(service: MigratorService) -> None:
    with pytest.raises(BadInput, match="no role"):
        service.revoke("nobody")


def test_cli_denial_exits_3_with_json_error(
    service: MigratorService,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    service.grant("bob", "viewer")
    monkeypatch.setattr("tui_migrator.storage.operators.current_os_user", lambda: "bob")
    code = main(
        [
            "operators",
            "grant",
            "bob",
            "super_admin",
            "--json",
            "--db",
            settings.effective_database_url,
            "--data-dir",
            str(settings.data_dir),
        ]
    )
    payload = json.loads(capsys.readouterr().out)
    assert code == 3
    assert payload == {
        "success": False,
        "error": payload["error"],
        "errorCode": "permission_denied",
        "hint": payload["hint"],
    }
    assert "bob" in payload["error"]


def test_cli_grant_list_revoke(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    where = ["--db", settings.effective_database_url, "--data-dir", str(settings.data_dir)]
    assert main(["operators", "grant", "frank", "viewer", *where]) == 0
    assert "frank is now viewer" in capsys.readouterr().out
    assert main(["operators", "list", "--json", *where]) == 0
    listed = json.loads(capsys.readouterr().out)["data"]["operators"]
    assert {(o["username"], o["role"]) for o in listed} == {(ADMIN, "super_admin"), ("frank", "viewer")}
    assert main(["operators", "revoke", "frank", *where]) == 0


@pytest.mark.backends("postgresql")
def test_two_revokes_of_the_last_two_super_admins_at_once_leave_one(service: MigratorService) -> None:
    """The count of super_admins locks their rows: a second remover waits, then counts one."""
    service.grant("bob", "super_admin")
    with service.engine.connect() as first:
        first.begin()
        assert operators.count_super_admins(first, service._session.role_key()) == 2
        seen: list[int] = []

        def second_remover() -> None:
            with service.engine.connect() as second, second.begin():
                seen.append(operators.count_super_admins(second, service._session.role_key()))

        waiting = threading.Thread(target=second_remover)
        waiting.start()
        waiting.join(0.5)
        assert waiting.is_alive(), "the second count did not wait for the first transaction"
        operators.delete_operator(first, "bob")
        first.commit()
    waiting.join(10)
    assert seen == [1]
    with pytest.raises(BadInput, match="last super_admin"):
        service.revoke(ADMIN)
