"""The pre-flight checks: what must hold before a migration may write anything.

The estimate shows them; start refuses on the first that fails. Both run the same checks here,
so what the estimate promised is what start enforces.
"""

from __future__ import annotations

from pathlib import Path

from tui_migrator.common.errors import MigratorError, OperationFailed
from tui_migrator.common.models import ResponseModel
from tui_migrator.crypto.canary import canary_round_trips
from tui_migrator.engine import scope
from tui_migrator.engine.estimate import Calibration
from tui_migrator.engine.plan import Plan
from tui_migrator.service.health import MIN_FREE_DISK_FRACTION, measure_disk
from tui_migrator.service.session import Session


class PreflightCheck(ResponseModel):
    check: str
    passed: bool
    detail: str


def preflight_checks(
    session: Session, plan: Plan, calibration: Calibration, database_file: Path | None
) -> list[PreflightCheck]:
    """Keys, organizations, row keys, locks and disk, in that order."""
    return [
        _keys_check(session, plan),
        _organizations_check(plan),
        _row_keys_check(plan),
        _locks_check(plan),
        _disk_check(session, plan, calibration, database_file),
    ]


def refuse_failed_checks(checks: list[PreflightCheck]) -> None:
    for check in checks:
        if not check.passed:
            raise OperationFailed(
                f"Pre-flight check '{check.check}' failed: {check.detail}. Nothing was written."
            )


def _keys_check(session: Session, plan: Plan) -> PreflightCheck:
    """Every stored key unwraps, and each organization in scope that has one round-trips the
    canary; organizations without a key yet get one when the migration starts."""
    in_scope = set(plan.scope.organizations)
    try:
        session.keyring.verify_all()
        cipher = session.value_cipher()
        existing = {info.organization_id for info in session.keyring.describe()}
        for organization in sorted(in_scope & existing):
            if not canary_round_trips(cipher, organization):
                return PreflightCheck(check="keys", passed=False, detail=f"canary failed for {organization}")
    except MigratorError as error:
        return PreflightCheck(check="keys", passed=False, detail=str(error))
    detail = f"master key unwraps every data key; canary passed for {len(existing & in_scope)} organizations"
    new = sorted(in_scope - existing)
    if new:
        detail += f"; keys will be created for {', '.join(new)}"
    return PreflightCheck(check="keys", passed=True, detail=detail)


def _organizations_check(plan: Plan) -> PreflightCheck:
    return _rows_check(
        "organizations",
        scope.rows_without_organization_details(plan.scope),
        passed="every row in scope has an organization",
        fix="set default_organization in the mapping",
    )


def _row_keys_check(plan: Plan) -> PreflightCheck:
    return _rows_check(
        "row-keys",
        scope.rows_without_key_details(plan.scope),
        passed="every row in scope has a whole key",
        fix="give them key values, or map a key that holds no NULL",
    )


def _rows_check(check: str, problems: str | None, *, passed: str, fix: str) -> PreflightCheck:
    """A check of the rows in scope: ``problems`` as the scope words them (None: none)."""
    return PreflightCheck(
        check=check, passed=problems is None, detail=passed if problems is None else f"{problems} ({fix})"
    )


def _locks_check(plan: Plan) -> PreflightCheck:
    # A dry run writes nothing, so another migration's locks do not stop it.
    return PreflightCheck(
        check="locks",
        passed=plan.config.dry_run or not plan.held,
        detail="no other migration holds these tables"
        if not plan.held
        else "; ".join(f"{table} is held by {holder}" for table, holder in sorted(plan.held.items())),
    )


def _disk_check(
    session: Session, plan: Plan, calibration: Calibration, database_file: Path | None
) -> PreflightCheck:
    if database_file is None:
        return PreflightCheck(
            check="disk",
            passed=True,
            detail="backups are written on the database server; check its free space",
        )
    disk = measure_disk(session.settings.data_dir, database_file)
    per_row = calibration.added_bytes / calibration.sample_rows if calibration.sample_rows else 0
    needed = int(per_row * plan.scope.pending_rows)
    return PreflightCheck(
        check="disk",
        passed=disk.free_bytes > needed and disk.free_fraction >= MIN_FREE_DISK_FRACTION,
        detail=f"{disk.free_bytes // 2**20} MiB free ({100 * disk.free_fraction:.0f}%), "
        f"about {needed // 2**20 + 1} MiB needed for tokens, backups and metadata",
    )
