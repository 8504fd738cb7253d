"""The estimate is made from a calibration measured on this database: every stage the run will
do is timed on a sample, and the estimate is that calibration's arithmetic over the rows in
scope. (How close it lands to a real run is a figure: tests/benchmarks/estimate_accuracy.py.)"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support.databases import make_settings
from tests.support.demo_estimates import estimated_demo
from tui_migrator.common.cores import usable_cores
from tui_migrator.common.cpu_turns import CpuTurns
from tui_migrator.engine import batch_size, cpu_pool
from tui_migrator.engine import estimate as estimating
from tui_migrator.engine.plan import Plan
from tui_migrator.engine.scope import MigrationScope
from tui_migrator.service.facade import create_demo_service

# Every stage a migration with backups and verification runs, as the calibration names them (in
# the order the estimate adds them, so the float sum below is the same to the last bit).
STAGES_OF_A_FULL_RUN = ("read", "encrypt", "write", "backupVerify", "verify")


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
    estimate, scope = estimated_demo(tmp_path)
    calibration, rows = estimate.calibration, estimate.estimated_records
    assert calibration.split_tables > 0
    size = batch_size.steady(estimate.config, sum(calibration.per_row(s) for s in STAGES_OF_A_FULL_RUN))
    # Per row over the rows in scope, per batch over the batches of each table (the backups'
    # read-back and verification in windows of 1,000 rows), at the run's speed against its stages.
    stages = sum(
        rows * calibration.per_row(stage)
        + _batches(scope, estimating.WINDOW_ROWS.get(stage, size)) * calibration.per_batch(stage)
        for stage in STAGES_OF_A_FULL_RUN
    )
    speed = estimating.run_speed("sqlite", estimate.config.max_concurrency, rows)
    # Two commits a batch: its writes (its backups among them), then its resume key.
    commits = _batches(scope, size) * 2 * calibration.commit_seconds
    # Too few rows for worker processes: the bytes written are added to the stages (see
    # test_estimate_own_process.py), and each of the three phases samples the rows' sizes.
    writing = estimating.written_seconds(calibration, rows)
    expected = stages / speed + writing + commits + calibration.fixed_seconds
    expected += 3 * calibration.size_sample_seconds
    assert estimate.estimated_time_seconds == round(expected, 1)


def _batches(scope: MigrationScope, size: int) -> int:
    return sum(math.ceil(table.pending_rows / size) for table in scope.tables if table.pending_rows)


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_a_run_without_worker_processes_is_slower_than_its_stages_and_each_worker_adds_less_than_one(
    dialect: str,
) -> None:
    one, per_worker = estimating.RUN_SPEED[dialect]
    assert one < 1.0 and 0 < per_worker < 1.0
    large = cpu_pool.MIGRATION_WORKERS_FROM_ROWS
    assert estimating.run_speed(dialect, 1, large) == one
    cores = usable_cores()
    processes = min(10, cores) if cores > 1 else 0
    assert estimating.run_speed(dialect, 10, large) == one + per_worker * max(0, processes - 1)
    # A run too small for worker processes has none, whatever its concurrency.
    assert estimating.run_speed(dialect, 10, large - 1) == one


def test_on_postgresql_too_each_stage_costs_per_row_and_per_batch_of_each_table(tmp_path: Path) -> None:
    """A calibration of fixed figures (nothing here depends on the machine): a stage's cost per
    batch counts once for each batch the run makes of each table in scope."""
    service, _ = create_demo_service(
        make_settings(tmp_path), patients=200, organizations=2, seed=3, user="alice"
    )
    with service:
        plan = service.plan({"batch_size": 100, "max_concurrency": 2})
    fixed = estimating.Calibration(
        sample_rows=100,
        seconds_by_stage={stage: 0.01 for stage in STAGES_OF_A_FULL_RUN},
        batch_seconds_by_stage={"write": 0.004, "verify": 0.002},
        split_tables=2,
        commit_seconds=0.001,
        fixed_seconds=0.5,
    )
    scope, rows = plan.scope, plan.scope.pending_rows
    assert len([table for table in scope.tables if table.pending_rows]) > 1
    per_row = sum(fixed.per_row(stage) for stage in STAGES_OF_A_FULL_RUN)
    size = batch_size.steady(plan.config, per_row)
    # The write per batch of 100 rows, verification per window of 1,000, each table apart.
    stages = rows * per_row + _batches(scope, size) * 0.002 + _batches(scope, 1000) * 0.001
    expected = (
        stages / estimating.run_speed("postgresql", 2, rows)
        + _batches(scope, size) * 2 * fixed.commit_seconds
        + fixed.fixed_seconds
    )
    assert estimating.estimated_seconds(fixed, scope, plan.config, "postgresql") == pytest.approx(expected)


def test_a_stage_splits_into_its_cost_per_batch_and_per_row() -> None:
    """Batches of one row cost a batch and a row; a stretch of k rows a batch and k rows: the
    two give both parts exactly."""
    per_batch, per_row = 0.005, 0.00004
    singles = [per_batch + per_row] * 3
    stretches = [(400, per_batch + 400 * per_row)] * 3
    assert estimating._split(singles, stretches) == pytest.approx((per_row, per_batch))
    # Without batches of one row, every second counts per row.
    assert estimating._split([], stretches) == pytest.approx((per_row + per_batch / 400, 0.0))


def test_one_preempted_part_moves_neither_figure() -> None:
    per_batch, per_row = 0.005, 0.00004
    singles = [per_batch + per_row, 0.050, per_batch + per_row]
    stretches = [(400, per_batch + 400 * per_row), (400, 0.5), (400, per_batch + 400 * per_row)]
    assert estimating._split(singles, stretches) == pytest.approx((per_row, per_batch))


def test_a_tables_sample_is_timed_as_batches_of_one_row_and_stretches(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each part of the sample runs every stage as one batch: the stages' cost per batch lands
    per batch, not per row (a stand-in times each part as a batch cost plus its rows')."""
    per_batch, per_row = 0.005, 0.00004
    parts: list[int] = []

    def timed_as_a_batch(connection, batches, rows, config, calibration):  # type: ignore[no-untyped-def]
        parts.append(len(rows))
        calibration.seconds_by_stage["write"] = per_batch + per_row * len(rows)
        calibration.sample_rows += len(rows)

    monkeypatch.setattr(estimating, "_run_stages", timed_as_a_batch)
    calibration = estimating.Calibration()
    rows = [object()] * 1203
    timings = estimating.TableTimings()
    estimating._run_stretches(None, None, rows, None, timings, split=True, turns=CpuTurns([]))  # type: ignore[arg-type]
    timings.charge(calibration, len(rows))
    assert parts == [1, 1, 1, 1, 200, 200, 200, 200, 200, 199]
    assert calibration.sample_rows == 1203 and calibration.split_tables == 1
    assert calibration.per_row("write") == pytest.approx(per_row)
    assert calibration.per_batch("write") == pytest.approx(per_batch)


class LabelledTurns(CpuTurns):
    """Turns that only label the parts (CPU 0, 1, 0, ...), moving no thread."""

    def __init__(self) -> None:
        super().__init__([0, 1])
        self.labels: list[int] = []

    @contextmanager
    def next_cpu(self) -> Iterator[int]:
        self.labels.append(len(self.labels) % 2)
        yield self.labels[-1]


def test_a_sample_on_cores_of_unequal_speed_is_charged_as_the_faster_one_timed_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """CPU 0 runs 1.45 times slower than CPU 1 while the sample runs (a virtual machine's cores
    often do, in spells): the parts take turns on both, and every stage is charged as the CPU
    that ran the stretches faster timed it, per row and per batch alike. The sample's spread
    says how far apart they were."""
    per_batch, per_row, slower = 0.005, 0.00004, 1.45
    turns = LabelledTurns()

    def timed_on_its_cpu(connection, batches, rows, config, calibration):  # type: ignore[no-untyped-def]
        factor = slower if turns.labels[-1] == 0 else 1.0
        calibration.seconds_by_stage["encrypt"] = factor * (per_batch + per_row * len(rows))
        calibration.seconds_by_stage["write"] = factor * 2 * (per_batch + per_row * len(rows))
        calibration.sample_rows += len(rows)

    monkeypatch.setattr(estimating, "_run_stages", timed_on_its_cpu)
    calibration, timings = estimating.Calibration(), estimating.TableTimings()
    estimating._run_stretches(None, None, [object()] * 1204, None, timings, split=True, turns=turns)  # type: ignore[arg-type]
    assert turns.labels == [0, 1] * 5  # four batches of one row, six stretches
    assert timings.fastest_cpu() == 1
    timings.charge(calibration, 1204)
    assert calibration.per_row("encrypt") == pytest.approx(per_row)
    assert calibration.per_batch("encrypt") == pytest.approx(per_batch)
    assert calibration.per_row("write") == pytest.approx(2 * per_row)
    assert calibration.cpu_spread == pytest.approx(slower)
    assert calibration.to_json()["cpuSpread"] == 1.45
    assert calibration.sample_rows == 1204


def test_estimate_is_measured_not_constant(tmp_path: Path) -> None:
    """The calibration reports what it measured, and the estimate is per row: under one and the
    same calibration, more rows in scope give more seconds. (A calibration of fixed figures, so
    nothing here depends on how fast the machine is.)"""
    service, _ = create_demo_service(
        make_settings(tmp_path), patients=200, organizations=2, seed=3, user="alice"
    )
    cpus = os.sched_getaffinity(0)
    with service:
        measured = service.estimate({"batch_size": 100}).calibration
        assert os.sched_getaffinity(0) == cpus  # the sample's turns on each CPU are over
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


def test_a_faster_cpu_without_batches_of_one_row_still_charges_a_batchs_cost_per_batch() -> None:
    """On a machine whose CPUs took turns unevenly (a refused CPU, labelled -1), the faster CPU
    may have timed stretches but no batch of one row: the batches of one row of the other CPU
    give the cost per batch, rather than that cost being charged per row."""
    per_batch, per_row = 0.005, 0.00004
    timings = estimating.TableTimings()
    for cpu in (0, 0):
        part = estimating.Calibration(sample_rows=1, seconds_by_stage={"write": 1.45 * (per_batch + per_row)})
        timings.add(cpu, part, single=True)
    for cpu, factor in ((0, 1.45), (-1, 1.0), (0, 1.45), (-1, 1.0)):
        part = estimating.Calibration(
            sample_rows=400, seconds_by_stage={"write": factor * (per_batch + 400 * per_row)}
        )
        timings.add(cpu, part, single=False)
    assert timings.fastest_cpu() == -1
    calibration = estimating.Calibration()
    timings.charge(calibration, 1602)
    # The per-batch figure is CPU 0's (1.45 times), the per-row figure follows from it and CPU -1's.
    assert calibration.per_batch("write") == pytest.approx(
        1.45 * (per_batch + per_row) - calibration.per_row("write")
    )
    assert calibration.per_batch("write") > 0
    assert calibration.per_row("write") < per_row + per_batch / 400
