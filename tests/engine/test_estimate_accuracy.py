"""The estimate is made from a calibration measured on this database: every stage the run will
do is timed on a sample, and the estimate is that calibration's arithmetic over the rows in
scope. (How close it lands to a real run is a figure: tests/benchmarks/estimate_accuracy.py.)"""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest

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
    # Every table's sample ran as a small batch and a large one, so what a batch costs whatever
    # its rows (statements, round trips) is told from what each row adds.
    assert calibration.split_samples == len(service.plan({"batch_size": 100}).scope.tables)
    assert any(calibration.per_batch(stage) > 0 for stage in STAGES_OF_A_FULL_RUN)


def stage_seconds(calibration: estimating.Calibration, plan: Plan, per_row: float) -> dict[str, float]:
    """Each stage's seconds over the plan's rows: per row, and per batch of the run (or window
    of the backup copy and verification), table by table."""
    size = batch_size.steady(plan.config, per_row)

    def batches(rows_per_batch: int) -> int:
        return sum(math.ceil(table.pending_rows / rows_per_batch) for table in plan.scope.tables)

    return {
        stage: plan.scope.pending_rows * calibration.per_row(stage)
        + batches(estimating.WINDOW_ROWS.get(stage, size)) * calibration.per_batch(stage)
        for stage in STAGES_OF_A_FULL_RUN
    }


def run_batches(calibration: estimating.Calibration, plan: Plan) -> int:
    size = batch_size.steady(plan.config, sum(calibration.per_row(stage) for stage in STAGES_OF_A_FULL_RUN))
    return sum(math.ceil(table.pending_rows / size) for table in plan.scope.tables)


def test_the_estimate_is_the_calibration_applied_to_the_rows_in_scope(tmp_path: Path) -> None:
    service, _ = create_demo_service(
        make_settings(tmp_path), patients=200, organizations=2, seed=3, user="alice"
    )
    with service:
        estimate = service.estimate({"batch_size": 100})
        plan = service.plan({"batch_size": 100})
    calibration = estimate.calibration
    # The stages one after another at the run's speed, then what never overlaps: three commits
    # a batch with backups, and the full-table scans.
    seconds = stage_seconds(
        calibration, plan, sum(calibration.per_row(stage) for stage in STAGES_OF_A_FULL_RUN)
    )
    serial = run_batches(calibration, plan) * 3 * calibration.commit_seconds + calibration.fixed_seconds
    expected = sum(seconds.values()) / estimating.run_speed(estimate.config.max_concurrency) + serial
    assert estimate.estimated_time_seconds == round(expected, 1)


def test_a_stage_is_split_into_its_cost_per_batch_and_per_row() -> None:
    # 10 rows in 11 ms, 110 rows in 21 ms: 0.1 ms a row, 10 ms a batch.
    per_row, per_batch = estimating._fitted((10, 0.011), (110, 0.021))
    assert per_row == pytest.approx(1e-4) and per_batch == pytest.approx(0.01)
    # Noise that makes the larger batch the quicker one: all of it per batch, never below zero.
    assert estimating._fitted((10, 0.02), (110, 0.01)) == (0.0, 0.01)
    # A stage whose rows cost more than the line allows at the large batch: all of it per row.
    assert estimating._fitted((10, 0.0), (110, 0.011)) == (pytest.approx(1.1e-4), 0.0)


def test_a_cost_per_batch_counts_once_per_batch_not_per_row(tmp_path: Path) -> None:
    """Half the batch size, twice the batches: the per-batch part of the estimate doubles
    (nearly: the last batch of each table is partial), the per-row part stays."""
    service, _ = create_demo_service(
        make_settings(tmp_path), patients=200, organizations=2, seed=3, user="alice"
    )
    with service:
        large = service.plan({"batch_size": 200})
        small = service.plan({"batch_size": 100})
    only_per_batch = estimating.Calibration(
        sample_rows=100,
        batch_seconds_by_stage={stage: 0.01 for stage in STAGES_OF_A_FULL_RUN},
        split_samples=1,
    )
    only_per_row = estimating.Calibration(
        sample_rows=100, seconds_by_stage={stage: 0.01 for stage in STAGES_OF_A_FULL_RUN}
    )

    def seconds(calibration: estimating.Calibration, plan: Plan) -> float:
        return estimating.estimated_seconds(calibration, plan.scope, plan.config)

    assert seconds(only_per_row, small) == seconds(only_per_row, large)
    batch_stages = ("read", "encrypt", "write")
    assert seconds(only_per_batch, small) > seconds(only_per_batch, large)
    assert seconds(only_per_batch, small) - seconds(only_per_batch, large) == pytest.approx(
        0.01
        * len(batch_stages)
        * (run_batches(only_per_batch, small) - run_batches(only_per_batch, large))
        / estimating.run_speed(small.config.max_concurrency)
    )


def test_the_run_speed_is_measured_per_worker_process_not_one_core_each() -> None:
    """Without worker processes a run goes slower than its calibrated stages one after another
    (its threads share one GIL); each worker process adds less than a core (the run's process
    and, on PostgreSQL, the server share the cores). The figures are measured
    (tests/benchmarks/estimate_accuracy.py prints what each run implies)."""
    cores = os.cpu_count() or 1
    assert estimating.run_speed(1) == estimating.ONE_PROCESS_SPEED < 1
    workers = min(10, cores) if cores > 1 else 0
    assert estimating.run_speed(10) == pytest.approx(
        estimating.ONE_PROCESS_SPEED + estimating.WORKER_PROCESS_SPEED * max(0, workers - 1)
    )
    assert 0 < estimating.WORKER_PROCESS_SPEED < 1


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
        return estimating.estimated_seconds(fixed, plan.scope, plan.config)

    assert seconds(everything) > seconds(one_category) > fixed.fixed_seconds
