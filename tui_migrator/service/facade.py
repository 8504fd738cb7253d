"""The one service both faces call. It knows nothing of the CLI or the TUI.

Opening it connects to the database, sets the tool's tables up on first use, and proves the
master key matches the one the database was set up with — before anything else can run.
Every operation checks the operator's role here, in the service, and audits refusals.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tui_migrator import demo
from tui_migrator.common.errors import (
    BadInput,
    ConfigError,
    MigratorError,
    OperationFailed,
    PermissionDenied,
    WrongMasterKey,
)
from tui_migrator.common.migration_config import MigrationConfig, parse_config
from tui_migrator.common.settings import DEMO_DATABASE_FILENAME, Settings
from tui_migrator.crypto.ciphers import RowContext, RowSealer, ValueCipher
from tui_migrator.crypto.keys import MasterKey, load_master_key
from tui_migrator.engine import backup, estimate, rollback, scope
from tui_migrator.engine import detached as worker
from tui_migrator.engine import joiner as joining
from tui_migrator.engine.batches import RetryPolicy
from tui_migrator.engine.rollback import RollbackResult
from tui_migrator.engine.runner import MigrationRunner
from tui_migrator.engine.work import MigrationWork
from tui_migrator.reader import RecordReader
from tui_migrator.service import health
from tui_migrator.service.report import completion_report, recommendations, risk_assessment
from tui_migrator.storage import migration_records as migrations
from tui_migrator.storage import operators
from tui_migrator.storage.audit import AuditEntry, AuditTrail, AuditVerification
from tui_migrator.storage.audit_operations import AuditOperation
from tui_migrator.storage.database import create_database_engine, redacted, serialized_write
from tui_migrator.storage.keyring import DataKeyInfo, KeyRing
from tui_migrator.storage.mapping import (
    BUILTIN_SOURCE,
    ResolvedMapping,
    load_mapping_file,
    parse_mapping,
    resolve_mapping,
)
from tui_migrator.storage.migration_status import ROLLBACK_STATUSES, Status
from tui_migrator.storage.operators import Action, Operator, Role
from tui_migrator.storage.tables import (
    META_KEY_FINGERPRINT,
    TABLE_PREFIX,
    create_tool_tables,
    drop_tool_tables,
    read_meta,
    tool_tables_exist,
    utc_now,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Plan:
    config: MigrationConfig
    scope: scope.MigrationScope
    held: dict[str, str]


RESUMABLE = (Status.CANCELLED, Status.FAILED, Status.INTERRUPTED, Status.PLANNED)


@dataclass(frozen=True)
class AuditPage:
    entries: list[AuditEntry]
    total_entries: int


class MigratorService:
    """Facade over the core for one operator and one database."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        master_key: MasterKey,
        *,
        user: str,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.user = user
        self._master_key = master_key
        self._keyring = KeyRing(engine, master_key)
        self._audit = AuditTrail(engine, master_key)
        self._mapping: ResolvedMapping | None = None
        self.retry_policy: RetryPolicy | None = None

    # -- opening ---------------------------------------------------------------------------

    @classmethod
    def open(cls, settings: Settings, *, user: str | None = None) -> MigratorService:
        """Connect, set the tool up on first use, and verify the master key.

        With no database configured, the embedded SQLite demo database is created and filled
        on first use.
        """
        user = user or operators.current_os_user()
        if settings.uses_embedded_database:
            _ensure_embedded_demo(settings)
        engine = create_database_engine(settings.effective_database_url)
        try:
            service = cls._connect(settings, engine, user)
        except BaseException:
            engine.dispose()
            raise
        return service

    @classmethod
    def _connect(cls, settings: Settings, engine: Engine, user: str) -> MigratorService:
        try:
            initialized = tool_tables_exist(engine)
        except sa.exc.OperationalError as error:
            raise ConfigError(
                f"Cannot connect to the database at {redacted(engine.url)}: {_driver_message(error)}",
                hint="Check --db / TUI_MIGRATOR_DB, that the server is running and the credentials.",
            ) from None
        master_key = load_master_key(settings, create_if_missing=not initialized)
        if initialized:
            _check_fingerprint(engine, master_key, settings)
        service = cls(settings, engine, master_key, user=user)
        if initialized:
            service._keyring.verify_all()
        elif create_tool_tables(engine, key_fingerprint=master_key.fingerprint, created_by=user):
            service._bootstrap(user)
        else:
            # Another process set the database up between our check and our attempt.
            _check_fingerprint(engine, master_key, settings)
        return service

    def _bootstrap(self, user: str) -> None:
        with serialized_write(self.engine) as connection:
            operators.put_operator(connection, user, Role.SUPER_ADMIN, granted_by=user, granted_at=utc_now())
            self._audit.append(
                connection,
                AuditOperation.TOOL_INITIALIZED,
                user_id=user,
                success=True,
                details={
                    "database": redacted(self.engine.url),
                    "firstSuperAdmin": user,
                    "masterKeyFingerprint": self._master_key.fingerprint,
                },
            )
        log.info("set up tui-migrator tables; %s is the first super_admin", user)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> MigratorService:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- identity and roles ----------------------------------------------------------------

    def role(self) -> Role | None:
        with self.engine.connect() as connection:
            return operators.role_of(connection, self.user)

    def can(self, action: Action) -> bool:
        role = self.role()
        if role is None:
            return False
        if self.settings.readonly and action is not Action.READ:
            return False
        return action in operators.ALLOWED[role]

    def authorize(self, action: Action, operation: str) -> None:
        """Raise :class:`PermissionDenied` (and audit the refusal) unless allowed."""
        if self.can(action):
            return
        role = self.role()
        self._audit.record(
            AuditOperation.PERMISSION_DENIED,
            user_id=self.user,
            success=False,
            details={
                "attemptedOperation": operation,
                "role": role.value if role else None,
                "readonly": self.settings.readonly,
            },
        )
        if self.settings.readonly and role is not None:
            raise PermissionDenied(
                f"'{operation}' changes data, and this session is read-only (--readonly).",
                hint="Run without --readonly to make changes.",
            )
        if role is None:
            raise PermissionDenied(
                f"The user '{self.user}' has no role in this database, so '{operation}' is refused.",
                hint=f"Ask a super_admin to run: tui-migrator operators grant {self.user} viewer "
                "(or super_admin).",
            )
        raise PermissionDenied(
            f"The user '{self.user}' has the role {role.value}, which may not run '{operation}'.",
            hint=f"Ask a super_admin to run: tui-migrator operators grant {self.user} super_admin",
        )

    def list_operators(self) -> list[Operator]:
        self.authorize(Action.READ, "operators list")
        with self.engine.connect() as connection:
            return operators.list_operators(connection)

    def grant(self, username: str, role_name: str) -> Operator:
        operators.check_username(username)
        role = operators.parse_role(role_name)
        self.authorize(Action.MANAGE_OPERATORS, "operators grant")
        with serialized_write(self.engine) as connection:
            previous = operators.role_of(connection, username)
            if previous is Role.SUPER_ADMIN and role is not Role.SUPER_ADMIN:
                _refuse_removing_last_super_admin(connection, username)
            granted_at = utc_now()
            operators.put_operator(connection, username, role, granted_by=self.user, granted_at=granted_at)
            self._audit.append(
                connection,
                AuditOperation.OPERATOR_GRANTED,
                user_id=self.user,
                success=True,
                details={
                    "operator": username,
                    "role": role.value,
                    "previousRole": previous.value if previous else None,
                },
            )
        return Operator(username, role, self.user, granted_at)

    def revoke(self, username: str) -> bool:
        operators.check_username(username)
        self.authorize(Action.MANAGE_OPERATORS, "operators revoke")
        with serialized_write(self.engine) as connection:
            previous = operators.role_of(connection, username)
            if previous is None:
                raise BadInput(
                    f"The user '{username}' has no role in this database; nothing to revoke.",
                    hint="See who has a role with: tui-migrator operators list",
                )
            if previous is Role.SUPER_ADMIN:
                _refuse_removing_last_super_admin(connection, username)
            operators.delete_operator(connection, username)
            self._audit.append(
                connection,
                AuditOperation.OPERATOR_REVOKED,
                user_id=self.user,
                success=True,
                details={"operator": username, "previousRole": previous.value},
            )
        return True

    # -- audit -----------------------------------------------------------------------------

    def audit_entries(self, *, limit: int | None = 50, migration_id: str | None = None) -> AuditPage:
        self.authorize(Action.READ, "audit")
        entries, total = self._audit.entries(limit=limit, migration_id=migration_id)
        return AuditPage(entries, total)

    def verify_audit(self, *, record: bool = True) -> AuditVerification:
        """Recompute the chain. With ``record``, the verification itself is audited after it ran."""
        self.authorize(Action.READ, "audit --verify")
        result = self._audit.verify()
        if record:
            self._audit.record(
                AuditOperation.AUDIT_VERIFIED,
                user_id=self.user,
                success=result.intact,
                details={
                    "verifiedEntries": result.verified_entries,
                    "firstBrokenEntry": result.first_broken_seq,
                },
            )
        return result

    # -- keys ------------------------------------------------------------------------------

    @property
    def master_key_fingerprint(self) -> str:
        return self._master_key.fingerprint

    @property
    def master_key_source(self) -> str:
        return self._master_key.source

    def data_keys(self) -> list[DataKeyInfo]:
        self.authorize(Action.READ, "keys list")
        return self._keyring.describe()

    def value_cipher(self) -> ValueCipher:
        """The cipher for sealing and opening values (the engine and the read API use it)."""
        return ValueCipher(self._keyring, self._master_key, actor=self.user)

    # -- mapping and reads -----------------------------------------------------------------

    def mapping(self) -> ResolvedMapping:
        """The schema mapping checked against the live database (cached for this service)."""
        if self._mapping is None:
            path = self.settings.schema_path
            if path is not None:
                parsed, source = load_mapping_file(Path(path)), str(path)
            else:
                parsed, source = (
                    parse_mapping({"tables": demo.DEMO_PROFILE}, source=BUILTIN_SOURCE),
                    BUILTIN_SOURCE,
                )
            self._mapping = resolve_mapping(parsed, self.engine, source=source)
        return self._mapping

    def record_reader(self, *, on_close: Callable[[], None] | None = None) -> RecordReader:
        self.authorize(Action.READ, "read records")
        return RecordReader(self.value_cipher(), self.mapping(), on_close=on_close)

    # -- health ----------------------------------------------------------------------------

    def health(self) -> health.HealthReport:
        """Engine, keys, disk and recent activity. Needs no role: it shows no patient data."""
        now = utc_now()
        with self.engine.connect() as connection:
            running = health.running_migrations(connection)
            activity = health.recent_activity(connection, now)
            role = operators.role_of(connection, self.user)
        encryption_ready, key_count = self._encryption_canary()
        database_file = _sqlite_file(self.engine)
        disk = health.measure_disk(self.settings.data_dir, database_file)
        alerts, recommendations = health.advice(
            running=running,
            disk=disk,
            encryption_ready=encryption_ready,
            dialect=self.engine.dialect.name,
        )
        return health.HealthReport(
            system_health=health.SystemHealth(
                migration_engine_online=True,
                running_migrations=running,
                encryption_system_ready=encryption_ready,
                backup_system_ready=disk.enough_for_backups,
                database=redacted(self.engine.url),
                database_dialect=self.engine.dialect.name,
                data_keys=key_count,
                master_key_source=self._master_key.source,
                master_key_fingerprint=self._master_key.fingerprint,
                free_disk_bytes=disk.free_bytes,
                free_disk_percent=round(100 * disk.free_fraction, 1),
                database_bytes=disk.database_bytes,
                disk_checked_at=disk.checked_at,
            ),
            recent_activity=activity,
            operator=health.OperatorInfo(
                user=self.user, role=role.value if role else None, readonly=self.settings.readonly
            ),
            alerts=alerts,
            recommendations=recommendations,
            last_updated=now,
        )

    def _encryption_canary(self) -> tuple[bool, int]:
        """Every stored key unwraps and round-trips a canary value."""
        try:
            keys = self._keyring.describe()
            cipher = self.value_cipher()
            for info in keys:
                context = RowContext("tm_canary", "canary", (0,), info.organization_id)
                if cipher.decrypt(cipher.encrypt("canary", context), context) != "canary":
                    return False, len(keys)
        except MigratorError:
            log.warning("encryption canary failed", exc_info=True)
            return False, 0
        return True, len(keys)

    # -- migrations ------------------------------------------------------------------------

    def plan(self, config_values: dict[str, Any]) -> Plan:
        """Validate a configuration and resolve its scope, writing nothing."""
        self.authorize(Action.READ, "plan")
        config = parse_config(config_values)
        mapping = self.mapping()
        with self.engine.connect() as connection:
            migration_scope = scope.analyse(connection, mapping, config)
            held = migrations.holders(connection, [table.name for table in migration_scope.tables])
        return Plan(config, migration_scope, held)

    def estimate(self, config_values: dict[str, Any]) -> dict[str, Any]:
        """The seed's estimate, from a calibration measured on this database, plus pre-flight checks."""
        self.authorize(Action.READ, "estimate")
        plan = self.plan(config_values)
        cipher = self.value_cipher()
        calibration = estimate.calibrate(self.engine, plan.scope, plan.config, cipher, self._master_key)
        seconds = estimate.estimated_seconds(calibration, plan.scope, plan.config, self.engine.dialect.name)
        database_file = _sqlite_file(self.engine)
        database_bytes = _database_bytes(self.engine, database_file)
        increase = estimate.storage_increase_percent(calibration, plan.scope, database_bytes)
        checks = self._preflight(plan, calibration, database_file)
        rows = plan.scope.pending_rows
        return {
            "estimatedRecords": rows,
            "estimatedTimeMinutes": round(seconds / 60, 1),
            "estimatedTimeSeconds": round(seconds, 1),
            "estimatedStorageIncrease": "n/a" if increase is None else f"{increase:.0f}%",
            "alreadyEncryptedRecords": plan.scope.encrypted_rows,
            "byCategory": plan.scope.by_category,
            "byOrganization": plan.scope.by_organization,
            "byTable": {table.name: table.pending_rows for table in plan.scope.tables},
            "recommendations": recommendations(rows, self.engine.dialect.name),
            "riskAssessment": risk_assessment(rows, calibration, plan, seconds),
            "preflightChecks": checks,
            "canStart": all(check["passed"] for check in checks),
            "calibration": calibration.to_json(),
            "config": plan.config.to_json_data(),
        }

    def start(
        self,
        config_values: dict[str, Any],
        *,
        detach: bool = False,
        on_progress: Callable[[migrations.MigrationRecord], None] | None = None,
    ) -> migrations.MigrationRecord:
        """Plan, check and create a migration, then run it here or in a detached worker."""
        self.authorize(Action.MIGRATE, "start")
        plan = self.plan(config_values)
        scope.refuse_rows_without_organization(plan.scope)
        if plan.held and not plan.config.dry_run:
            migrations.raise_table_held(plan.held)
        cipher = self.value_cipher()
        calibration = estimate.calibrate(self.engine, plan.scope, plan.config, cipher, self._master_key)
        seconds = estimate.estimated_seconds(calibration, plan.scope, plan.config, self.engine.dialect.name)
        for check in self._preflight(plan, calibration, _sqlite_file(self.engine)):
            if not check["passed"]:
                raise OperationFailed(
                    f"Pre-flight check '{check['check']}' failed: {check['detail']}. Nothing was written."
                )
        warnings = []
        if not plan.config.create_backups:
            warnings.append(
                "Backups are disabled (--no-backups): rollback relies on decrypting the tokens alone."
            )
        if plan.config.skip_integrity_checks:
            warnings.append("Integrity checks are skipped: written rows are not read back and verified.")
        migration_id = migrations.create(
            self.engine,
            config=plan.config,
            created_by=self.user,
            tables=[(t.name, t.access.mapped.category.value, t.pending_rows) for t in plan.scope.tables],
            skipped_records=plan.scope.encrypted_rows,
            estimated_seconds=seconds,
            warnings=warnings,
        )
        self._audit.record(
            AuditOperation.MIGRATION_STARTED,
            user_id=self.user,
            success=True,
            migration_id=migration_id,
            details={
                "batchSize": plan.config.batch_size,
                "maxConcurrency": plan.config.max_concurrency,
                "totalRecords": plan.scope.pending_rows,
                "dryRun": plan.config.dry_run,
                "dataCategories": [c.value for c in plan.config.data_categories],
                "organizationIds": plan.config.organization_ids,
                "createBackups": plan.config.create_backups,
                "warnings": warnings,
            },
        )
        if detach:
            worker.spawn(self.settings, migration_id)
            return migrations.get(self.engine, migration_id)
        return self.run_migration(migration_id, on_progress=on_progress)

    def run_migration(
        self, migration_id: str, *, on_progress: Callable[[migrations.MigrationRecord], None] | None = None
    ) -> migrations.MigrationRecord:
        """Run (or resume) a migration in this process until it reaches a final state."""
        self.authorize(Action.MIGRATE, "worker")
        return MigrationRunner(self._work(migration_id), on_progress=on_progress).run()

    def join(
        self, migration_id: str, *, on_batch: Callable[[joining.JoinSummary], None] | None = None
    ) -> joining.JoinSummary:
        """Take batches of a migration another worker is running, until none are left (PostgreSQL)."""
        self.authorize(Action.MIGRATE, "join")
        return joining.JoiningWorker(self._work(migration_id), on_batch=on_batch).run()

    def _work(self, migration_id: str) -> MigrationWork:
        return MigrationWork(
            self.engine,
            migration_id=migration_id,
            mapping=self.mapping(),
            cipher=self.value_cipher(),
            master_key=self._master_key,
            audit=self._audit,
            user=self.user,
            retry=self.retry_policy,
        )

    def status(self, migration_id: str) -> migrations.MigrationRecord:
        self.authorize(Action.READ, "status")
        return migrations.get(self.engine, migration_id)

    def list_migrations(
        self, *, limit: int | None = 20, status: str | None = None
    ) -> tuple[list[migrations.MigrationRecord], list[migrations.MigrationRecord]]:
        """Newest first: the page asked for (filtered, limited), and every migration, for the
        summary by status."""
        self.authorize(Action.READ, "list")
        wanted = _parse_status(status) if status else None
        everything = migrations.list_records(self.engine)
        matching = [record for record in everything if wanted is None or record.status is wanted]
        return (matching[:limit] if limit else matching), everything

    def cancel(
        self, migration_id: str, reason: str, *, wait_seconds: float = 30.0
    ) -> migrations.MigrationRecord:
        """Ask the worker to stop after its in-flight batches; wait for it to acknowledge."""
        reason = reason.strip()
        if not reason:
            raise BadInput(
                "A cancel needs a reason.", hint='Add --reason "why", e.g. --reason "Emergency maintenance".'
            )
        self.authorize(Action.MIGRATE, "cancel")
        with serialized_write(self.engine) as connection:
            record = migrations.load(connection, migration_id, for_update=True)
            if record.status not in (Status.RUNNING, Status.PAUSED, Status.PLANNED, Status.INTERRUPTED):
                raise BadInput(
                    f"Migration {migration_id} is {record.status.value}; only a planned, running, paused or "
                    "interrupted migration can be cancelled."
                )
            values: dict[str, Any] = {
                "cancel_requested": True,
                "cancel_reason": reason,
                "cancelled_by": self.user,
            }
            if not record.worker_alive:
                # Nobody is running it: it stops here and now.
                values.update(status=Status.CANCELLED.value, cancelled_at=utc_now())
            migrations.update(connection, migration_id, **values)
            self._audit.append(
                connection,
                AuditOperation.MIGRATION_CANCEL_REQUESTED,
                user_id=self.user,
                success=True,
                migration_id=migration_id,
                details={"reason": reason},
            )
        deadline = time.monotonic() + wait_seconds
        record = migrations.get(self.engine, migration_id)
        while record.status is not Status.CANCELLED and record.worker_alive and time.monotonic() < deadline:
            time.sleep(0.2)
            record = migrations.get(self.engine, migration_id)
        return record

    def pause(self, migration_id: str) -> migrations.MigrationRecord:
        self.authorize(Action.MIGRATE, "pause")
        return self._request(migration_id, "pause", pause_requested=True, allowed=(Status.RUNNING,))

    def continue_(self, migration_id: str) -> migrations.MigrationRecord:
        self.authorize(Action.MIGRATE, "continue")
        return self._request(
            migration_id, "continue", pause_requested=False, allowed=(Status.PAUSED, Status.RUNNING)
        )

    def _request(
        self, migration_id: str, verb: str, *, allowed: tuple[Status, ...], **values: Any
    ) -> migrations.MigrationRecord:
        with serialized_write(self.engine) as connection:
            record = migrations.load(connection, migration_id, for_update=True)
            if record.status not in allowed:
                raise BadInput(
                    f"Migration {migration_id} is {record.status.value}; '{verb}' needs it "
                    f"{' or '.join(s.value for s in allowed)}.",
                    hint="Resume an interrupted or cancelled migration with: tui-migrator resume "
                    + migration_id
                    if record.status in RESUMABLE
                    else None,
                )
            migrations.update(connection, migration_id, **values)
            self._audit.append(
                connection,
                f"data_migration_{verb}_requested",
                user_id=self.user,
                success=True,
                migration_id=migration_id,
                details={},
            )
        return migrations.get(self.engine, migration_id)

    def resume(
        self,
        migration_id: str,
        *,
        detach: bool = False,
        on_progress: Callable[[migrations.MigrationRecord], None] | None = None,
    ) -> migrations.MigrationRecord:
        """Continue a cancelled, failed or interrupted migration from its last checkpoint; failed
        records are retried."""
        self.authorize(Action.MIGRATE, "resume")
        record = migrations.get(self.engine, migration_id)
        retry_failures = (
            record.status is Status.COMPLETED and record.failed_records > 0 and not record.dry_run
        )
        if record.status not in RESUMABLE and not retry_failures:
            raise BadInput(
                f"Migration {migration_id} is {record.status.value}; only a cancelled, failed or "
                "interrupted migration (or a completed one with failed records) can be resumed.",
                hint="A paused one continues with: tui-migrator continue " + migration_id
                if record.status is Status.PAUSED
                else None,
            )
        with serialized_write(self.engine) as connection:
            if retry_failures:
                # Completion released its tables; retrying its failed records takes them again.
                tables = [table.name for table in record.tables]
                held = migrations.holders(connection, tables)
                if held:
                    migrations.raise_table_held(held)
                migrations.lock_tables(connection, migration_id, tables)
            for table in record.tables:
                if table.failed_records:
                    migrations.update_table(connection, migration_id, table.name, done=False)
            self._audit.append(
                connection,
                AuditOperation.MIGRATION_RESUMED,
                user_id=self.user,
                success=True,
                migration_id=migration_id,
                details={
                    "previousStatus": record.status.value,
                    "failedRecordsToRetry": record.failed_records,
                },
            )
        if detach:
            worker.spawn(self.settings, migration_id)
            return migrations.get(self.engine, migration_id)
        return self.run_migration(migration_id, on_progress=on_progress)

    def rollback(
        self, migration_id: str, *, confirm: bool
    ) -> tuple[migrations.MigrationRecord, RollbackResult]:
        """Restore every value the migration encrypted and remove what it added."""
        if not confirm:
            raise BadInput(
                f"Rolling back {migration_id} rewrites every value it encrypted, so it needs confirmation.",
                hint=f"Run: tui-migrator rollback {migration_id} --confirm",
            )
        self.authorize(Action.MIGRATE, "rollback")
        record = migrations.get(self.engine, migration_id)
        if record.dry_run:
            raise BadInput(
                f"Migration {migration_id} was a dry run: it changed no data, so there is nothing to roll back."
            )
        if record.status not in ROLLBACK_STATUSES:
            raise BadInput(
                f"Migration {migration_id} is {record.status.value}; rollback works on completed, failed, "
                "cancelled and interrupted migrations.",
                hint=f'Cancel it first: tui-migrator cancel {migration_id} --reason "..."'
                if record.status in (Status.RUNNING, Status.PAUSED)
                else None,
            )
        self._audit.record(
            AuditOperation.ROLLBACK_STARTED,
            user_id=self.user,
            success=True,
            migration_id=migration_id,
            details={"previousStatus": record.status.value},
        )
        try:
            result = rollback.roll_back(
                self.engine,
                record,
                self.mapping(),
                self.value_cipher(),
                RowSealer(self._master_key, migration_id),
            )
        except MigratorError as error:
            self._audit.record(
                AuditOperation.ROLLBACK_FAILED,
                user_id=self.user,
                success=False,
                migration_id=migration_id,
                details={"error": str(error)},
            )
            raise
        with serialized_write(self.engine) as connection:
            migrations.update(
                connection,
                migration_id,
                status=Status.ROLLED_BACK.value,
                rolled_back_at=utc_now(),
                rollback_seconds=result.seconds,
            )
            migrations.release_locks(connection, migration_id)
            self._audit.append(
                connection,
                AuditOperation.ROLLED_BACK,
                user_id=self.user,
                success=True,
                migration_id=migration_id,
                details=result.to_json(),
            )
        return migrations.get(self.engine, migration_id), result

    def failed_records(self, migration_id: str) -> list[dict[str, Any]]:
        self.authorize(Action.READ, "failed")
        migrations.get(self.engine, migration_id)
        return migrations.failed_records(self.engine, migration_id)

    def report(self, migration_id: str) -> dict[str, Any]:
        self.authorize(Action.READ, "report")
        record = migrations.get(self.engine, migration_id)
        return completion_report(record, migrations.failed_records(self.engine, migration_id))

    def purge_backups(self, migration_id: str, *, confirm: bool) -> list[str]:
        if not confirm:
            raise BadInput(
                f"Purging the backups of {migration_id} removes the sealed copies rollback can fall back on.",
                hint=f"Run: tui-migrator purge-backups {migration_id} --confirm",
            )
        self.authorize(Action.MIGRATE, "purge-backups")
        record = migrations.get(self.engine, migration_id)
        if record.status in (Status.RUNNING, Status.PAUSED):
            raise BadInput(f"Migration {migration_id} is {record.status.value}; its backups are in use.")
        dropped = []
        with serialized_write(self.engine) as connection:
            for table in record.tables:
                if table.backup_table:
                    backup.drop_backup_table(connection, table.backup_table)
                    dropped.append(table.backup_table)
                    migrations.update_table(
                        connection, migration_id, table.name, backup_table=None, backup_verified=False
                    )
            self._audit.append(
                connection,
                AuditOperation.BACKUPS_PURGED,
                user_id=self.user,
                success=True,
                migration_id=migration_id,
                details={"droppedTables": dropped},
            )
        return dropped

    def _preflight(
        self, plan: Plan, calibration: estimate.Calibration, database_file: Path | None
    ) -> list[dict[str, Any]]:
        checks = []
        try:
            self._keyring.verify_all()
            cipher = self.value_cipher()
            existing = {info.organization_id for info in self._keyring.describe()}
            for organization in sorted(set(plan.scope.organizations) & existing):
                context = RowContext("tm_canary", "canary", (0,), organization)
                if cipher.decrypt(cipher.encrypt("canary", context), context) != "canary":
                    raise OperationFailed(f"canary failed for {organization}")
            new = sorted(set(plan.scope.organizations) - existing)
            detail = f"master key unwraps every data key; canary passed for {len(existing & set(plan.scope.organizations))} organizations"
            if new:
                detail += f"; keys will be created for {', '.join(new)}"
            checks.append({"check": "keys", "passed": True, "detail": detail})
        except MigratorError as error:
            checks.append({"check": "keys", "passed": False, "detail": str(error)})
        missing = [t for t in plan.scope.tables if t.rows_without_organization]
        checks.append(
            {
                "check": "organizations",
                "passed": not missing,
                "detail": "every row in scope has an organization"
                if not missing
                else "; ".join(
                    f"{t.name}: {t.rows_without_organization} rows with NULL or empty "
                    f"'{t.access.mapped.organization_column}' (set default_organization in the mapping)"
                    for t in missing
                ),
            }
        )
        checks.append(
            {
                "check": "locks",
                "passed": plan.config.dry_run or not plan.held,
                "detail": "no other migration holds these tables"
                if not plan.held
                else "; ".join(f"{table} is held by {holder}" for table, holder in sorted(plan.held.items())),
            }
        )
        checks.append(self._disk_check(plan, calibration, database_file))
        return checks

    def _disk_check(
        self, plan: Plan, calibration: estimate.Calibration, database_file: Path | None
    ) -> dict[str, Any]:
        if database_file is None:
            return {
                "check": "disk",
                "passed": True,
                "detail": "backups are written on the database server; check its free space",
            }
        disk = health.measure_disk(self.settings.data_dir, database_file)
        per_row = calibration.added_bytes / calibration.sample_rows if calibration.sample_rows else 0
        needed = int(per_row * plan.scope.pending_rows)
        passed = disk.free_bytes > needed and disk.free_fraction >= health.MIN_FREE_DISK_FRACTION
        return {
            "check": "disk",
            "passed": passed,
            "detail": f"{disk.free_bytes // 2**20} MiB free ({100 * disk.free_fraction:.0f}%), "
            f"about {needed // 2**20 + 1} MiB needed for tokens, backups and metadata",
        }

    # -- demo ------------------------------------------------------------------------------

    def rebuild_demo(self, *, patients: int, organizations: int, seed: int) -> demo.DemoSummary:
        """Drop and rebuild the demo data and the tool's tables in this database.

        Refused unless the database holds only demo and tool tables: this must never be able to
        drop a real deployment's tables.
        """
        demo.validate_demo_size(patients, organizations)
        self.authorize(Action.REBUILD_DEMO, "demo")
        _refuse_non_demo_database(self.engine)
        drop_tool_tables(self.engine)
        summary = demo.build_demo_database(
            self.engine, patients=patients, organizations=organizations, seed=seed
        )
        self._keyring = KeyRing(self.engine, self._master_key)
        self._mapping = None
        create_tool_tables(self.engine, key_fingerprint=self._master_key.fingerprint, created_by=self.user)
        self._bootstrap(self.user)
        self._audit.record(
            AuditOperation.DEMO_REBUILT,
            user_id=self.user,
            success=True,
            details={
                "patients": patients,
                "organizations": organizations,
                "seed": seed,
                "sensitiveRecords": summary.sensitive_records,
            },
        )
        return summary


def create_demo_service(
    settings: Settings, *, patients: int, organizations: int, seed: int, user: str | None = None
) -> tuple[MigratorService, demo.DemoSummary]:
    """Build the demo dataset in the configured database and open the service on it."""
    demo.validate_demo_size(patients, organizations)
    user = user or operators.current_os_user()
    if settings.uses_embedded_database:
        _ensure_directory_for(settings)
    engine = create_database_engine(settings.effective_database_url)
    try:
        _refuse_non_demo_database(engine)
        fresh = not _has_tables(engine)
    finally:
        engine.dispose()
    if fresh:
        engine = create_database_engine(settings.effective_database_url)
        try:
            summary = demo.build_demo_database(
                engine, patients=patients, organizations=organizations, seed=seed
            )
        finally:
            engine.dispose()
        return MigratorService.open(settings, user=user), summary
    service = MigratorService.open(settings, user=user)
    try:
        return service, service.rebuild_demo(patients=patients, organizations=organizations, seed=seed)
    except BaseException:
        service.close()
        raise


def _ensure_embedded_demo(settings: Settings) -> None:
    """Create and fill the embedded demo database on first use."""
    path = settings.data_dir / DEMO_DATABASE_FILENAME
    if path.exists():
        return
    _ensure_directory_for(settings)
    engine = create_database_engine(settings.effective_database_url)
    try:
        summary = demo.build_demo_database(engine)
    finally:
        engine.dispose()
    log.info("created the demo database at %s (%d records)", path, summary.sensitive_records)


def _ensure_directory_for(settings: Settings) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)


def _refuse_non_demo_database(engine: Engine) -> None:
    """'demo' drops tables: it must never be able to touch a real deployment's."""
    foreign = sorted(
        name
        for name in sa.inspect(engine).get_table_names()
        if name not in demo.DEMO_TABLE_NAMES and not name.startswith(TABLE_PREFIX)
    )
    if foreign:
        shown = ", ".join(foreign[:5]) + ("…" if len(foreign) > 5 else "")
        raise ConfigError(
            f"The database at {redacted(engine.url)} holds tables that are not part of the demo "
            f"({shown}); 'demo' rebuilds only a demo database.",
            hint="Point --db at an empty or demo database.",
        )


def _has_tables(engine: Engine) -> bool:
    return bool(sa.inspect(engine).get_table_names())


def _check_fingerprint(engine: Engine, master_key: MasterKey, settings: Settings) -> None:
    with engine.connect() as connection:
        stored = read_meta(connection, META_KEY_FINGERPRINT)
    if stored is not None and not hmac.compare_digest(stored, master_key.fingerprint):
        hint = "Use the master key (or key file) this database was set up with. Nothing was changed."
        if settings.uses_embedded_database:
            hint += (
                f" For the demo database you may instead delete {settings.data_dir / DEMO_DATABASE_FILENAME}."
            )
        raise WrongMasterKey(
            f"The master key from {master_key.source} (fingerprint {master_key.fingerprint[:12]}) "
            f"is not the key the database at {redacted(engine.url)} was set up with "
            f"(fingerprint {stored[:12]}).",
            hint=hint,
        )


def _refuse_removing_last_super_admin(connection: sa.Connection, username: str) -> None:
    if operators.count_super_admins(connection) <= 1:
        raise BadInput(
            f"'{username}' is the last super_admin; removing that role would leave nobody able "
            "to migrate, roll back or manage operators.",
            hint="Grant super_admin to another operator first.",
        )


def _sqlite_file(engine: Engine) -> Path | None:
    if engine.dialect.name != "sqlite" or engine.url.database in (None, "", ":memory:"):
        return None
    return Path(engine.url.database)


def _database_bytes(engine: Engine, database_file: Path | None) -> int | None:
    if database_file is not None:
        return database_file.stat().st_size if database_file.exists() else None
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            return int(
                connection.execute(sa.text("SELECT pg_database_size(current_database())")).scalar_one()
            )
    return None


def _parse_status(text: str) -> Status:
    try:
        return Status(text)
    except ValueError:
        raise BadInput(
            f"'{text}' is not a migration status.", hint=f"Use one of: {', '.join(s.value for s in Status)}."
        ) from None


def _driver_message(error: sa.exc.DBAPIError) -> str:
    # The driver's own first line says what failed (refused connection, bad password) and,
    # with hide_parameters, carries no values.
    text = str(error.orig) if error.orig is not None else str(error)
    return text.strip().splitlines()[0] if text.strip() else type(error).__name__
