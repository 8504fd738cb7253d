"""Per-operator API tokens: create, list, revoke, and authenticate a request's bearer token.

A token acts as its operator and nothing more: the HTTP layer authenticates it here, then works
through a service acting as the token's operator (``MigratorService.acting_as``), whose role
decides what is allowed exactly as on the command line. Any operator with a role may hold
tokens of their own; a super_admin may list and revoke everyone's. Creating and revoking are
changes (refused under --readonly) and are audited; so is every refused token, by its id when
the text names one — never the token, its secret or its HMAC.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import NoReturn

from tui_migrator.common.errors import BadInput, Unauthenticated
from tui_migrator.common.models import ResponseModel
from tui_migrator.crypto.keys import Purpose
from tui_migrator.service import access
from tui_migrator.service.session import Session
from tui_migrator.storage import api_tokens, operators
from tui_migrator.storage.api_tokens import StoredToken
from tui_migrator.storage.audit_operations import AuditOperation
from tui_migrator.storage.database import serialized_write
from tui_migrator.storage.operators import Action
from tui_migrator.storage.tables import utc_now

MIN_EXPIRY_DAYS = 1
MAX_EXPIRY_DAYS = 3650
_BEARER = "bearer"
_NEW_TOKEN_HINT = "Create a new one with: tui-migrator tokens create"


class TokenStatus(StrEnum):
    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"


class TokenInfo(ResponseModel):
    """What may be shown about a token: never its secret."""

    token_id: str
    operator: str
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    revoked_at: datetime | None
    revoked_by: str | None
    status: TokenStatus


@dataclass(frozen=True)
class TokenIdentity:
    """Who an authenticated request acts as."""

    token_id: str
    operator: str


class RefusalReason(StrEnum):
    """Why a token was refused, as the audit trail records it."""

    MISSING = "missing"
    MALFORMED = "malformed"
    UNKNOWN = "unknown"
    # Told to the caller as UNKNOWN: a guesser learns nothing about which ids exist.
    WRONG_SECRET = "wrong_secret"
    REVOKED = "revoked"
    EXPIRED = "expired"


def create(session: Session, expires_days: int | None) -> tuple[str, TokenInfo]:
    """A new token for the session's operator: its text (to show once) and what may be shown
    of it again."""
    _check_expiry(expires_days)
    access.authorize(session, Action.OWN_API_TOKENS, "tokens create")
    created_at = utc_now()
    expires_at = None if expires_days is None else created_at + timedelta(days=expires_days)
    token_id, secret = api_tokens.new_token_id(), api_tokens.new_secret()
    with serialized_write(session.engine) as connection:
        stored = api_tokens.insert_token(
            connection,
            token_id=token_id,
            operator=session.user,
            secret=secret,
            created_at=created_at,
            created_by=session.user,
            expires_at=expires_at,
            key=_key(session),
        )
        session.audit.append(
            connection,
            AuditOperation.API_TOKEN_CREATED,
            user_id=session.user,
            success=True,
            details={
                "tokenId": token_id,
                "operator": session.user,
                "expiresAt": None if expires_at is None else expires_at.isoformat(),
            },
        )
    return api_tokens.token_text(token_id, secret), _info(stored, created_at)


def list_tokens(session: Session) -> list[TokenInfo]:
    """A super_admin's view: every operator's tokens; anyone else's: their own."""
    access.authorize(session, Action.READ, "tokens list")
    with session.engine.connect() as connection:
        stored = api_tokens.list_tokens(
            connection, operator=None if _may_manage_all(session) else session.user
        )
    now = utc_now()
    return [_info(token, now) for token in stored]


def revoke(session: Session, token_id: str) -> TokenInfo:
    """Revoke one of the operator's own tokens, or (a super_admin) anyone's."""
    access.authorize(session, Action.OWN_API_TOKENS, "tokens revoke")
    with session.engine.connect() as connection:
        found = api_tokens.find_token(connection, token_id)
    if found is None:
        raise _unknown_token_id(token_id)
    if found.operator != session.user:
        access.authorize(session, Action.MANAGE_API_TOKENS, "tokens revoke")
    with serialized_write(session.engine) as connection:
        current = api_tokens.find_token(connection, token_id, for_update=True)
        if current is None:  # its row was deleted outside the tool meanwhile
            raise _unknown_token_id(token_id)
        if current.revoked_at is not None:
            raise BadInput(
                f"The API token '{token_id}' was already revoked by {current.revoked_by} at "
                f"{current.revoked_at.isoformat(timespec='seconds')}; nothing was changed.",
                hint="See every token's status with: tui-migrator tokens list",
            )
        revoked_at = utc_now()
        api_tokens.mark_revoked(connection, token_id, revoked_at=revoked_at, revoked_by=session.user)
        session.audit.append(
            connection,
            AuditOperation.API_TOKEN_REVOKED,
            user_id=session.user,
            success=True,
            details={"tokenId": token_id, "operator": current.operator},
        )
    revoked = replace(current, revoked_at=revoked_at, revoked_by=session.user, secret_hmac=None)
    return _info(revoked, revoked_at)


def authenticate(session: Session, bearer_text: str | None) -> TokenIdentity:
    """The operator a request's token acts as, or :class:`Unauthenticated` (audited) saying
    what was wrong with it. ``bearer_text`` is the token, or the whole ``Authorization`` value
    (``Bearer <token>``). Needs no role: the server's own account only checks the token."""
    text = (bearer_text or "").strip()
    words = text.split(None, 1)
    if words and words[0].lower() == _BEARER:
        text = words[1].strip() if len(words) > 1 else ""
    if not text:
        _refuse(
            session,
            RefusalReason.MISSING,
            "No API token: send one as 'Authorization: Bearer <token>'.",
            hint=_NEW_TOKEN_HINT,
        )
    parsed = api_tokens.parse_token(text)
    if parsed.token_id is None or parsed.secret is None:
        _refuse(
            session,
            RefusalReason.MALFORMED,
            "The API token is malformed: a token reads tmtok_tok_<12 hex digits>_<43 characters>.",
            hint="Send the whole token as 'tokens create' printed it.",
            token_id=parsed.token_id,
        )
    token_id, secret = parsed.token_id, parsed.secret
    with session.engine.connect() as connection:
        stored = api_tokens.find_token(connection, token_id)
    unknown = f"The API token {token_id} is unknown: this database issued no token with that id and secret."
    if stored is None:
        _refuse(session, RefusalReason.UNKNOWN, unknown, hint=_NEW_TOKEN_HINT, token_id=token_id)
    # Before the secret, whose HMAC revoking erased: that a known id was revoked is no secret.
    if stored.revoked_at is not None:
        _refuse(
            session,
            RefusalReason.REVOKED,
            f"The API token {token_id} was revoked at {stored.revoked_at.isoformat(timespec='seconds')}.",
            hint=_NEW_TOKEN_HINT,
            stored=stored,
        )
    if not api_tokens.secret_matches(_key(session), stored, secret):
        _refuse(session, RefusalReason.WRONG_SECRET, unknown, hint=_NEW_TOKEN_HINT, stored=stored)
    if stored.expires_at is not None and stored.expires_at <= utc_now():
        _refuse(
            session,
            RefusalReason.EXPIRED,
            f"The API token {token_id} expired at {stored.expires_at.isoformat(timespec='seconds')}.",
            hint=_NEW_TOKEN_HINT,
            stored=stored,
        )
    return TokenIdentity(token_id=stored.token_id, operator=stored.operator)


def _refuse(
    session: Session,
    reason: RefusalReason,
    message: str,
    *,
    hint: str,
    token_id: str | None = None,
    stored: StoredToken | None = None,
) -> NoReturn:
    """Audit the refusal (the token's id and operator when known; never the text) and raise."""
    details: dict[str, str] = {"reason": reason.value}
    if stored is not None:
        details |= {"tokenId": stored.token_id, "operator": stored.operator}
    elif token_id is not None:
        details["tokenId"] = token_id
    # The entry names the account that checked the token (the server's): who sent it is unknown.
    session.audit.record(
        AuditOperation.API_REQUEST_REFUSED, user_id=session.user, success=False, details=details
    )
    told = RefusalReason.UNKNOWN if reason is RefusalReason.WRONG_SECRET else reason
    raise Unauthenticated(message, reason=told.value, hint=hint)


def _check_expiry(expires_days: int | None) -> None:
    if expires_days is not None and not MIN_EXPIRY_DAYS <= expires_days <= MAX_EXPIRY_DAYS:
        raise BadInput(
            f"A token's expiry must be {MIN_EXPIRY_DAYS} to {MAX_EXPIRY_DAYS} days, not {expires_days}.",
            hint="Give --expires DAYS in that range, or leave it out for a token that does not expire.",
        )


def _may_manage_all(session: Session) -> bool:
    """Whether the session's role manages everyone's tokens (read-only or not: listing reads)."""
    current = access.role(session)
    return current is not None and Action.MANAGE_API_TOKENS in operators.ALLOWED[current]


def _unknown_token_id(token_id: str) -> BadInput:
    return BadInput(
        f"There is no API token '{token_id}' in this database; nothing was revoked.",
        hint="See the tokens you may revoke with: tui-migrator tokens list",
    )


def _key(session: Session) -> bytes:
    return session.master_key.derive(Purpose.API_TOKENS)


def _info(stored: StoredToken, now: datetime) -> TokenInfo:
    if stored.revoked_at is not None:
        status = TokenStatus.REVOKED
    elif stored.expires_at is not None and stored.expires_at <= now:
        status = TokenStatus.EXPIRED
    else:
        status = TokenStatus.ACTIVE
    shown = {name: value for name, value in asdict(stored).items() if name in TokenInfo.model_fields}
    return TokenInfo(**shown, status=status)
