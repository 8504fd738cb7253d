"""The triggers that make tm_audit append-only, and the check that they are still in force.

They stop UPDATE, DELETE (and on PostgreSQL TRUNCATE) of audit entries by anyone who is not the
table's owner. Someone with the rights to drop, disable or replace them can edit history; the
chain, the head and the anchor then show it at the next ``audit --verify``. So that nothing is
changed while the protection is gone, every change the tool makes checks them first
(service/access.py) and ``health`` reports them; ``audit --restore-triggers`` puts them back.
"""

from __future__ import annotations

from sqlalchemy.engine import Connection

from tui_migrator.common.errors import ConfigError
from tui_migrator.storage.database import SUPPORTED_DIALECTS_HINT

_SQLITE = {
    "tm_audit_no_update": (
        "CREATE TRIGGER tm_audit_no_update BEFORE UPDATE ON tm_audit "
        "BEGIN SELECT RAISE(ABORT, 'tm_audit is append-only: UPDATE is not allowed'); END"
    ),
    "tm_audit_no_delete": (
        "CREATE TRIGGER tm_audit_no_delete BEFORE DELETE ON tm_audit "
        "BEGIN SELECT RAISE(ABORT, 'tm_audit is append-only: DELETE is not allowed'); END"
    ),
}

# USING MESSAGE rather than RAISE's '%' placeholder: psycopg reads a '%' in a statement as a
# parameter placeholder and refuses it.
_POSTGRESQL_FUNCTION_BODY = (
    " BEGIN RAISE EXCEPTION USING MESSAGE = 'tm_audit is append-only: ' || TG_OP || ' is not allowed'; END "
)
_POSTGRESQL_FUNCTION = (
    "CREATE OR REPLACE FUNCTION tm_audit_append_only() RETURNS trigger LANGUAGE plpgsql "
    f"AS $${_POSTGRESQL_FUNCTION_BODY}$$"
)
_POSTGRESQL = {
    "tm_audit_no_update_delete": (
        "CREATE TRIGGER tm_audit_no_update_delete BEFORE UPDATE OR DELETE ON tm_audit "
        "FOR EACH ROW EXECUTE FUNCTION tm_audit_append_only()"
    ),
    "tm_audit_no_truncate": (
        "CREATE TRIGGER tm_audit_no_truncate BEFORE TRUNCATE ON tm_audit "
        "FOR EACH STATEMENT EXECUTE FUNCTION tm_audit_append_only()"
    ),
}
# pg_trigger.tgenabled: 'O' fires in normal sessions, 'A' always; 'D' is disabled and 'R' fires
# only for replication, so a normal session would not meet it.
_POSTGRESQL_FIRING = ("O", "A")

RESTORE_HINT = (
    "Put them back with: tui-migrator audit --restore-triggers (a super_admin; on PostgreSQL as "
    "the owner of tm_audit), then run tui-migrator audit --verify to see whether entries were "
    "changed while they were gone."
)


class AuditUnprotected(ConfigError):
    """A change was refused because tm_audit's triggers are not in force."""

    code = "audit_unprotected"


def create(connection: Connection) -> None:
    """Create the triggers (and on PostgreSQL their function) in the caller's transaction."""
    for statement in _statements(connection.dialect.name):
        connection.exec_driver_sql(statement)


def restore(connection: Connection) -> None:
    """Drop whatever stands in the triggers' place and create them as the tool defines them."""
    names = _SQLITE if connection.dialect.name == "sqlite" else _POSTGRESQL
    for name in names:
        suffix = "" if connection.dialect.name == "sqlite" else " ON tm_audit"
        connection.exec_driver_sql(f"DROP TRIGGER IF EXISTS {name}{suffix}")
    create(connection)


def problems(connection: Connection) -> list[str]:
    """What is wrong with the triggers, in words; empty when they are all in force as defined."""
    if connection.dialect.name == "sqlite":
        return _sqlite_problems(connection)
    if connection.dialect.name == "postgresql":
        return _postgresql_problems(connection)
    raise ConfigError(
        f"The {connection.dialect.name} dialect is not supported.", hint=SUPPORTED_DIALECTS_HINT
    )


def _sqlite_problems(connection: Connection) -> list[str]:
    found: dict[str, str] = dict(
        connection.exec_driver_sql(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'tm_audit'"
        ).all()
    )
    found_problems = []
    for name, statement in _SQLITE.items():
        if name not in found:
            found_problems.append(f"trigger {name} on tm_audit is missing")
        elif _normal(found[name]) != _normal(statement):
            found_problems.append(f"trigger {name} on tm_audit was replaced by one the tool did not write")
    return found_problems


def _postgresql_problems(connection: Connection) -> list[str]:
    found: dict[str, str] = dict(
        connection.exec_driver_sql(
            "SELECT tgname, tgenabled FROM pg_trigger "
            "WHERE tgrelid = 'tm_audit'::regclass AND NOT tgisinternal"
        ).all()
    )
    found_problems = []
    for name in _POSTGRESQL:
        if name not in found:
            found_problems.append(f"trigger {name} on tm_audit is missing")
        elif found[name] not in _POSTGRESQL_FIRING:
            found_problems.append(f"trigger {name} on tm_audit is disabled")
    body = connection.exec_driver_sql(
        "SELECT prosrc FROM pg_proc WHERE proname = 'tm_audit_append_only'"
    ).scalar_one_or_none()
    if body is None:
        found_problems.append("function tm_audit_append_only(), which the triggers run, is missing")
    elif _normal(body) != _normal(_POSTGRESQL_FUNCTION_BODY):
        found_problems.append("function tm_audit_append_only() was replaced by one that may not refuse")
    return found_problems


def _statements(dialect_name: str) -> tuple[str, ...]:
    if dialect_name == "sqlite":
        return tuple(_SQLITE.values())
    if dialect_name == "postgresql":
        return (_POSTGRESQL_FUNCTION, *_POSTGRESQL.values())
    raise ConfigError(f"The {dialect_name} dialect is not supported.", hint=SUPPORTED_DIALECTS_HINT)


def _normal(sql: str) -> str:
    return " ".join(sql.split())
