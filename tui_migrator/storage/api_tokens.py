"""Operators' API tokens: their text, and their rows in tm_api_tokens.

A token reads ``tmtok_<token id>_<secret>``: the id (``tok_`` and 12 hex digits) is public and
names the row; the secret (32 random bytes, URL-safe base64) is shown once, when the token is
created, and never stored. The row keeps an HMAC-SHA-256 of the secret under a key derived from
the master key, bound to the id, the operator, the creation time and the expiry: a database
writer cannot mint a token (no key), nor hand an existing one to another operator or extend it
(the HMAC no longer matches). Revoking erases the HMAC, so clearing ``revoked_at`` does not bring
a token back.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tui_migrator.storage.tables import api_tokens_table

TOKEN_PREFIX = "tmtok_"
TOKEN_ID_PREFIX = "tok_"
SECRET_BYTES = 32
# token_urlsafe(32): 32 bytes in unpadded URL-safe base64 are 43 characters.
_TOKEN_ID = r"tok_[0-9a-f]{12}"
_SECRET = r"[A-Za-z0-9_-]{43}"
TOKEN_ID_PATTERN = re.compile(_TOKEN_ID)
_TOKEN_PATTERN = re.compile(rf"{TOKEN_PREFIX}({_TOKEN_ID})_({_SECRET})")
# Only the id, from a token whose secret part is damaged: enough to name it in the trail.
_ID_PATTERN = re.compile(rf"{TOKEN_PREFIX}({_TOKEN_ID})(?:_|$)")


@dataclass(frozen=True)
class ParsedToken:
    """What a presented text holds: the id when it is well formed, the secret when the whole
    token is."""

    token_id: str | None
    secret: str | None


@dataclass(frozen=True)
class StoredToken:
    """A row of tm_api_tokens."""

    token_id: str
    operator: str
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    revoked_at: datetime | None
    revoked_by: str | None
    secret_hmac: str | None


def new_token_id() -> str:
    return f"{TOKEN_ID_PREFIX}{secrets.token_hex(6)}"


def new_secret() -> str:
    return secrets.token_urlsafe(SECRET_BYTES)


def token_text(token_id: str, secret: str) -> str:
    """The token as the operator sends it: ``tmtok_<id>_<secret>``."""
    return f"{TOKEN_PREFIX}{token_id}_{secret}"


def parse_token(text: str) -> ParsedToken:
    whole = _TOKEN_PATTERN.fullmatch(text)
    if whole is not None:
        return ParsedToken(whole.group(1), whole.group(2))
    start = _ID_PATTERN.match(text)
    return ParsedToken(start.group(1) if start else None, None)


def secret_matches(key: bytes, stored: StoredToken, secret: str) -> bool:
    """Whether ``secret`` is the stored token's, compared in constant time. A revoked row (its
    HMAC erased) matches nothing."""
    if stored.secret_hmac is None:
        return False
    expected = _secret_hmac(
        key, stored.token_id, stored.operator, stored.created_at, stored.expires_at, secret
    )
    return hmac.compare_digest(expected, stored.secret_hmac)


def insert_token(
    connection: Connection,
    *,
    token_id: str,
    operator: str,
    secret: str,
    created_at: datetime,
    created_by: str,
    expires_at: datetime | None,
    key: bytes,
) -> StoredToken:
    stored = StoredToken(
        token_id=token_id,
        operator=operator,
        created_at=created_at,
        created_by=created_by,
        expires_at=expires_at,
        revoked_at=None,
        revoked_by=None,
        secret_hmac=_secret_hmac(key, token_id, operator, created_at, expires_at, secret),
    )
    connection.execute(
        sa.insert(api_tokens_table).values(
            token_id=stored.token_id,
            operator=stored.operator,
            secret_hmac=stored.secret_hmac,
            created_at=stored.created_at,
            created_by=stored.created_by,
            expires_at=stored.expires_at,
        )
    )
    return stored


def find_token(connection: Connection, token_id: str, *, for_update: bool = False) -> StoredToken | None:
    query = sa.select(api_tokens_table).where(api_tokens_table.c.token_id == token_id)
    if for_update:
        query = query.with_for_update()
    row = connection.execute(query).one_or_none()
    return None if row is None else _stored(row)


def list_tokens(connection: Connection, *, operator: str | None = None) -> list[StoredToken]:
    """Every token (of ``operator`` only, when given), oldest first."""
    query = sa.select(api_tokens_table).order_by(api_tokens_table.c.created_at, api_tokens_table.c.token_id)
    if operator is not None:
        query = query.where(api_tokens_table.c.operator == operator)
    return [_stored(row) for row in connection.execute(query)]


def mark_revoked(connection: Connection, token_id: str, *, revoked_at: datetime, revoked_by: str) -> None:
    connection.execute(
        sa.update(api_tokens_table)
        .where(api_tokens_table.c.token_id == token_id)
        .values(revoked_at=revoked_at, revoked_by=revoked_by, secret_hmac=None)
    )


def _stored(row: sa.Row[Any]) -> StoredToken:
    return StoredToken(
        token_id=row.token_id,
        operator=row.operator,
        created_at=row.created_at,
        created_by=row.created_by,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        revoked_by=row.revoked_by,
        secret_hmac=row.secret_hmac,
    )


def _secret_hmac(
    key: bytes,
    token_id: str,
    operator: str,
    created_at: datetime,
    expires_at: datetime | None,
    secret: str,
) -> str:
    text = "\x00".join(
        ("tm_api_tokens/v1", token_id, operator, _instant(created_at), _instant(expires_at), secret)
    )
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()


def _instant(moment: datetime | None) -> str:
    # Microseconds, as both dialects keep them: the HMAC must match the value read back.
    return "" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
