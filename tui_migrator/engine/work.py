"""What any worker needs to work on one migration, whether it owns the migration or joined it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine

from tui_migrator.crypto.ciphers import ValueCipher
from tui_migrator.crypto.keys import MasterKey
from tui_migrator.engine.batches import RetryPolicy, with_retries
from tui_migrator.storage import migration_records as migrations
from tui_migrator.storage.audit import AuditTrail
from tui_migrator.storage.mapping import ResolvedMapping
from tui_migrator.storage.migration_records import MigrationRecord


@dataclass(frozen=True)
class MigrationWork:
    """The database, the mapped tables, the keys, the audit trail and the operator acted for."""

    engine: Engine
    migration_id: str
    mapping: ResolvedMapping
    cipher: ValueCipher
    master_key: MasterKey
    audit: AuditTrail
    user: str
    retry: RetryPolicy | None = None


class MigrationWorker:
    """Base of the owning runner (engine.py) and of a joined worker (joining.py)."""

    def __init__(self, work: MigrationWork) -> None:
        self.work = work
        self.engine = work.engine
        self.migration_id = work.migration_id
        self.mapping = work.mapping
        self.cipher = work.cipher
        self.master_key = work.master_key
        self.audit = work.audit
        self.user = work.user
        self.retry = work.retry

    def _retrying(self, action: Callable[[], Any], *, what: str) -> Any:
        """A worker's own bookkeeping survives what a batch survives (a restarting server)."""
        return with_retries(self.retry or RetryPolicy(), action, what=what)

    def _record(self) -> MigrationRecord:
        return self._retrying(
            lambda: migrations.get(self.engine, self.migration_id), what="reading the migration"
        )

    def _control(self) -> migrations.Control:
        return self._retrying(
            lambda: migrations.control(self.engine, self.migration_id),
            what="reading cancel and pause requests",
        )

    def _audit(self, operation: str, success: bool, details: dict[str, Any]) -> None:
        self.audit.record(
            operation, user_id=self.user, success=success, migration_id=self.migration_id, details=details
        )
