"""API tokens: a token authenticates as its operator and nothing else; the database never holds
it; every refusal says why and is audited by the token's id, never its secret; roles decide who
may create, list and revoke, as for every other operation."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from tests.support.databases import ADMIN, BOTH_BACKENDS
from tests.support.db_state import database_state, sqlite_file_bytes
from tui_migrator.common.errors import BadInput, PermissionDenied, Unauthenticated
from tui_migrator.common.settings import Settings
from tui_migrator.service.api_tokens import TokenIdentity, TokenStatus
from tui_migrator.service.facade import MigratorService
from tui_migrator.storage import tables
from tui_migrator.storage.audit import AuditEntry
from tui_migrator.storage.audit_operations import AuditOperation
from tui_migrator.storage.operators import Role
from tui_migrator.storage.tables import api_tokens_table

pytestmark = BOTH_BACKENDS

VIEWER = "vera"


class Clock:
    """Moves ``storage.tables.utc_now`` (the clock expiry is checked against) by ``offset``."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def datetime_class(self) -> type[datetime]:
        clock = self

        class ShiftedDateTime(datetime):
            @classmethod
            def now(cls, tz: Any = None) -> datetime:  # type: ignore[override]
                return datetime.now(tz) + clock.offset

        return ShiftedDateTime


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    shifted = Clock()
    monkeypatch.setattr(tables, "datetime", shifted.datetime_class())
    return shifted


@pytest.fixture
def viewer(service: MigratorService, settings: Settings) -> Iterator[MigratorService]:
    service.grant(VIEWER, "viewer")
    with MigratorService.open(settings, user=VIEWER) as opened:
        yield opened


def last_entry(service: MigratorService) -> AuditEntry:
    return service.audit_entries(limit=1).entries[0]


def secret_of(token: str) -> str:
    # After tmtok_tok_<12 hex digits>_ (the secret itself may hold underscores).
    return token[len("tmtok_tok_0123456789ab_") :]


def written_forms(token: str) -> list[bytes]:
    """The token and its secret as they could be written down: as text, and the secret's
    bytes raw, in hex and in standard base64."""
    secret = secret_of(token)
    raw = base64.urlsafe_b64decode(secret + "=")
    return [token.encode(), secret.encode(), raw, raw.hex().encode(), base64.b64encode(raw)]


def test_a_created_token_authenticates_as_its_operator(service: MigratorService) -> None:
    token, info = service.create_api_token(30)
    assert token.startswith(f"tmtok_{info.token_id}_") and len(secret_of(token)) == 43
    assert (info.operator, info.created_by, info.status) == (ADMIN, ADMIN, TokenStatus.ACTIVE)
    assert info.expires_at is not None and info.expires_at - info.created_at == timedelta(days=30)
    created = last_entry(service)
    assert created.operation == AuditOperation.API_TOKEN_CREATED and created.user_id == ADMIN
    assert created.details == {
        "tokenId": info.token_id,
        "operator": ADMIN,
        "expiresAt": info.expires_at.isoformat(),
    }
    expected = TokenIdentity(token_id=info.token_id, operator=ADMIN)
    assert service.authenticate_api_token(token) == expected
    # The whole Authorization value works too, whatever the scheme's case.
    assert service.authenticate_api_token(f"Bearer {token}") == expected
    assert service.authenticate_api_token(f"  bearer {token}\n") == expected


def test_the_database_holds_neither_the_token_nor_its_secret(
    service: MigratorService, settings: Settings
) -> None:
    token, info = service.create_api_token(None)
    service.authenticate_api_token(token)
    with pytest.raises(Unauthenticated):
        service.authenticate_api_token(token[:-1] + ("A" if token[-1] != "A" else "B"))
    state = json.dumps(database_state(settings)).encode()
    assert info.token_id.encode() in state  # the scan sees the tool's tables
    raw_file = sqlite_file_bytes(settings) or b""
    for form in written_forms(token):
        assert form not in state and form not in raw_file
    with service.engine.connect() as connection:
        (row,) = connection.execute(sa.select(api_tokens_table)).all()
        audit_text = " ".join(
            str(value) for entry in connection.execute(sa.select(tables.audit_table)) for value in entry
        )
    assert len(row.secret_hmac) == 64 and row.secret_hmac not in audit_text
    assert secret_of(token) not in audit_text


def _refused(service: MigratorService, text: str | None) -> tuple[Unauthenticated, AuditEntry]:
    with pytest.raises(Unauthenticated) as refused:
        service.authenticate_api_token(text)
    entry = last_entry(service)
    assert entry.operation == AuditOperation.API_REQUEST_REFUSED and entry.success is False
    assert entry.user_id == service.user
    assert refused.value.code == "unauthenticated" and refused.value.exit_code == 3
    told = f"{refused.value.message} {refused.value.hint} {json.dumps(entry.details)}"
    token = (text or "").strip().removeprefix("Bearer").strip()
    if len(token) > len("tmtok_"):
        assert token not in told
    if len(token) > len("tmtok_tok_0123456789ab_"):
        assert secret_of(token) not in told
    return refused.value, entry


@pytest.mark.parametrize(
    "text",
    [None, "", "Bearer", "Bearer   ", "Basic dXNlcjpwYXNz", "tmtok_", "Bearer tmtok_tok_XYZ_secret"],
)
def test_a_missing_or_malformed_token_is_refused_and_audited_without_an_id(
    service: MigratorService, text: str | None
) -> None:
    error, entry = _refused(service, text)
    expected = "missing" if not (text or "").removeprefix("Bearer").strip() else "malformed"
    assert error.reason == expected and entry.details == {"reason": expected}
    assert ("No API token" if expected == "missing" else "malformed") in error.message


def test_a_token_with_a_damaged_secret_is_malformed_and_audited_by_its_id(service: MigratorService) -> None:
    token, info = service.create_api_token(None)
    error, entry = _refused(service, token[:-5])
    assert error.reason == "malformed" and "tmtok_tok_<12 hex digits>" in error.message
    assert entry.details == {"reason": "malformed", "tokenId": info.token_id}


def test_an_unknown_id_is_refused_by_name(service: MigratorService) -> None:
    token, _info = service.create_api_token(None)
    unknown = f"tmtok_tok_000000000000_{secret_of(token)}"
    error, entry = _refused(service, unknown)
    assert error.reason == "unknown" and "tok_000000000000 is unknown" in error.message
    assert entry.details == {"reason": "unknown", "tokenId": "tok_000000000000"}


def test_a_wrong_secret_is_told_as_unknown_and_audited_as_a_wrong_secret(service: MigratorService) -> None:
    token, info = service.create_api_token(None)
    other, _ = service.create_api_token(None)
    error, entry = _refused(service, f"tmtok_{info.token_id}_{secret_of(other)}")
    assert error.reason == "unknown" and f"{info.token_id} is unknown" in error.message
    assert entry.details == {"reason": "wrong_secret", "tokenId": info.token_id, "operator": ADMIN}
    assert service.authenticate_api_token(token).operator == ADMIN


def test_a_revoked_token_is_refused(service: MigratorService) -> None:
    token, info = service.create_api_token(None)
    revoked = service.revoke_api_token(info.token_id)
    assert (revoked.status, revoked.revoked_by) == (TokenStatus.REVOKED, ADMIN)
    entry = last_entry(service)
    assert entry.operation == AuditOperation.API_TOKEN_REVOKED
    assert entry.details == {"tokenId": info.token_id, "operator": ADMIN}
    error, entry = _refused(service, token)
    assert error.reason == "revoked" and f"{info.token_id} was revoked at" in error.message
    assert entry.details == {"reason": "revoked", "tokenId": info.token_id, "operator": ADMIN}
    with pytest.raises(BadInput, match=f"'{info.token_id}' was already revoked by {ADMIN}"):
        service.revoke_api_token(info.token_id)


def test_a_token_past_its_expiry_is_refused(service: MigratorService, clock: Clock) -> None:
    token, info = service.create_api_token(1)
    clock.offset = timedelta(hours=23, minutes=59)
    assert service.authenticate_api_token(token).token_id == info.token_id
    assert [t.status for t in service.list_api_tokens()] == [TokenStatus.ACTIVE]
    clock.offset = timedelta(days=1, seconds=1)
    error, entry = _refused(service, token)
    assert error.reason == "expired" and f"{info.token_id} expired at" in error.message
    assert entry.details == {"reason": "expired", "tokenId": info.token_id, "operator": ADMIN}
    assert [t.status for t in service.list_api_tokens()] == [TokenStatus.EXPIRED]


def test_a_row_moved_to_another_operator_or_unrevoked_outside_the_tool_authenticates_nobody(
    service: MigratorService, viewer: MigratorService
) -> None:
    token, info = viewer.create_api_token(None)
    with service.engine.begin() as connection:
        connection.execute(
            sa.update(api_tokens_table)
            .where(api_tokens_table.c.token_id == info.token_id)
            .values(operator=ADMIN)
        )
    error, entry = _refused(service, token)
    assert error.reason == "unknown" and entry.details["reason"] == "wrong_secret"

    token, info = viewer.create_api_token(30)
    with service.engine.begin() as connection:
        connection.execute(
            sa.update(api_tokens_table)
            .where(api_tokens_table.c.token_id == info.token_id)
            .values(expires_at=info.created_at + timedelta(days=3000))
        )
    assert _refused(service, token)[1].details["reason"] == "wrong_secret"

    token, info = viewer.create_api_token(None)
    viewer.revoke_api_token(info.token_id)
    with service.engine.begin() as connection:
        connection.execute(
            sa.update(api_tokens_table)
            .where(api_tokens_table.c.token_id == info.token_id)
            .values(revoked_at=None, revoked_by=None)
        )
    assert _refused(service, token)[1].details["reason"] == "wrong_secret"


def test_a_viewer_creates_and_revokes_their_own_tokens_but_not_anothers(
    service: MigratorService, viewer: MigratorService
) -> None:
    admin_token, admin_info = service.create_api_token(None)
    token, info = viewer.create_api_token(7)
    assert info.operator == VIEWER and viewer.authenticate_api_token(token).operator == VIEWER
    with pytest.raises(
        PermissionDenied, match="'vera' has the role viewer, which may not run 'tokens revoke'"
    ):
        viewer.revoke_api_token(admin_info.token_id)
    denied = last_entry(service)
    assert denied.operation == AuditOperation.PERMISSION_DENIED and denied.user_id == VIEWER
    assert denied.details["attemptedOperation"] == "tokens revoke"
    assert service.authenticate_api_token(admin_token).operator == ADMIN
    assert viewer.revoke_api_token(info.token_id).status is TokenStatus.REVOKED
    # A super_admin revokes anyone's.
    _, other_info = viewer.create_api_token(None)
    assert service.revoke_api_token(other_info.token_id).revoked_by == ADMIN
    assert last_entry(service).details == {"tokenId": other_info.token_id, "operator": VIEWER}


def test_a_super_admin_lists_every_token_and_anyone_else_their_own(
    service: MigratorService, viewer: MigratorService
) -> None:
    _, mine = service.create_api_token(None)
    _, theirs = viewer.create_api_token(None)
    assert {(t.token_id, t.operator) for t in service.list_api_tokens()} == {
        (mine.token_id, ADMIN),
        (theirs.token_id, VIEWER),
    }
    assert [t.token_id for t in viewer.list_api_tokens()] == [theirs.token_id]


def test_revoking_an_unknown_token_names_it(service: MigratorService) -> None:
    with pytest.raises(BadInput, match="no API token 'tok_0123456789ab'"):
        service.revoke_api_token("tok_0123456789ab")


def test_a_readonly_session_refuses_to_create_or_revoke_but_lists(
    service: MigratorService, settings: Settings
) -> None:
    _, info = service.create_api_token(None)
    with MigratorService.open(settings.model_copy(update={"readonly": True}), user=ADMIN) as readonly:
        with pytest.raises(PermissionDenied, match="read-only"):
            readonly.create_api_token(None)
        with pytest.raises(PermissionDenied, match="read-only"):
            readonly.revoke_api_token(info.token_id)
        assert [t.token_id for t in readonly.list_api_tokens()] == [info.token_id]
    assert [t.status for t in service.list_api_tokens()] == [TokenStatus.ACTIVE]


def test_an_operator_without_a_role_can_neither_create_nor_list(
    service: MigratorService, settings: Settings
) -> None:
    with MigratorService.open(settings, user="nobody") as nobody:
        with pytest.raises(PermissionDenied, match="'nobody' has no role"):
            nobody.create_api_token(None)
        with pytest.raises(PermissionDenied, match="'nobody' has no role"):
            nobody.list_api_tokens()
    assert service.list_api_tokens() == []


@pytest.mark.parametrize("days", [0, -1, 3651])
def test_an_expiry_outside_1_to_3650_days_is_bad_input(service: MigratorService, days: int) -> None:
    with pytest.raises(BadInput, match=f"1 to 3650 days, not {days}"):
        service.create_api_token(days)
    assert service.list_api_tokens() == []


def test_the_longest_expiry_is_allowed(service: MigratorService) -> None:
    _, info = service.create_api_token(3650)
    assert info.expires_at == info.created_at + timedelta(days=3650)


def test_a_service_acting_as_the_tokens_operator_has_their_role_and_names_them(
    service: MigratorService, viewer: MigratorService
) -> None:
    token, _ = viewer.create_api_token(None)
    identity = service.authenticate_api_token(token)
    with service.acting_as(identity.operator) as acting:
        assert (acting.user, acting.role()) == (VIEWER, Role.VIEWER)
        with pytest.raises(PermissionDenied, match="'vera' has the role viewer"):
            acting.grant("mallory", "super_admin")
        assert last_entry(acting).user_id == VIEWER
        _, own = acting.create_api_token(None)
        assert own.operator == VIEWER
    # Closing it left the opener's engine and session as they were.
    assert service.user == ADMIN and service.role() is Role.SUPER_ADMIN
    assert {t.operator for t in service.list_api_tokens()} == {VIEWER}


def test_acting_as_refuses_a_name_that_is_not_a_user_name(service: MigratorService) -> None:
    with pytest.raises(BadInput, match="not a valid operating-system user name"):
        service.acting_as("bad name")


def test_token_times_are_aware_utc(service: MigratorService) -> None:
    _, info = service.create_api_token(2)
    (listed,) = service.list_api_tokens()
    assert listed.created_at == info.created_at and listed.created_at.tzinfo is UTC
    assert listed.expires_at is not None and listed.expires_at.tzinfo is UTC
    assert abs(listed.created_at - datetime.now(UTC)) < timedelta(minutes=5)
