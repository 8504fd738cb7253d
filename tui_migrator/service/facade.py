"""The one service both faces call. It knows nothing of the CLI or the TUI.

Opening it connects to the database, sets the tool's tables up on first use, and proves the
master key matches the one the database was set up with — before anything else can run.
Every operation checks the operator's role (service/access.py) and audits refusals.

Each method hands its work to the module of its use case; this class only holds the session.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from tui_migrator.common.settings import Settings
from tui_migrator.crypto.ciphers import ValueCipher
from tui_migrator.demo import DemoSummary
from tui_migrator.engine.joiner import JoinSummary
from tui_migrator.engine.plan import Plan
from tui_migrator.engine.retry import RetryPolicy
from tui_migrator.engine.rollback import RollbackResult
from tui_migrator.engine.sweep import SweepResult
from tui_migrator.engine.sweep_sample import DEFAULT_ROWS_PER_TABLE
from tui_migrator.service import (
    access,
    api_tokens,
    control,
    demo_admin,
    evidence,
    inspection,
    key_rotation,
    lifecycle,
    logs,
    master_rotation,
    opening,
    planning,
    sweeping,
    undo,
)
from tui_migrator.service.api_tokens import TokenIdentity, TokenInfo
from tui_migrator.service.evidence import ExportedEvidence
from tui_migrator.service.health import HealthReport, health_report
from tui_migrator.service.inspection import AuditPage
from tui_migrator.service.logs import TAIL_LINES, LogTail
from tui_migrator.service.master_rotation import MasterKeyRotation
from tui_migrator.service.planning import Estimate
from tui_migrator.service.session import Session
from tui_migrator.service.sweeping import SweepStatus
from tui_migrator.storage import operators
from tui_migrator.storage.audit import AuditVerification
from tui_migrator.storage.keyring import DataKeyInfo
from tui_migrator.storage.mapping import ResolvedMapping
from tui_migrator.storage.migration_records import MigrationRecord
from tui_migrator.storage.operators import Action, Operator, Role


class MigratorService:
    """Facade over the core for one operator and one database."""

    def __init__(self, session: Session, *, owns_engine: bool = True) -> None:
        self._session = session
        # A service acting as another operator shares its opener's engine and leaves it open.
        self._owns_engine = owns_engine

    @classmethod
    def open(
        cls, settings: Settings, *, user: str | None = None, may_set_up: bool = False
    ) -> MigratorService:
        """Connect and verify the master key. A database without the tool's tables is refused
        (NotSetUp, nothing written) unless ``may_set_up``: then the tool is set up in it and
        ``user`` becomes its first super_admin (with no database configured, the embedded demo
        database is created and filled)."""
        # Looked up on the module at each call, so tests can stand in for the OS user.
        user = user or operators.current_os_user()
        return cls(opening.open_session(settings, user=user, may_set_up=may_set_up))

    def close(self) -> None:
        if self._owns_engine:
            self._session.engine.dispose()

    def __enter__(self) -> MigratorService:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- the session -------------------------------------------------------------------------

    @property
    def settings(self) -> Settings:
        return self._session.settings

    @property
    def engine(self) -> Engine:
        return self._session.engine

    @property
    def user(self) -> str:
        return self._session.user

    @property
    def retry_policy(self) -> RetryPolicy | None:
        return self._session.retry_policy

    @retry_policy.setter
    def retry_policy(self, policy: RetryPolicy | None) -> None:
        self._session.retry_policy = policy

    @property
    def master_key_fingerprint(self) -> str:
        return self._session.master_key.fingerprint

    @property
    def master_key_source(self) -> str:
        return self._session.master_key.source

    def value_cipher(self) -> ValueCipher:
        """The cipher for sealing and opening values (the engine and the read API use it)."""
        return self._session.value_cipher()

    def mapping(self) -> ResolvedMapping:
        """The schema mapping checked against the live database (cached for this service)."""
        return self._session.mapping()

    # -- identity and roles ------------------------------------------------------------------

    def role(self) -> Role | None:
        return access.role(self._session)

    def can(self, action: Action) -> bool:
        return access.can(self._session, action)

    def denied_reason(self, action: Action) -> str | None:
        """Why ``action`` is not allowed, for a UI to show beside it; None when it is."""
        return access.denied_reason(self._session, action)

    def authorize(self, action: Action, operation: str) -> None:
        """Raise :class:`PermissionDenied` (and audit the refusal) unless allowed."""
        access.authorize(self._session, action, operation)

    def list_operators(self) -> list[Operator]:
        return access.list_operators(self._session)

    def grant(self, username: str, role_name: str) -> Operator:
        return access.grant(self._session, username, role_name)

    def revoke(self, username: str) -> bool:
        return access.revoke(self._session, username)

    # -- API tokens --------------------------------------------------------------------------

    def create_api_token(self, expires_days: int | None = None) -> tuple[str, TokenInfo]:
        """A new API token for this operator: its text, to show once and never again, and what
        may be shown of it later. ``expires_days`` 1-3650, or None for no expiry."""
        return api_tokens.create(self._session, expires_days)

    def list_api_tokens(self) -> list[TokenInfo]:
        """Every operator's tokens for a super_admin; this operator's own for anyone else."""
        return api_tokens.list_tokens(self._session)

    def revoke_api_token(self, token_id: str) -> TokenInfo:
        """Revoke one of this operator's tokens, or (a super_admin) anyone's."""
        return api_tokens.revoke(self._session, token_id)

    def authenticate_api_token(self, bearer_text: str | None) -> TokenIdentity:
        """Who a request's token (or whole ``Bearer <token>`` header value) acts as; raises
        :class:`~tui_migrator.common.errors.Unauthenticated` (audited) otherwise."""
        return api_tokens.authenticate(self._session, bearer_text)

    def acting_as(self, operator: str) -> MigratorService:
        """This service's database, keys and settings acting as ``operator`` (the operator of an
        authenticated API token): its role decides, and every audit entry names it. Closing the
        returned service leaves this one's engine open."""
        operators.check_username(operator)
        return MigratorService(dataclasses.replace(self._session, user=operator), owns_engine=False)

    # -- reading -----------------------------------------------------------------------------

    def audit_entries(self, *, limit: int | None = 50, migration_id: str | None = None) -> AuditPage:
        return inspection.audit_entries(self._session, limit=limit, migration_id=migration_id)

    def verify_audit(self, *, record: bool = True) -> AuditVerification:
        """Recompute the chain. With ``record``, the verification itself is audited after it ran."""
        return inspection.verify_audit(self._session, record=record)

    def restore_audit_triggers(self) -> list[str]:
        """Put tm_audit's append-only triggers back; returns what was wrong with them."""
        return access.restore_audit_triggers(self._session)

    def data_keys(self) -> list[DataKeyInfo]:
        return inspection.data_keys(self._session)

    def rotate_keys(
        self,
        organizations: list[str],
        options: dict[str, Any] | None = None,
        *,
        detach: bool = False,
        on_progress: Callable[[MigrationRecord], None] | None = None,
    ) -> MigrationRecord:
        """A new data key generation for each organization (every one with keys when none is
        named), and the rotation that re-seals their older tokens with it."""
        return key_rotation.rotate(
            self._session, organizations, options or {}, detach=detach, on_progress=on_progress
        )

    def rotate_master_key(self, new_key_file: Path) -> MasterKeyRotation:
        """Re-wrap every data key under the master key in ``new_key_file`` (one transaction)."""
        return master_rotation.rotate_master_key(self._session, new_key_file)

    def health(self) -> HealthReport:
        """Engine, keys, disk and recent activity. Needs no role: it shows no patient data."""
        return health_report(self._session)

    def status(self, migration_id: str) -> MigrationRecord:
        return inspection.status(self._session, migration_id)

    def list_migrations(
        self, *, limit: int | None = 20, status: str | None = None
    ) -> tuple[list[MigrationRecord], list[MigrationRecord]]:
        """Newest first: the page asked for (filtered, limited), and every migration."""
        return inspection.list_migrations(self._session, limit=limit, status=status)

    def failed_records(self, migration_id: str) -> list[dict[str, Any]]:
        return inspection.failed_records(self._session, migration_id)

    def report(self, migration_id: str) -> dict[str, Any]:
        return inspection.report(self._session, migration_id)

    def sweep_status(self, migration_id: str) -> SweepStatus:
        """Whether the plaintext the migration's UPDATEs left in the database files was swept."""
        return sweeping.status_of(self._session, migration_id)

    def export_evidence(self, migration_id: str, directory: Path) -> ExportedEvidence:
        """Write the migration's signed evidence bundle for auditors into ``directory`` (new or
        empty): a read, recorded in the trail only by an operator who may change the database."""
        return evidence.export(self._session, migration_id, directory)

    # -- logs --------------------------------------------------------------------------------

    def worker_log(self, migration_id: str, *, lines: int = TAIL_LINES) -> LogTail:
        """The last lines of the log of the migration's detached workers."""
        return logs.worker_log(self._session, migration_id, lines=lines)

    def error_log(self, *, lines: int = TAIL_LINES) -> LogTail:
        """The last lines of the log of unexpected errors, with their tracebacks."""
        return logs.error_log(self._session, lines=lines)

    def record_error(self, operation: str, error: BaseException) -> Path:
        """Keep an unexpected error's full details in the error log (only this user can read
        it, as they may quote record values); return the log's path."""
        return logs.record_error(self._session, operation, error)

    # -- planning ----------------------------------------------------------------------------

    def plan(self, config_values: dict[str, Any]) -> Plan:
        """Validate a configuration and resolve its scope, writing nothing."""
        return planning.plan(self._session, config_values)

    def estimate(self, config_values: dict[str, Any]) -> Estimate:
        """The seed's estimate, from a calibration measured on this database, plus pre-flight checks."""
        return planning.estimate(self._session, config_values)

    # -- running -----------------------------------------------------------------------------

    def start(
        self,
        config_values: dict[str, Any],
        *,
        detach: bool = False,
        on_progress: Callable[[MigrationRecord], None] | None = None,
    ) -> MigrationRecord:
        """Plan, check and create a migration, then run it here or in a detached worker."""
        return lifecycle.start(self._session, config_values, detach=detach, on_progress=on_progress)

    def run_migration(
        self, migration_id: str, *, on_progress: Callable[[MigrationRecord], None] | None = None
    ) -> MigrationRecord:
        """Run (or resume) a migration in this process until it reaches a final state."""
        return lifecycle.run(self._session, migration_id, on_progress=on_progress)

    def join(
        self,
        migration_id: str,
        *,
        on_batch: Callable[[JoinSummary], None] | None = None,
        leave: threading.Event | None = None,
    ) -> JoinSummary:
        """Take batches of a migration another worker is running, until none are left or
        ``leave`` is set (PostgreSQL)."""
        return lifecycle.join(self._session, migration_id, on_batch=on_batch, leave=leave)

    def resume(
        self,
        migration_id: str,
        *,
        detach: bool = False,
        on_progress: Callable[[MigrationRecord], None] | None = None,
    ) -> MigrationRecord:
        """Continue a cancelled, failed or interrupted migration from its last checkpoint."""
        return lifecycle.resume(self._session, migration_id, detach=detach, on_progress=on_progress)

    # -- controlling -------------------------------------------------------------------------

    def cancel(self, migration_id: str, reason: str, *, wait_seconds: float = 30.0) -> MigrationRecord:
        """Ask the worker to stop after its in-flight batches; wait for it to acknowledge."""
        return control.cancel(self._session, migration_id, reason, wait_seconds=wait_seconds)

    def pause(self, migration_id: str) -> MigrationRecord:
        return control.pause(self._session, migration_id)

    def continue_(self, migration_id: str) -> MigrationRecord:
        return control.continue_(self._session, migration_id)

    # -- undoing -----------------------------------------------------------------------------

    def rollback(
        self, migration_id: str, *, confirm: bool, ticket: str | None = None
    ) -> tuple[MigrationRecord, RollbackResult]:
        """Restore every value the migration encrypted and remove what it added, here."""
        return undo.roll_back(self._session, migration_id, confirm=confirm, ticket=ticket)

    def rollback_in_background(self, migration_id: str, *, confirm: bool) -> MigrationRecord:
        """Check, then roll back in a detached process; the record shows its progress."""
        return undo.roll_back_in_background(self._session, migration_id, confirm=confirm)

    def purge_backups(self, migration_id: str, *, confirm: bool) -> list[str]:
        return undo.purge_backups(self._session, migration_id, confirm=confirm)

    # -- sweeping ----------------------------------------------------------------------------

    def sweep(
        self, migration_id: str, *, confirm: bool, rows_per_table: int = DEFAULT_ROWS_PER_TABLE
    ) -> SweepResult:
        """Remove the plaintext the migration left in the database files, and prove it by
        searching their raw bytes for a sample of it. On PostgreSQL (VACUUM FULL locks each
        table) it needs ``confirm``."""
        return sweeping.sweep(self._session, migration_id, confirm=confirm, rows_per_table=rows_per_table)

    def sweep_in_background(
        self, migration_id: str, *, confirm: bool, rows_per_table: int = DEFAULT_ROWS_PER_TABLE
    ) -> None:
        """Check, then sweep in a detached process; ``sweep_status(...).running`` follows it."""
        sweeping.sweep_in_background(
            self._session, migration_id, confirm=confirm, rows_per_table=rows_per_table
        )

    # -- demo --------------------------------------------------------------------------------

    def rebuild_demo(self, *, patients: int, organizations: int, seed: int) -> DemoSummary:
        """Drop and rebuild the demo data and the tool's tables (refused on a non-demo database)."""
        return demo_admin.rebuild_demo(
            self._session, patients=patients, organizations=organizations, seed=seed
        )


def create_demo_service(
    settings: Settings, *, patients: int, organizations: int, seed: int, user: str | None = None
) -> tuple[MigratorService, DemoSummary]:
    """Build the demo dataset in the configured database and open the service on it.

    A database 'demo' may not replace is refused before it is opened, so the tool's tables are
    never set up in it. An empty one is set up, marked as the demo and filled; a demo one is
    rebuilt (demo_admin)."""
    empty = demo_admin.check_demo_target(settings, patients=patients, organizations=organizations)
    service = MigratorService.open(settings, user=user, may_set_up=True)
    try:
        if empty:
            summary = demo_admin.build_new_demo(
                service._session, patients=patients, organizations=organizations, seed=seed
            )
        else:
            summary = service.rebuild_demo(patients=patients, organizations=organizations, seed=seed)
    except BaseException:
        service.close()
        raise
    return service, summary
