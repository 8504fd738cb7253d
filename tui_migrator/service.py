"""The one service both faces call. It knows nothing of the CLI or the TUI.

Opening it connects to the database, sets the tool's tables up on first use, and proves the
master key matches the one the database was set up with — before anything else can run.
Every operation checks the operator's role here, in the service, and audits refusals.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tui_migrator import demo, health, operators
from tui_migrator.audit import AuditEntry, AuditTrail, AuditVerification
from tui_migrator.crypto import RowContext, ValueCipher
from tui_migrator.database import create_database_engine, redacted, serialized_write
from tui_migrator.errors import (
    BadInput,
    ConfigError,
    MigratorError,
    PermissionDenied,
    WrongMasterKey,
)
from tui_migrator.keyring import DataKeyInfo, KeyRing
from tui_migrator.keys import MasterKey, load_master_key
from tui_migrator.mapping import (
    BUILTIN_SOURCE,
    ResolvedMapping,
    load_mapping_file,
    parse_mapping,
    resolve_mapping,
)
from tui_migrator.operators import Action, Operator, Role
from tui_migrator.reader import RecordReader
from tui_migrator.settings import DEMO_DATABASE_FILENAME, Settings
from tui_migrator.store import (
    META_KEY_FINGERPRINT,
    TABLE_PREFIX,
    create_tool_tables,
    drop_tool_tables,
    read_meta,
    tool_tables_exist,
    utc_now,
)

log = logging.getLogger(__name__)


class Operation:
    """Audit operation names."""

    INITIALIZED = "tool_initialized"
    PERMISSION_DENIED = "permission_denied"
    OPERATOR_GRANTED = "operator_granted"
    OPERATOR_REVOKED = "operator_revoked"
    AUDIT_VERIFIED = "audit_verified"
    DEMO_REBUILT = "demo_database_rebuilt"


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
                Operation.INITIALIZED,
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
            Operation.PERMISSION_DENIED,
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
                Operation.OPERATOR_GRANTED,
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
                Operation.OPERATOR_REVOKED,
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
                Operation.AUDIT_VERIFIED,
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
            Operation.DEMO_REBUILT,
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


def _driver_message(error: sa.exc.DBAPIError) -> str:
    # The driver's own first line says what failed (refused connection, bad password) and,
    # with hide_parameters, carries no values.
    text = str(error.orig) if error.orig is not None else str(error)
    return text.strip().splitlines()[0] if text.strip() else type(error).__name__
