"""What the estimate charges beside the stages' sum: the run's own process's part of the batches
where it is the bottleneck (large rows), the bytes a run writes into the database file, the
size sample each phase takes, and batches no larger than a read of a table's rows holds.

Calibrations of fixed figures here, so nothing depends on how fast the machine is; the
measurements themselves (transfer, the size sample, the write probe) are checked for what they
are, not for their figures. How close the estimate lands on large rows is a figure:
tests/benchmarks/MEASUREMENTS.md (large_rows.py)."""

from __future__ import annotations

import dataclasses
import json
import math
import sqlite3
import threading
from pathlib import Path

import pytest

from tests.support.databases import make_settings
from tests.support.demo_estimates import estimated_demo
from tui_migrator.common.migration_config import MigrationConfig
from tui_migrator.engine import cpu_pool, read_sizes, write_probe
from tui_migrator.engine import estimate as estimating
from tui_migrator.engine.scope import MigrationScope
from tui_migrator.service.facade import create_demo_service
from tui_migrator.storage.column_storage import TableAccess
from tui_migrator.storage.tables import META_LAST_CALIBRATION, write_meta

STAGES = ("read", "encrypt", "write", "backupVerify", "verify")
ROWS_PER_TABLE = 50_000


@pytest.fixture
def plan_parts(tmp_path: Path) -> tuple[MigrationScope, MigrationConfig]:
    """The demo's scope with every table's pending rows made many (enough for worker
    processes), and a configuration of batches of 1,000 at concurrency 4."""
    service, _ = create_demo_service(
        make_settings(tmp_path), patients=60, organizations=2, seed=3, user="alice"
    )
    with service:
        plan = service.plan({"batch_size": 1000, "max_concurrency": 4})
    tables = tuple(dataclasses.replace(table, pending_rows=ROWS_PER_TABLE) for table in plan.scope.tables[:2])
    return MigrationScope(tables), plan.config


@pytest.fixture
def two_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two cores for the run, whatever this machine has: two worker processes at concurrency 4."""
    monkeypatch.setattr(cpu_pool, "usable_cores", lambda: 2)


def calibration(per_row: dict[str, float], **figures: object) -> estimating.Calibration:
    return estimating.Calibration(
        sample_rows=100,
        seconds_by_stage={stage: seconds * 100 for stage, seconds in per_row.items()},
        commit_seconds=0.001,
        **figures,  # type: ignore[arg-type]
    )


def stages_alone(fixed: estimating.Calibration, rows: int, batches: int, config: MigrationConfig) -> float:
    """The estimate as it was before the run's own process was charged apart: each stage's
    rows at the run's speed, two commits a batch, the fixed scans."""
    speed = estimating.run_speed("sqlite", config.max_concurrency, rows)
    return (
        sum(rows * fixed.per_row(stage) for stage in STAGES) / speed
        + batches * 2 * fixed.commit_seconds
        + fixed.fixed_seconds
    )


def test_rows_of_ordinary_size_are_estimated_from_the_stages_alone(
    plan_parts: tuple[MigrationScope, MigrationConfig], two_cores: None
) -> None:
    """Sealing outweighs what the run's own process does: the worker processes are the
    bottleneck, and the estimate is the stages' sum at the run's speed, as before."""
    scope, config = plan_parts
    fixed = calibration(
        {
            "read": 2e-6,
            "encrypt": 40e-6,
            "write": 9e-6,
            "backupVerify": 2e-6,
            "verify": 12e-6,
            "transfer": 4e-6,
        }
    )
    rows = scope.pending_rows
    batches = len(scope.tables) * math.ceil(ROWS_PER_TABLE / 1000)
    assert estimating.estimated_seconds(fixed, scope, config, "sqlite") == pytest.approx(
        stages_alone(fixed, rows, batches, config)
    )


def test_where_the_runs_own_process_is_the_bottleneck_the_batches_take_its_time(
    plan_parts: tuple[MigrationScope, MigrationConfig], two_cores: None
) -> None:
    """Large rows: reading, writing and moving each batch to a worker process and back take the
    run's own process longer than the batches' stages take side by side. The batches take what
    its part takes, at the speed of a run without worker processes, and the bytes it writes."""
    scope, config = plan_parts
    per_row = {"read": 130e-6, "encrypt": 960e-6, "write": 550e-6, "backupVerify": 190e-6, "verify": 310e-6}
    fixed = calibration(
        {**per_row, "transfer": 530e-6}, written_bytes=100 * 480_000, written_byte_seconds=2e-9
    )
    rows = scope.pending_rows
    one, _ = estimating.RUN_SPEED["sqlite"]
    speed = estimating.run_speed("sqlite", config.max_concurrency, rows)
    side_by_side = rows * (per_row["read"] + per_row["encrypt"] + per_row["write"]) / speed
    own = rows * (per_row["read"] + per_row["write"] + 530e-6) / one + rows * 480_000 * 2e-9
    assert own > side_by_side
    batches = len(scope.tables) * math.ceil(ROWS_PER_TABLE / 1000)
    expected = stages_alone(fixed, rows, batches, config) + own - side_by_side
    assert estimating.estimated_seconds(fixed, scope, config, "sqlite") == pytest.approx(expected)


def test_on_postgresql_the_runs_own_process_is_charged_the_transfer_alone(
    plan_parts: tuple[MigrationScope, MigrationConfig], two_cores: None
) -> None:
    """The server reads and writes in processes of its own, several batches at once: those
    stages are no part of the run's own process's share, however long they take."""
    scope, config = plan_parts
    per_row = {"read": 240e-6, "encrypt": 980e-6, "write": 8e-3, "backupVerify": 850e-6, "verify": 600e-6}
    rows = scope.pending_rows
    one, _ = estimating.RUN_SPEED["postgresql"]
    speed = estimating.run_speed("postgresql", config.max_concurrency, rows)
    batches = len(scope.tables) * math.ceil(ROWS_PER_TABLE / 1000)

    def estimated(transfer: float) -> float:
        fixed = calibration({**per_row, "transfer": transfer})
        return estimating.estimated_seconds(fixed, scope, config, "postgresql")

    side_by_side = rows * (per_row["read"] + per_row["encrypt"] + per_row["write"]) / speed
    alone = sum(rows * seconds for seconds in per_row.values()) / speed + batches * 2 * 0.001
    # Reading and writing alone would outweigh the stages side by side; they are not charged.
    assert rows * (per_row["read"] + per_row["write"]) / one > side_by_side
    assert estimated(600e-6) == pytest.approx(alone)
    # A transfer that outweighs them is.
    assert estimated(12e-3) == pytest.approx(alone + rows * 12e-3 / one - side_by_side)


def test_without_worker_processes_the_bytes_written_are_added_to_the_stages(
    plan_parts: tuple[MigrationScope, MigrationConfig],
) -> None:
    scope, config = plan_parts
    config = config.model_copy(update={"max_concurrency": 1})
    per_row = {stage: 20e-6 for stage in STAGES}
    written = calibration(per_row, written_bytes=100 * 1_000, written_byte_seconds=3e-9)
    unmeasured = calibration(per_row)
    rows = scope.pending_rows
    difference = estimating.estimated_seconds(
        written, scope, config, "sqlite"
    ) - estimating.estimated_seconds(unmeasured, scope, config, "sqlite")
    assert difference == pytest.approx(rows * 1_000 * 3e-9)
    # A dry run writes nothing.
    dry = config.model_copy(update={"dry_run": True})
    assert estimating.estimated_seconds(written, scope, dry, "sqlite") == pytest.approx(
        estimating.estimated_seconds(unmeasured, scope, dry, "sqlite")
    )


def test_a_tables_batches_hold_no_more_rows_than_a_read_of_them_holds(
    plan_parts: tuple[MigrationScope, MigrationConfig],
) -> None:
    """Rows of 200 KiB are read 40 at a time (engine/read_sizes.py), so a run of batches of
    1,000 makes batches of 40 of that table, each with its two commits."""
    scope, config = plan_parts
    config = config.model_copy(update={"max_concurrency": 1})
    large, ordinary = scope.tables[0].name, scope.tables[1].name
    capped = read_sizes.rows_within(200 * 1024, 1000)
    assert capped == 40
    per_row = {stage: 0.0 for stage in STAGES}
    fixed = calibration(per_row, largest_row_bytes={large: 200 * 1024, ordinary: 300})
    batches = math.ceil(ROWS_PER_TABLE / capped) + math.ceil(ROWS_PER_TABLE / 1000)
    assert estimating.estimated_seconds(fixed, scope, config, "sqlite") == pytest.approx(
        batches * 2 * fixed.commit_seconds
    )


@pytest.mark.parametrize(
    ("options", "phases"),
    [
        ({}, 3),  # the batches, the backups' read-back, verification
        ({"create_backups": False}, 2),
        ({"skip_integrity_checks": True}, 2),
        ({"create_backups": False, "skip_integrity_checks": True}, 1),
        ({"dry_run": True}, 1),
    ],
)
def test_each_phase_that_reads_the_tables_pays_their_size_sample(
    plan_parts: tuple[MigrationScope, MigrationConfig], options: dict[str, bool], phases: int
) -> None:
    scope, config = plan_parts
    config = config.model_copy(update={"max_concurrency": 1, **options})
    per_row = {stage: 0.0 for stage in STAGES}
    sampled = calibration(per_row, size_sample_seconds=0.25)
    unsampled = calibration(per_row)
    difference = estimating.estimated_seconds(
        sampled, scope, config, "sqlite"
    ) - estimating.estimated_seconds(unsampled, scope, config, "sqlite")
    assert difference == pytest.approx(phases * 0.25)


TRANSFER_PER_ROW = 7e-6
PROBE_SECONDS_PER_BYTE = 3e-9


def test_the_calibration_measures_the_transfer_the_size_sample_and_the_bytes_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What each new measurement is taken of, and where its figure goes: the transfer of every
    part of the sample (its rows out, its sealed rows back without the rows they came from), one
    size sample per table sampled, and the write probe in the database's directory with the
    values and bytes the sample wrote. (Fixed figures stand in for the timings.)"""
    moved: list[tuple[int, int]] = []
    sized: list[str] = []
    probed: list[tuple[Path, int, int]] = []
    largest = read_sizes.largest_row_bytes

    def transfer(
        arguments: list[dict[str, object]], result: tuple[list[dict[str, object]], list[object]]
    ) -> float:
        sealed, _failures = result
        assert all("row" not in item for item in sealed)  # the worker sends no row back
        moved.append((len(arguments), len(sealed)))
        return TRANSFER_PER_ROW * len(arguments)

    def size_sample(engine: object, access: TableAccess) -> int:
        sized.append(access.mapped.name)
        return largest(engine, access)  # type: ignore[arg-type]

    def probe(directory: Path, values: int, value_bytes: int) -> float:
        probed.append((directory, values, value_bytes))
        return PROBE_SECONDS_PER_BYTE

    monkeypatch.setattr(cpu_pool, "transfer_seconds", transfer)
    monkeypatch.setattr(read_sizes, "largest_row_bytes", size_sample)
    monkeypatch.setattr(write_probe, "seconds_per_byte", probe)
    estimate, scope = estimated_demo(tmp_path)
    measured = estimate.calibration
    # Every part of every table's sample was moved, warm-up included, each row sealed.
    assert moved and all(rows == sealed for rows, sealed in moved)
    assert measured.per_row("transfer") == pytest.approx(TRANSFER_PER_ROW)
    # One size sample per table sampled, its largest row kept by the table's name.
    assert sorted(sized) == sorted(measured.largest_row_bytes)
    assert set(sized) <= {table.name for table in scope.tables}
    assert all(size > 0 for size in measured.largest_row_bytes.values())
    # Each sampled row's tokens (one value per mapped column), its metadata and its backup,
    # probed once, beside the database.
    assert measured.written_values > 2 * measured.sample_rows
    assert measured.written_bytes > measured.added_bytes > 0
    # The demo's database is tmp_path/parkml.db (make_settings).
    assert probed == [(tmp_path, measured.written_values, measured.written_bytes)]
    assert measured.written_byte_seconds == PROBE_SECONDS_PER_BYTE
    shown = measured.to_json()
    assert shown["writtenByteNanoseconds"] == pytest.approx(3.0)
    assert shown["microsecondsPerRow"]["transfer"] == pytest.approx(7.0)


def test_a_calibration_kept_by_an_earlier_version_is_still_read(tmp_path: Path) -> None:
    """One kept without the figures added since (a start within minutes of an estimate made
    before an upgrade): read with those figures at nought, not refused."""
    service, _ = create_demo_service(
        make_settings(tmp_path), patients=40, organizations=1, seed=3, user="alice"
    )
    with service:
        engine = service.engine
        earlier = dataclasses.asdict(calibration({stage: 1e-5 for stage in STAGES}))
        for added in (
            "size_sample_seconds",
            "largest_row_bytes",
            "written_values",
            "written_bytes",
            "written_byte_seconds",
        ):
            del earlier[added]
        kept = {
            "commitSeconds": 0.001,
            "at": estimating.utc_now().isoformat(),
            "scope": "s",
            "calibration": earlier,
        }
        with engine.begin() as connection:
            write_meta(connection, META_LAST_CALIBRATION, json.dumps(kept))
        read = estimating.kept_calibration(engine, "s")
    assert read is not None and read.per_row("encrypt") == pytest.approx(1e-5)
    assert read.written_byte_seconds == 0.0 and read.largest_row_bytes == {}


def test_the_transfer_is_timed_on_a_pipe_that_is_closed_afterwards() -> None:
    threads = threading.active_count()
    rows = [{"id": number, "notes": "x" * 1000} for number in range(50)]
    cpu_pool.transfer_seconds(rows, ([{"tokens": {"notes": "y" * 1400}}] * 50, []))
    assert threading.active_count() == threads


def test_the_write_probe_writes_as_a_run_and_as_the_sample_and_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Values of the sample's average size, as many as it wrote up to the probe's caps, each
    pass taken PROBE_PASSES times: into a temporary table rolled back, as the sample writes, and
    into the file's table committed, as a run writes; its folder removed afterwards."""
    passes: list[tuple[str, int, int, bool]] = []
    measured_pass = write_probe._pass

    def noted(connection: sqlite3.Connection, table: str, rows: list[tuple[bytes]], *, commit: bool) -> float:
        passes.append((table, len(rows), len(rows[0][0]), commit))
        return measured_pass(connection, table, rows, commit=commit)

    monkeypatch.setattr(write_probe, "_pass", noted)
    write_probe.seconds_per_byte(tmp_path, values=200, value_bytes=200 * 500)
    shadow, file = ("probe_shadow", 200, 500, False), ("probe", 200, 500, True)
    assert passes == [shadow] * write_probe.PROBE_PASSES + [file] * write_probe.PROBE_PASSES
    assert list(tmp_path.iterdir()) == []
    # Large values: as many as fit PROBE_BYTES; many small ones: PROBE_VALUES of them.
    passes.clear()
    write_probe.seconds_per_byte(tmp_path, values=100, value_bytes=100 * 400_000)
    assert {count for _table, count, _size, _commit in passes} == {write_probe.PROBE_BYTES // 400_000}
    passes.clear()
    write_probe.seconds_per_byte(tmp_path, values=50_000, value_bytes=50_000 * 100)
    assert {count for _table, count, _size, _commit in passes} == {write_probe.PROBE_VALUES}
    # Nothing written, nothing to measure.
    assert write_probe.seconds_per_byte(tmp_path, values=0, value_bytes=0) == 0.0


def test_the_write_probe_is_made_in_the_temporary_directory_where_the_databases_is_gone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    places: list[Path] = []
    measured = write_probe._measured

    def noted(directory: Path, rows: list[tuple[bytes]], written: int) -> float:
        places.append(directory)
        return measured(directory, rows, written)

    monkeypatch.setattr(write_probe, "_measured", noted)
    gone = tmp_path / "gone"
    write_probe.seconds_per_byte(gone, values=10, value_bytes=10 * 100)
    assert places[0] == gone and len(places) == 2 and places[1] != gone


def test_a_transfer_that_fails_leaves_no_thread_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where sending fails (a value that cannot be pickled), the other end is not left waiting
    for it: the error comes out and no thread is left behind."""
    threads = threading.active_count()
    with pytest.raises(TypeError):
        cpu_pool.transfer_seconds([threading.Lock()], ([], []))
    assert threading.active_count() == threads
