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


class PermissionDenied(MigratorError):
    """The operator's role does not allow the operation (exit code 3). Always audited."""

    exit_code = 3
    code = "permission_denied"


class DecryptionFailed(OperationFailed):
    """A token could not be decrypted: wrong key, wrong row context, or tampering."""

    code = "decryption_failed"


class AuditChainBroken(OperationFailed):
    """The audit trail failed verification."""

    code = "audit_chain_broken"
