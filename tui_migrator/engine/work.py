"""What any worker needs to work on one migration, whether it owns the migration or joined it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.engine import Connection, Engine

from tui_migrator.common.migration_config import MigrationConfig
from tui_migrator.crypto.ciphers import ValueCipher
from tui_migrator.crypto.keys import MasterKey
from tui_migrator.engine import backup, batch_size, read_sizes
from tui_migrator.engine.batches import TableBatches
from tui_migrator.engine.cpu_pool import CpuPool
from tui_migrator.engine.retry import RetryPolicy, with_retries
from tui_migrator.storage import migration_claims
from tui_migrator.storage import migration_records as migrations
from tui_migrator.storage.audit import AuditTrail
from tui_migrator.storage.audit_operations import AuditOperation
from tui_migrator.storage.column_storage import TableAccess
from tui_migrator.storage.database import serialized_write
from tui_migrator.storage.mapping import ResolvedMapping
from tui_migrator.storage.migration_records import MigrationRecord

T = TypeVar("T")


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

    def table_batches(
        self,
        access: TableAccess,
        config: MigrationConfig,
        *,
        epoch: int,
        pool: CpuPool | None = None,
    ) -> TableBatches:
        """The batches of one table as ``config`` runs them, written only while ``epoch`` is
        still the migration's claim (see storage/migration_claims.py). Where the migration keeps
        backups, each batch writes the backups of the rows it changes (engine/backup.py)."""
        backup_table = None
        if config.create_backups and not config.dry_run:
            backup_table = backup.backup_table(
                access, backup.backup_table_name(self.migration_id, access.mapped.name)
            )
        return TableBatches(
            self.engine,
            access,
            migration_id=self.migration_id,
            organizations=config.organizations_in_scope,
            cipher=self.cipher,
            master_key=self.master_key,
            backup_table=backup_table,
            dry_run=config.dry_run,
            epoch=epoch,
            retry=self.retry,
            pool=pool,
        )


class MigrationWorker:
    """Base of the owning runner (runner.py) and of a joined worker (joiner.py): the migration's
    record, its requests and its audit entries, each read or written with the retry policy."""

    # The claim this worker writes under: set by the owner's claim or read when joining.
    epoch: int

    def __init__(self, work: MigrationWork) -> None:
        self.work = work
        self.engine = work.engine
        self.migration_id = work.migration_id
        self.mapping = work.mapping
        self.cipher = work.cipher
        self.master_key = work.master_key
        self.audit = work.audit
        self.user = work.user
        self.retry = work.retry or RetryPolicy()

    def retrying(self, action: Callable[[], T], *, what: str) -> T:
        """A worker's own bookkeeping survives what a batch survives (a restarting server)."""
        return with_retries(self.retry, action, what=what)

    def measured_rows(self, access: TableAccess, config: MigrationConfig) -> read_sizes.BatchRows:
        """The most rows a batch of ``access``'s table may hold, measured now (fewer than the
        batch size where its rows are large) and following the batches read after."""
        return self.retrying(
            lambda: read_sizes.BatchRows.measured(self.engine, access, batch_size.largest(config)),
            what=f"measuring the rows of {access.mapped.name}",
        )

    def read_record(self) -> MigrationRecord:
        return self.retrying(
            lambda: migrations.get(self.engine, self.migration_id), what="reading the migration"
        )

    def read_requests(self) -> migrations.Control:
        """The cancel and pause requests, from any process."""
        return self.retrying(
            lambda: migrations.control(self.engine, self.migration_id),
            what="reading cancel and pause requests",
        )

    def update_record(self, **values: Any) -> None:
        self.retrying(lambda: self.write_record(**values), what="updating the migration record")

    def write_record(self, **values: Any) -> None:
        """One try, for callers that retry their own way (or need not retry at all)."""
        with serialized_write(self.engine) as connection:
            migration_claims.fenced_update(connection, self.migration_id, self.epoch, **values)

    @contextmanager
    def fenced_write(self, *, durable: bool = True) -> Iterator[Connection]:
        """A write transaction that first proves this worker still holds the migration
        (``durable``: see storage.database.serialized_write)."""
        with serialized_write(self.engine, durable=durable) as connection:
            migration_claims.check_epoch(connection, self.migration_id, self.epoch)
            yield connection

    def update_table(self, table: str, *, durable: bool = True, **values: Any) -> None:
        def write() -> None:
            with self.fenced_write(durable=durable) as connection:
                migrations.update_table(connection, self.migration_id, table, **values)

        self.retrying(write, what=f"updating the progress of {table}")

    def record_event(self, operation: AuditOperation, success: bool, details: dict[str, Any]) -> None:
        """An audit entry for this migration, in the name of the operator it runs for."""
        self.audit.record(
            operation, user_id=self.user, success=success, migration_id=self.migration_id, details=details
        )
