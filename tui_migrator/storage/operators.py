"""Who may do what. Identity is the operating-system user running the tool.

The user is the name of the process's effective uid in the passwd database, or ``uid:<n>``
(e.g. ``uid:54321``) when that uid has no passwd entry, as is common in containers. It is never
taken from the environment (``$USER``, ``$LOGNAME``, ...), which anyone can set: over SSH it is
the account the server authenticated. A passwd name cannot contain ``:``, so ``uid:<n>`` never
collides with a real name. Roles are stored in the database, so every process and every machine
that shares it enforces the same rules.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tui_migrator.common.errors import BadInput, ConfigError, PermissionDenied
from tui_migrator.storage.tables import operators_table

UID_PREFIX = "uid:"
# A login name, or ``uid:<n>`` for a uid with no passwd entry: the effective uid in decimal as
# ``id -u`` prints it (no sign, no leading zero), at most 32 bits, so each uid has one spelling.
USERNAME_PATTERN = re.compile(r"^(?:[A-Za-z0-9._@-][A-Za-z0-9._@$-]{0,127}|uid:(?:0|[1-9][0-9]{0,9}))$")
_MAX_UID = 2**32 - 1


class Role(StrEnum):
    SUPER_ADMIN = "super_admin"
    VIEWER = "viewer"


class Action(StrEnum):
    """What a role is checked for. Each service operation names one."""

    READ = "read"
    MIGRATE = "migrate"  # start, cancel, pause, resume, roll back, purge backups
    MANAGE_OPERATORS = "manage_operators"
    REBUILD_DEMO = "rebuild_demo"
    # Create, list and revoke one's own API tokens: a token acts with its operator's own role,
    # so holding one grants nothing the operator could not already do.
    OWN_API_TOKENS = "own_api_tokens"
    # List and revoke every operator's API tokens.
    MANAGE_API_TOKENS = "manage_api_tokens"
    # Rotate data keys and the master key.
    MANAGE_KEYS = "manage_keys"


ALLOWED: dict[Role, frozenset[Action]] = {
    Role.SUPER_ADMIN: frozenset(Action),
    Role.VIEWER: frozenset({Action.READ, Action.OWN_API_TOKENS}),
}


@dataclass(frozen=True)
class Operator:
    username: str
    role: Role
    granted_by: str
    granted_at: datetime
    # Its row carries a valid proof (written by the tool); a role without one is refused.
    authenticated: bool = True


def current_os_user() -> str:
    """The name of the account this process runs as: its effective uid's passwd name, or
    ``uid:<n>`` when the uid has no passwd entry. Never read from the environment."""
    geteuid = getattr(os, "geteuid", None)
    if geteuid is None:
        # No uids (Windows): the only names at hand are environment variables anyone can set.
        raise ConfigError(
            "Cannot tell which operating-system user runs this process: this platform has no uids.",
            hint="Run tui-migrator on Linux or another Unix, where the user is the process's effective uid.",
        )
    uid: int = geteuid()
    try:
        import pwd
    except ImportError:  # a Unix without the passwd database module
        return f"{UID_PREFIX}{uid}"
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:  # no passwd entry, as for an arbitrary uid in a container
        return f"{UID_PREFIX}{uid}"


def parse_role(text: str) -> Role:
    try:
        return Role(text)
    except ValueError:
        raise BadInput(
            f"'{text}' is not a role.",
            hint=f"Use one of: {', '.join(role.value for role in Role)}.",
        ) from None


def check_username(text: str) -> str:
    """``text`` if it is a login name or ``uid:<n>``; else :class:`BadInput` saying how to write it."""
    if text.startswith(UID_PREFIX):
        number = text.removeprefix(UID_PREFIX)
        if not USERNAME_PATTERN.fullmatch(text) or int(number) > _MAX_UID:
            raise BadInput(
                f"'{text}' is not a valid user name: after 'uid:' must come a uid in decimal.",
                hint=(
                    "Write the account's uid as `id -u` prints it (digits only, no leading zero), "
                    "e.g. uid:54321."
                ),
            )
        return text
    if not USERNAME_PATTERN.fullmatch(text):
        raise BadInput(
            f"'{text}' is not a valid operating-system user name.",
            hint=(
                "Give the login name as the server knows it, e.g. 'alice' (letters, digits, . _ - @), "
                "or uid:<n> for an account with no name, e.g. uid:54321."
            ),
        )
    return text


class UnauthenticatedRole(PermissionDenied):
    """A row of tm_operators that the tool did not write: its proof does not verify."""

    code = "unauthenticated_role"

    def __init__(self, username: str) -> None:
        super().__init__(
            f"The role of '{username}' in tm_operators was not written by tui-migrator (its proof "
            "does not verify under this database's master key), so it is refused.",
            hint=f"Someone with write access to the database changed it. A super_admin can grant "
            f"the role again (tui-migrator operators grant {username} viewer); 'tui-migrator "
            "audit' shows the grants the tool made.",
        )


def role_of(connection: Connection, username: str, key: bytes) -> Role | None:
    """The user's role; :class:`UnauthenticatedRole` if its row was written outside the tool."""
    row = connection.execute(
        sa.select(operators_table).where(operators_table.c.username == username)
    ).one_or_none()
    if row is None:
        return None
    if not _proven(key, row):
        raise UnauthenticatedRole(username)
    return Role(row.role)


def list_operators(connection: Connection, key: bytes) -> list[Operator]:
    rows = connection.execute(sa.select(operators_table).order_by(operators_table.c.username))
    return [
        Operator(row.username, Role(row.role), row.granted_by, row.granted_at, _proven(key, row))
        for row in rows
    ]


def count_super_admins(connection: Connection, key: bytes) -> int:
    """How many (authenticated) super_admins there are, with their rows locked until the
    transaction ends.

    The lock is what makes "never remove the last one" hold on PostgreSQL: two transactions
    each removing a different one of the last two would otherwise both count two. The second
    now waits for the first, and PostgreSQL re-reads the rows it waited for, so it counts one.
    (On SQLite the write transaction already excludes every other writer.)"""
    rows = connection.execute(
        sa.select(operators_table).where(operators_table.c.role == Role.SUPER_ADMIN.value).with_for_update()
    ).all()
    return sum(1 for row in rows if _proven(key, row))


def put_operator(
    connection: Connection, username: str, role: Role, *, granted_by: str, granted_at: datetime, key: bytes
) -> None:
    values = {
        "role": role.value,
        "granted_by": granted_by,
        "granted_at": granted_at,
        "proof": _proof(key, username, role.value, granted_by, granted_at),
    }
    updated = connection.execute(
        sa.update(operators_table).where(operators_table.c.username == username).values(**values)
    )
    if updated.rowcount == 0:
        connection.execute(sa.insert(operators_table).values(username=username, **values))


def prove_unproven_rows(connection: Connection, key: bytes) -> int:
    """Once, when a database set up before roles were authenticated is upgraded: its rows are
    taken as they are (the trail holds the grants that made them) and given their proof."""
    rows = connection.execute(sa.select(operators_table).where(operators_table.c.proof.is_(None))).all()
    for row in rows:
        connection.execute(
            sa.update(operators_table)
            .where(operators_table.c.username == row.username)
            .values(proof=_proof(key, row.username, row.role, row.granted_by, row.granted_at))
        )
    return len(rows)


def _proven(key: bytes, row: sa.Row[Any]) -> bool:
    expected = _proof(key, row.username, row.role, row.granted_by, row.granted_at)
    return row.proof is not None and hmac.compare_digest(expected, row.proof)


def _proof(key: bytes, username: str, role: str, granted_by: str, granted_at: datetime) -> str:
    """An HMAC over the whole row, so no field can be changed and no row copied to another user."""
    instant = granted_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
    text = "\x00".join(("tm_operators/v1", username, role, granted_by, instant))
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()


def delete_operator(connection: Connection, username: str) -> bool:
    deleted = connection.execute(sa.delete(operators_table).where(operators_table.c.username == username))
    return deleted.rowcount > 0
