"""Who may do what, checked in the service for every operation, and the words of every refusal.

The faces ask here too (``can``, ``denied_reason``) to show or disable actions, so the rule a UI
shows and the rule the service enforces are the same rule.
"""

from __future__ import annotations

from sqlalchemy.engine import Connection

from tui_migrator.common.errors import BadInput, PermissionDenied
from tui_migrator.service.session import Session
from tui_migrator.storage import audit_triggers, operators
from tui_migrator.storage.audit_operations import AuditOperation
from tui_migrator.storage.database import redacted, serialized_write
from tui_migrator.storage.operators import Action, Operator, Role, UnauthenticatedRole
from tui_migrator.storage.tables import utc_now

READONLY_REASON = "read-only session (--readonly)"
# What each action lets an operator do, in the words of a disabled action's reason.
_ACTION_WORDS: dict[Action, str] = {
    Action.READ: "read this database",
    Action.MIGRATE: "change migrations",
    Action.MANAGE_OPERATORS: "manage operators",
    Action.REBUILD_DEMO: "rebuild the demo database",
    Action.OWN_API_TOKENS: "manage their own API tokens",
    Action.MANAGE_API_TOKENS: "manage other operators' API tokens",
    Action.MANAGE_KEYS: "rotate keys",
}


def role(session: Session) -> Role | None:
    """The session user's role; raises UnauthenticatedRole for a row written outside the tool."""
    with session.engine.connect() as connection:
        return operators.role_of(connection, session.user, session.role_key())


def _role_or_none(session: Session) -> Role | None:
    """For showing what is allowed: a role that does not verify allows nothing."""
    try:
        return role(session)
    except UnauthenticatedRole:
        return None


def can(session: Session, action: Action) -> bool:
    current = _role_or_none(session)
    if current is None:
        return False
    if session.settings.readonly and action is not Action.READ:
        return False
    return action in operators.ALLOWED[current]


def denied_reason(session: Session, action: Action) -> str | None:
    """Why ``action`` is not allowed, in a few words a UI shows beside the disabled action."""
    if can(session, action):
        return None
    if session.settings.readonly:
        return READONLY_REASON
    try:
        current = role(session)
    except UnauthenticatedRole:
        return f"{session.user}'s role in tm_operators was not written by tui-migrator"
    allowed = " or ".join(r.value for r in Role if action in operators.ALLOWED[r])
    return (
        f"{session.user} is {current.value if current else 'without a role'}: "
        f"only a {allowed} may {_ACTION_WORDS[action]}"
    )


def authorize(
    session: Session, action: Action, operation: str, *, needs_protected_audit: bool = True
) -> None:
    """Raise :class:`PermissionDenied` (and audit the refusal) unless allowed. A change (any
    action but reading) also needs the audit trail's triggers in force: while they are gone,
    whoever removed them could edit what the change records (audit_triggers.py)."""
    if can(session, action):
        if action is not Action.READ and needs_protected_audit:
            _refuse_while_audit_unprotected(session, operation)
        return
    try:
        current = role(session)
        unauthenticated = None
    except UnauthenticatedRole as error:
        current, unauthenticated = None, error
    session.audit.record(
        AuditOperation.PERMISSION_DENIED,
        user_id=session.user,
        success=False,
        details={
            "attemptedOperation": operation,
            "role": current.value if current else None,
            "readonly": session.settings.readonly,
            **({"unauthenticatedRole": True} if unauthenticated else {}),
        },
    )
    if unauthenticated is not None:
        raise unauthenticated
    if session.settings.readonly and current is not None:
        raise PermissionDenied(
            f"'{operation}' changes data, and this session is read-only (--readonly).",
            hint="Run without --readonly to make changes.",
        )
    if current is None:
        raise PermissionDenied(
            f"The user '{session.user}' has no role in this database, so '{operation}' is refused.",
            hint=f"Ask a super_admin to run: tui-migrator operators grant {session.user} viewer "
            "(or super_admin).",
        )
    raise PermissionDenied(
        f"The user '{session.user}' has the role {current.value}, which may not run '{operation}'.",
        hint=f"Ask a super_admin to run: tui-migrator operators grant {session.user} super_admin",
    )


def _refuse_while_audit_unprotected(session: Session, operation: str) -> None:
    with session.engine.connect() as connection:
        problems = audit_triggers.problems(connection)
    if not problems:
        return
    session.audit.record(
        AuditOperation.AUDIT_UNPROTECTED,
        user_id=session.user,
        success=False,
        details={"attemptedOperation": operation, "problems": problems},
    )
    raise audit_triggers.AuditUnprotected(
        f"'{operation}' was refused: the audit trail is not protected ({'; '.join(problems)}). "
        "Nothing was changed.",
        hint=audit_triggers.RESTORE_HINT,
    )


def restore_audit_triggers(session: Session) -> list[str]:
    """Put tm_audit's triggers back as the tool defines them; returns what was wrong."""
    authorize(session, Action.MANAGE_OPERATORS, "audit --restore-triggers", needs_protected_audit=False)
    with serialized_write(session.engine) as connection:
        problems = audit_triggers.problems(connection)
        if problems:  # (which needs tm_audit's owner, where another role owns it)
            audit_triggers.restore(connection)
        session.audit.append(
            connection,
            AuditOperation.AUDIT_TRIGGERS_RESTORED,
            user_id=session.user,
            success=True,
            details={"problems": problems},
        )
    return problems


def list_operators(session: Session) -> list[Operator]:
    authorize(session, Action.READ, "operators list")
    with session.engine.connect() as connection:
        return operators.list_operators(connection, session.role_key())


def grant(session: Session, username: str, role_name: str) -> Operator:
    operators.check_username(username)
    granted_role = operators.parse_role(role_name)
    authorize(session, Action.MANAGE_OPERATORS, "operators grant")
    with serialized_write(session.engine) as connection:
        previous = _previous_role(connection, session, username)
        if previous is Role.SUPER_ADMIN and granted_role is not Role.SUPER_ADMIN:
            _refuse_removing_last_super_admin(connection, username, session.role_key())
        granted_at = utc_now()
        operators.put_operator(
            connection,
            username,
            granted_role,
            granted_by=session.user,
            granted_at=granted_at,
            key=session.role_key(),
        )
        session.audit.append(
            connection,
            AuditOperation.OPERATOR_GRANTED,
            user_id=session.user,
            success=True,
            details={
                "operator": username,
                "role": granted_role.value,
                "previousRole": previous.value if previous else None,
            },
        )
    return Operator(username, granted_role, session.user, granted_at)


def revoke(session: Session, username: str) -> bool:
    operators.check_username(username)
    authorize(session, Action.MANAGE_OPERATORS, "operators revoke")
    with serialized_write(session.engine) as connection:
        previous = _previous_role(connection, session, username)
        if previous is Role.SUPER_ADMIN:
            _refuse_removing_last_super_admin(connection, username, session.role_key())
        # A row written outside the tool (previous None) is removed too: that is its repair.
        if not operators.delete_operator(connection, username):
            raise BadInput(
                f"The user '{username}' has no role in this database; nothing to revoke.",
                hint="See who has a role with: tui-migrator operators list",
            )
        session.audit.append(
            connection,
            AuditOperation.OPERATOR_REVOKED,
            user_id=session.user,
            success=True,
            details={"operator": username, "previousRole": previous.value if previous else "unauthenticated"},
        )
    return True


def make_first_super_admin(session: Session) -> None:
    """Whoever sets the tool up on a database may do everything there, including granting roles."""
    with serialized_write(session.engine) as connection:
        operators.put_operator(
            connection,
            session.user,
            Role.SUPER_ADMIN,
            granted_by=session.user,
            granted_at=utc_now(),
            key=session.role_key(),
        )
        session.audit.append(
            connection,
            AuditOperation.TOOL_INITIALIZED,
            user_id=session.user,
            success=True,
            details={
                "database": redacted(session.engine.url),
                "firstSuperAdmin": session.user,
                "masterKeyFingerprint": session.master_key.fingerprint,
            },
        )


def _previous_role(connection: Connection, session: Session, username: str) -> Role | None:
    """The role a grant or revoke replaces; a row written outside the tool replaces nothing
    (granting over it, or revoking it, is how a super_admin repairs it)."""
    try:
        return operators.role_of(connection, username, session.role_key())
    except UnauthenticatedRole:
        return None


def _refuse_removing_last_super_admin(connection: Connection, username: str, key: bytes) -> None:
    # Counting locks the super_admins' rows, so two concurrent removals cannot leave none.
    if operators.count_super_admins(connection, key) <= 1:
        raise BadInput(
            f"'{username}' is the last super_admin; removing that role would leave nobody able "
            "to migrate, roll back or manage operators.",
            hint="Grant super_admin to another operator first.",
        )
