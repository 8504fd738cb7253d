"""`tokens create | list | revoke`: the token is printed once, with how to store and use it; the
list and every later output never show it; refusals exit as for every other command."""

from __future__ import annotations

import pytest

from tests.support.cli import run, where
from tests.support.databases import ADMIN, BOTH_BACKENDS
from tui_migrator.cli.main import main
from tui_migrator.common.settings import Settings
from tui_migrator.service.facade import MigratorService

pytestmark = BOTH_BACKENDS


def test_create_prints_the_token_once_and_list_never_shows_it(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    code, created = run(settings, capsys, "tokens", "create", "--expires", "90")
    assert code == 0, created
    data = created["data"]
    token = data["token"]
    assert token.startswith(f"tmtok_{data['tokenId']}_")
    assert (data["operator"], data["createdBy"], data["status"]) == (ADMIN, ADMIN, "active")
    assert data["expiresAt"] is not None and data["revokedAt"] is None
    assert "cannot be shown again" in data["message"] and "Authorization: Bearer" in data["message"]

    code, listed = run(settings, capsys, "tokens", "list")
    assert code == 0
    assert [t["tokenId"] for t in listed["data"]["tokens"]] == [data["tokenId"]]
    assert listed["data"]["tokens"][0]["status"] == "active"
    assert main(["tokens", "list", *where(settings)]) == 0
    assert main(["audit", "--json", *where(settings)]) == 0
    later = capsys.readouterr().out
    assert data["tokenId"] in later
    assert token not in later and token[len(f"tmtok_{data['tokenId']}_") :] not in later

    with MigratorService.open(settings, user=ADMIN) as service:
        assert service.authenticate_api_token(f"Bearer {token}").operator == ADMIN


def test_create_in_words_says_to_store_the_token_and_how_to_send_it(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["tokens", "create", *where(settings)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("API token tok_") and lines[0].endswith(f"created for {ADMIN} (no expiry).")
    assert lines[1] == "Store it now: it cannot be shown again."
    # The token whole on a line of its own, within 80 columns, to copy.
    assert lines[2].startswith("tmtok_tok_") and len(lines[2]) == len("tmtok_tok_0123456789ab_") + 43
    assert lines[3] == "Send it with each API request as the header: Authorization: Bearer <token>"


def test_revoke_then_the_token_is_refused_and_a_second_revoke_is_bad_input(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    _, created = run(settings, capsys, "tokens", "create")
    token_id = created["data"]["tokenId"]
    code, revoked = run(settings, capsys, "tokens", "revoke", token_id)
    assert code == 0 and revoked["data"]["status"] == "revoked"
    assert revoked["data"]["revokedBy"] == ADMIN and "token" not in revoked["data"]
    code, again = run(settings, capsys, "tokens", "revoke", token_id)
    assert code == 2 and again["errorCode"] == "bad_input" and "already revoked" in again["error"]
    code, listed = run(settings, capsys, "tokens", "list")
    assert [t["status"] for t in listed["data"]["tokens"]] == ["revoked"]


def test_revoking_an_unknown_token_exits_2_naming_it(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    code, refused = run(settings, capsys, "tokens", "revoke", "tok_0123456789ab")
    assert code == 2 and refused["errorCode"] == "bad_input"
    assert "'tok_0123456789ab'" in refused["error"] and "tokens list" in refused["hint"]


@pytest.mark.parametrize(("days", "code"), [("0", 2), ("3651", 2), ("soon", 2)])
def test_an_expiry_out_of_range_or_not_a_number_exits_2(
    settings: Settings, capsys: pytest.CaptureFixture[str], days: str, code: int
) -> None:
    exit_code, refused = run(settings, capsys, "tokens", "create", "--expires", days)
    assert exit_code == code and refused["errorCode"] == "bad_input"
    assert ("1 to 3650 days" if days.isdigit() else "invalid int value") in refused["error"]


def test_a_viewer_may_not_revoke_anothers_token_exit_3(
    settings: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with MigratorService.open(settings, user=ADMIN) as service:
        service.grant("vera", "viewer")
        _, admin_token = service.create_api_token(None)
    monkeypatch.setattr("tui_migrator.storage.operators.current_os_user", lambda: "vera")
    code, refused = run(settings, capsys, "tokens", "revoke", admin_token.token_id)
    assert code == 3 and refused["errorCode"] == "permission_denied"
    code, created = run(settings, capsys, "tokens", "create")
    assert code == 0 and created["data"]["operator"] == "vera"
    code, listed = run(settings, capsys, "tokens", "list")
    assert [t["operator"] for t in listed["data"]["tokens"]] == ["vera"]


def test_tokens_needs_an_action(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    code, refused = run(settings, capsys, "tokens")
    assert code == 2 and "required" in refused["error"]
