"""The estimate is made from a calibration measured on this database: every stage the run will
do is timed on a sample, and the estimate is that calibration's arithmetic over the rows in
scope. (How close it lands to a real run is a figure: tests/benchmarks/estimate_accuracy.py.)"""

from __future__ import annotations

import math
import os
from pathlib import Path

from tests.support.databases import make_settings
from tui_migrator.engine import batch_size
from tui_migrator.engine import estimate as estimating
from tui_migrator.engine.plan import Plan
from tui_migrator.service.facade import create_demo_service

# Every stage a migration with backups and verification runs, as the calibration names them (in
# the order the estimate adds them, so the float sum below is the same to the last bit).
STAGES_OF_A_FULL_RUN = ("read", "encrypt", "write", "backupRead", "backup", "backupVerify", "verify")


def test_the_calibration_times_every_stage_the_run_does(tmp_path: Path) -> None:
    service, _ = create_demo_service(
        make_settings(tmp_path), patients=200, organizations=2, seed=3, user="alice"
    )
    with service:
        estimate = service.estimate({"batch_size": 100})
    calibration = estimate.calibration
    assert calibration.sample_rows > 0
    assert set(STAGES_OF_A_FULL_RUN) <= set(calibration.seconds_by_stage)
    assert all(calibration.per_row(stage) > 0 for stage in STAGES_OF_A_FULL_RUN)
    assert calibration.commit_seconds > 0


def test_the_estimate_is_the_calibration_applied_to_the_rows_in_scope(tmp_path: Path) -> None:
    service, _ = create_demo_service(
        make_settings(tmp_path), patients=200, organizations=2, seed=3, user="alice"
    )
    with service:
        estimate = service.estimate({"batch_size": 100})
    calibration, rows = estimate.calibration, estimate.estimated_records
    # SQLite: one writer, so reading and writing add up; the CPU stages are shared by the run's
    # worker processes.
    per_row = sum(calibration.per_row(stage) for stage in STAGES_OF_A_FULL_RUN)
    cpu = sum(calibration.per_row(stage) for stage in STAGES_OF_A_FULL_RUN if stage in estimating.CPU_STAGES)
    per_row -= cpu - cpu / estimating.cpu_parallelism(estimate.config.max_concurrency)
    batches = math.ceil(rows / batch_size.steady(estimate.config, per_row))
    # Three commits a batch with backups.
    expected = rows * per_row + batches * 3 * calibration.commit_seconds + calibration.fixed_seconds
    assert estimate.estimated_time_seconds == round(expected, 1)


def test_worker_processes_share_the_cpu_stages_but_not_one_for_one() -> None:
    assert estimating.cpu_parallelism(1) == 1.0
    cores = os.cpu_count() or 1
    assert estimating.cpu_parallelism(10) == (1.0 if cores < 2 else 1.0 + 0.8 * (min(10, cores) - 1))


def test_on_postgresql_every_stage_overlaps_but_not_one_for_one(tmp_path: Path) -> None:
    """PostgreSQL: the stages' sum per row over the run's overlap (server_parallelism), which
    each worker process after the first raises by half: the cores are shared with the server."""
    assert estimating.server_parallelism(1) == 1.0
    cores = os.cpu_count() or 1
    assert estimating.server_parallelism(10) == (1.0 if cores < 2 else 1.0 + 0.5 * (min(10, cores) - 1))
    service, _ = create_demo_service(
        make_settings(tmp_path), patients=200, organizations=2, seed=3, user="alice"
    )
    with service:
        plan = service.plan({"batch_size": 100, "max_concurrency": 2})
    fixed = estimating.Calibration(
        sample_rows=100,
        seconds_by_stage={stage: 0.01 for stage in STAGES_OF_A_FULL_RUN},
        commit_seconds=0.001,
        fixed_seconds=0.5,
    )
    rows = plan.scope.pending_rows
    per_row = sum(fixed.per_row(stage) for stage in STAGES_OF_A_FULL_RUN)
    per_row /= estimating.server_parallelism(2)
    batches = math.ceil(rows / batch_size.steady(plan.config, per_row))
    expected = rows * per_row + batches * 3 * fixed.commit_seconds + fixed.fixed_seconds
    assert estimating.estimated_seconds(fixed, plan.scope, plan.config, "postgresql") == expected


def test_estimate_is_measured_not_constant(tmp_path: Path) -> None:
    """The calibration reports what it measured, and the estimate is per row: under one and the
    same calibration, more rows in scope give more seconds. (A calibration of fixed figures, so
    nothing here depends on how fast the machine is.)"""
    service, _ = create_demo_service(
        make_settings(tmp_path), patients=200, organizations=2, seed=3, user="alice"
    )
    with service:
        measured = service.estimate({"batch_size": 100}).calibration
        everything = service.plan({"batch_size": 100})
        one_category = service.plan({"batch_size": 100, "data_categories": ["DEMOGRAPHICS"]})
    assert measured.sample_rows > 0 and measured.per_row("encrypt") > 0
    assert everything.scope.pending_rows > one_category.scope.pending_rows > 0
    fixed = estimating.Calibration(
        sample_rows=100,
        seconds_by_stage={stage: 0.01 for stage in STAGES_OF_A_FULL_RUN},
        commit_seconds=0.001,
        fixed_seconds=0.5,
    )

    def seconds(plan: Plan) -> float:
        return estimating.estimated_seconds(fixed, plan.scope, plan.config, "sqlite")

    assert seconds(everything) > seconds(one_category) > fixed.fixed_seconds
