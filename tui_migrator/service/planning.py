"""Planning a migration before it runs: validate the configuration, resolve its scope, and
estimate it from a calibration measured on this database. Nothing here writes data."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from pydantic import field_serializer

from tui_migrator.common.migration_config import MigrationConfig, parse_config
from tui_migrator.common.models import ResponseModel
from tui_migrator.crypto.ciphers import ValueCipher
from tui_migrator.crypto.data_keys import ThrowawayKeys
from tui_migrator.engine import estimate as estimating
from tui_migrator.engine import sweep_forecast
from tui_migrator.engine.plan import Plan, plan_migration
from tui_migrator.service import health
from tui_migrator.service.access import authorize, can
from tui_migrator.service.preflight import PreflightCheck, preflight_checks
from tui_migrator.service.report import Recommendations, RiskAssessment, recommendations, risk_assessment
from tui_migrator.service.session import Session
from tui_migrator.service.views import as_minutes
from tui_migrator.storage.database import database_file, database_size_bytes
from tui_migrator.storage.operators import Action


class Estimate(ResponseModel):
    """The seed's estimate response (field order is the JSON's)."""

    estimated_records: int
    estimated_time_minutes: float
    estimated_time_seconds: float
    # With a maintenance window: how many windows the estimated time needs (rounded up); None without.
    estimated_windows: int | None = None
    # A percentage ("93%"), or "n/a" where the database's size is unknown.
    estimated_storage_increase: str
    already_encrypted_records: int
    by_category: dict[str, int]
    by_organization: dict[str, int]
    by_table: dict[str, int]
    recommendations: Recommendations
    risk_assessment: RiskAssessment
    preflight_checks: list[PreflightCheck]
    can_start: bool
    calibration: estimating.Calibration
    config: MigrationConfig
    # The sweep after the migration: on SQLite it runs by itself and holds the write lock.
    sweep: sweep_forecast.SweepForecast

    @field_serializer("calibration")
    def _calibration_json(self, calibration: estimating.Calibration) -> dict[str, Any]:
        # The engine's own summary of what it measured (per-row microseconds by stage).
        return calibration.to_json()

    @field_serializer("config")
    def _config_json(self, config: MigrationConfig) -> dict[str, Any]:
        return config.to_json_data()

    @field_serializer("sweep")
    def _sweep_json(self, sweep: sweep_forecast.SweepForecast) -> dict[str, Any]:
        return sweep.to_json()


def plan(session: Session, config_values: dict[str, Any]) -> Plan:
    """Validate a configuration and resolve its scope, writing nothing."""
    authorize(session, Action.READ, "plan")
    return plan_migration(session.engine, session.mapping(), parse_config(config_values))


def calibrate(
    session: Session, migration_plan: Plan, *, reuse_fresh: bool = False
) -> tuple[estimating.Calibration, float]:
    """A calibration on this database's rows in scope, and the seconds it predicts. With
    ``reuse_fresh`` (a start), the calibration of an estimate of the same scope made in the last
    minutes is used instead of sampling again."""
    key = scope_key(migration_plan)
    calibration = estimating.kept_calibration(session.engine, key) if reuse_fresh else None
    if calibration is None:
        # Estimating writes nothing: the sample is sealed with keys that live only in memory,
        # and only an operator who may change the database keeps what was measured there.
        may_keep = can(session, Action.MIGRATE)
        calibration = estimating.calibrate(
            session.engine,
            migration_plan.scope,
            migration_plan.config,
            ValueCipher(ThrowawayKeys(), session.master_key, actor=session.user),
            session.master_key,
            commit_seconds=estimating.measure_commit_and_keep if may_keep else estimating.kept_commit_seconds,
        )
        if may_keep:
            estimating.keep_calibration(session.engine, key, calibration)
    seconds = estimating.estimated_seconds(
        calibration, migration_plan.scope, migration_plan.config, session.engine.dialect.name
    )
    return calibration, seconds


def scope_key(migration_plan: Plan) -> str:
    """What a calibration was measured for: the tables and organizations sampled and the stages
    timed. (Row counts are not in it: a calibration is per row.)"""
    config = migration_plan.config
    return json.dumps(
        {
            "tables": sorted(table.name for table in migration_plan.scope.tables),
            "organizations": sorted(config.organization_ids),
            "dryRun": config.dry_run,
            "createBackups": config.create_backups,
            "skipIntegrityChecks": config.skip_integrity_checks,
        },
        sort_keys=True,
    )


def windows_needed(config: MigrationConfig, seconds: float) -> int | None:
    """Windows of the configured length the estimated time fills, the last one partly."""
    schedule = config.schedule
    if schedule is None or schedule.window is None:
        return None
    return math.ceil(seconds / schedule.window.length.total_seconds())


def estimate(session: Session, config_values: dict[str, Any]) -> Estimate:
    """The seed's estimate, from a calibration measured on this database, plus pre-flight checks."""
    authorize(session, Action.READ, "estimate")
    migration_plan = plan(session, config_values)
    scope = migration_plan.scope
    calibration, seconds = calibrate(session, migration_plan)
    database_bytes = database_size_bytes(session.engine)
    increase = estimating.storage_increase_percent(calibration, scope, database_bytes)
    database = database_file(session.engine)
    checks = preflight_checks(session, migration_plan, calibration, database)
    rows = scope.pending_rows
    return Estimate(
        estimated_records=rows,
        estimated_time_minutes=as_minutes(seconds),
        estimated_time_seconds=round(seconds, 1),
        estimated_windows=windows_needed(migration_plan.config, seconds),
        estimated_storage_increase="n/a" if increase is None else f"{increase:.0f}%",
        already_encrypted_records=scope.encrypted_rows,
        by_category=scope.by_category,
        by_organization=scope.by_organization,
        by_table={table.name: table.pending_rows for table in scope.tables},
        recommendations=recommendations(rows, session.engine.dialect.name),
        risk_assessment=risk_assessment(rows, calibration, migration_plan, seconds),
        preflight_checks=checks,
        can_start=all(check.passed for check in checks),
        calibration=calibration,
        config=migration_plan.config,
        sweep=_sweep(session, calibration, rows, database, database_bytes, migration_plan.config),
    )


def _sweep(
    session: Session,
    calibration: estimating.Calibration,
    rows: int,
    database: Path | None,
    database_bytes: int | None,
    config: MigrationConfig,
) -> sweep_forecast.SweepForecast:
    """The sweep after this migration: on SQLite, how long its VACUUM will hold the write lock
    (when it completes, or when the operator sweeps one put off), from a probe of this
    machine's sweeping rate (engine/sweep_forecast.py)."""
    if session.engine.dialect.name != "sqlite":
        return sweep_forecast.postgresql_forecast()
    if database is None:
        return sweep_forecast.sqlite_forecast(None, 0, 0, None)
    added = estimating.added_bytes(calibration, rows)
    free = health.measure_disk(session.settings.data_dir, database).free_bytes
    rate = sweep_forecast.probe_sweep_rate(database.parent)
    return sweep_forecast.sqlite_forecast(database_bytes, added, free, rate, put_off=config.sweep_later)
