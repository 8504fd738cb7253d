"""The exceptions the core raises, each carrying the CLI exit code it maps to.

Messages say what went wrong, where, and how to fix it. They never carry key material,
passwords or record values: callers build them from names, counts and identifiers only.
"""

from __future__ import annotations

from typing import ClassVar


class MigratorError(Exception):
    """Base of every error the tool reports to an operator."""

    exit_code: ClassVar[int] = 1
    code: ClassVar[str] = "operation_failed"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} {self.hint}" if self.hint else self.message


class OperationFailed(MigratorError):
    """An operation was attempted and could not complete (exit code 1)."""


class BadInput(MigratorError):
    """The operator's input or configuration is wrong; nothing was written (exit code 2)."""

    exit_code = 2
    code = "bad_input"


class ConfigError(BadInput):
    """Settings, paths or the master key are unusable."""

    code = "config_error"


class WrongMasterKey(ConfigError):
    """The master key does not match the keys stored in the database."""

    code = "wrong_master_key"


class MappingError(BadInput):
    """The schema mapping does not parse or does not match the live database."""

    code = "mapping_error"


class InvalidMigrationConfig(BadInput):
    """A migration configuration value is out of range or unknown."""

    code = "invalid_config"


class UnknownMigration(BadInput):
    """No migration has that id in this database (HTTP 404; exit code 2 like any bad input)."""

    code = "unknown_migration"


class StateConflict(BadInput):
    """The migration's state does not allow the operation now: rolling back a running one,
    resuming a completed one (HTTP 409; exit code 2). The hint says what would allow it."""

    code = "conflicting_state"


class PermissionDenied(MigratorError):
    """The operator's role does not allow the operation (exit code 3). Always audited."""

    exit_code = 3
    code = "permission_denied"


class Unauthenticated(MigratorError):
    """An API token was refused: missing, malformed, unknown, revoked or expired (exit code 3,
    like a refused role). Always audited. ``reason`` names which, for the HTTP layer; the
    message never repeats the token."""

    exit_code = 3
    code = "unauthenticated"

    def __init__(self, message: str, *, reason: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.reason = reason


class DecryptionFailed(OperationFailed):
    """A token could not be decrypted: wrong key, wrong row context, or tampering."""

    code = "decryption_failed"


class AuditChainBroken(OperationFailed):
    """The audit trail failed verification."""

    code = "audit_chain_broken"


class DatabaseUnavailable(OperationFailed):
    """The database failed under a command — its connection lost, its server restarting, its
    disk full — in the database's own words (HTTP 503; exit code 1). Running the command again
    once the database is back is the remedy."""

    code = "database_error"


class Interrupted(MigratorError):
    """The operator stopped the command (Ctrl-C); exit code 130, as for any program a SIGINT
    stops. The message says what was left and how to carry on."""

    exit_code = 130
    code = "interrupted"
