"""Estimate from a measured calibration, not from constants.

A sample of the rows in scope goes through the real code path — read, seal backups, seal values,
guarded UPDATE, row metadata, read back and verify — writing only to temporary tables that shadow
the real ones (calibration_shadow.py), inside a transaction that is rolled back: nothing is kept,
and nothing but the sampled rows' reads touches the real tables. Each table's sample runs as a
few batches of one row and a few stretches of the rest, so each stage's time splits into what a
batch costs whatever its rows and what each row adds, medians against a busy machine (_split).
Scaled up — per row over the rows in scope, per batch over the run's batches — and set against
how much faster a run goes than its stages one after another (run_speed), plus the measured cost
of a commit, that is the estimate. Storage growth comes from the measured size of the tokens,
backups and metadata."""

from __future__ import annotations

import dataclasses
import json
import math
import statistics
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tui_migrator.common.cpu_turns import CpuTurns, fastest, spread
from tui_migrator.common.errors import OperationFailed
from tui_migrator.common.migration_config import MigrationConfig
from tui_migrator.common.uncontended_clock import uncontended_seconds
from tui_migrator.crypto.ciphers import ValueCipher
from tui_migrator.crypto.codec import encode_key
from tui_migrator.crypto.keys import MasterKey
from tui_migrator.engine import (
    backup,
    batch_size,
    calibration_shadow,
    cpu_pool,
    read_sizes,
    verification,
    write_probe,
)
from tui_migrator.engine.batches import RowsChanged, TableBatches
from tui_migrator.engine.collection_pace import paced
from tui_migrator.engine.scope import MigrationScope, TableScope, pending_count
from tui_migrator.storage.column_storage import ROW_VERSION, TableAccess, key_of
from tui_migrator.storage.database import database_file, serialized_write
from tui_migrator.storage.tables import (
    META_LAST_CALIBRATION,
    read_meta,
    row_metadata_table,
    utc_now,
    write_meta,
)

T = TypeVar("T")

SAMPLE_ROWS = 1200
MIN_SAMPLE_PER_TABLE = 40
# A table's sample is at most one row in SAMPLED_SHARE of its rows (never fewer than
# SMALLEST_SAMPLE): a sample of 40 rows of a table of 60 cost about what migrating the table does,
# and a start paid it before every small migration. From 12,000 rows in scope the sample is
# SAMPLE_ROWS as before, less only where a table has fewer than 400 rows; a smaller scope's
# estimate is a short run's, less precise in a second that matters to no one.
SAMPLED_SHARE = 10
SMALLEST_SAMPLE = 10
# Rows run through each stage untimed first, so statement compilation and cold caches are not
# charged to the sample as if every row paid them.
WARM_UP_ROWS = 10
# A table's sample is timed in up to this many stretches of at least MIN_STRETCH_ROWS, taking
# turns on the CPUs (common/cpu_turns.py), and each stage is charged the median of their costs
# per row on the CPU that ran them fastest (TableTimings). A stage of the whole sample lasts a
# few tens of milliseconds: one preemption by another process (or the server's checkpoint) put
# it a half long, and the estimate of the same table a third (2026-12-05: 9.1-14.2 s, twelve
# estimates of the peers benchmark's table on PostgreSQL). Six: three on each of two CPUs.
TIMED_STRETCHES = 6
MIN_STRETCH_ROWS = 100
# Before its stretches, a table's sample runs this many batches of one row each: their median
# is what a batch costs whatever its rows (its statements' round trips and planning, 5 ms on
# PostgreSQL), which the run pays once per batch of 1,000 rows and a stretch of 100 once per
# 100 (see _split). Only where the sample leaves a stretch of SPLIT_STRETCH_ROWS after them.
# Four: two on each of two CPUs.
ONE_ROW_BATCHES = 4
SPLIT_STRETCH_ROWS = 30
# The reads of a table's whole sample timed as its stretches (two on each of two CPUs): reading is
# a few microseconds a row, and each read more is paid by every start of a table of many.
WHOLE_READS = 4
CALIBRATION_MIGRATION_ID = "calibration"
CALIBRATION_BACKUP_TABLE = "tm_bk_calibration"
# A run's speed against its stages one after another (see run_speed): without worker
# processes, and what each worker process adds.
RUN_SPEED = {"sqlite": (0.74, 0.65), "postgresql": (0.85, 0.31)}
# The stages that go in windows of keys of a fixed size rather than in the run's batches.
WINDOW_ROWS = {
    "backupVerify": backup.READ_BACK_ROWS,
    "verify": verification.BATCH,
}
# How long a kept calibration stands for a start of the same scope (see kept_calibration).
FRESH_SECONDS = 15 * 60
# Bytes a row-metadata row takes beyond the text it holds (the time, the algorithm, record and
# index overhead); its text (key, key id, digest, sealed cells) is measured per sampled row.
ROW_METADATA_OVERHEAD_BYTES = 60


@dataclass
class Calibration:
    sample_rows: int = 0
    # What each stage costs per row, times the rows sampled (see per_row).
    seconds_by_stage: dict[str, float] = field(default_factory=dict)
    # What each stage costs per batch whatever its rows, summed over the tables whose sample
    # measured it (split_tables; see per_batch).
    batch_seconds_by_stage: dict[str, float] = field(default_factory=dict)
    split_tables: int = 0
    commit_seconds: float = 0.0
    # How many times slower the slowest CPU ran a table's stretches than the fastest (the
    # largest over the tables; 1.0 where the sample did not take turns): what the sample saw of
    # cores that are not equally fast (common/cpu_turns.py).
    cpu_spread: float = 1.0
    # Work whose cost depends on table sizes rather than on the rows migrated (full scans).
    fixed_seconds: float = 0.0
    # The sample of the sizes of each table's rows at its two ends, which each phase of a run
    # that reads a table takes before its first read (engine/read_sizes.py), summed over the
    # tables; and the largest row it found in each table (by name), which caps the rows of a
    # batch or window of a table whose rows are large.
    size_sample_seconds: float = 0.0
    largest_row_bytes: dict[str, int] = field(default_factory=dict)
    # SQLite: the values the sample wrote (tokens, backups, row metadata) and their bytes, and
    # what each such byte costs a run beyond what the sample's writes were timed at
    # (engine/write_probe.py; 0.0 where not measured).
    written_values: int = 0
    written_bytes: int = 0
    written_byte_seconds: float = 0.0
    original_bytes: int = 0
    added_bytes: int = 0

    def per_row(self, stage: str) -> float:
        return self.seconds_by_stage.get(stage, 0.0) / self.sample_rows if self.sample_rows else 0.0

    def add(self, stage: str, measured: tuple[float, float], rows: int) -> None:
        """Count a stage measured on one table's sample of ``rows``: (per row, per batch)."""
        per_row, per_batch = measured
        self.seconds_by_stage[stage] = self.seconds_by_stage.get(stage, 0.0) + per_row * rows
        if per_batch:
            self.batch_seconds_by_stage[stage] = self.batch_seconds_by_stage.get(stage, 0.0) + per_batch

    def per_batch(self, stage: str) -> float:
        if not self.split_tables:
            return 0.0
        return self.batch_seconds_by_stage.get(stage, 0.0) / self.split_tables

    def to_json(self) -> dict[str, Any]:
        return {
            "sampleRows": self.sample_rows,
            "microsecondsPerRow": {k: round(1e6 * self.per_row(k), 1) for k in sorted(self.seconds_by_stage)},
            "millisecondsPerBatch": {
                k: round(1e3 * self.per_batch(k), 3) for k in sorted(self.batch_seconds_by_stage)
            },
            "commitMilliseconds": round(1e3 * self.commit_seconds, 3),
            "cpuSpread": round(self.cpu_spread, 2),
            "tableScanSeconds": round(self.fixed_seconds, 3),
            "sizeSampleSeconds": round(self.size_sample_seconds, 3),
            "writtenByteNanoseconds": round(1e9 * self.written_byte_seconds, 3),
        }


@paced
def calibrate(
    engine: Engine,
    scope: MigrationScope,
    config: MigrationConfig,
    cipher: ValueCipher,
    master_key: MasterKey,
    *,
    commit_seconds: Callable[[Engine], float],
) -> Calibration:
    """Run the sample through the migration's own code, writing only to temporary tables, and
    roll everything back. ``cipher`` should seal with throwaway keys (estimating creates none);
    ``commit_seconds`` measures or recalls the cost of a commit."""
    calibration = Calibration()
    total = scope.pending_rows
    if total == 0:
        return calibration
    cipher.prepare(scope.organizations)
    turns = CpuTurns()
    for table, sample in tables_to_sample(scope.tables, total):
        try:
            _calibrate_table(
                engine,
                table,
                sample,
                config,
                cipher,
                master_key,
                calibration,
                turns,
            )
        except RowsChanged:
            # The sample is written in a transaction that is rolled back; a row the application
            # changed in between makes the guarded write miss it, and the timing would be wrong.
            raise OperationFailed(
                f"The application changed rows of {table.access.mapped.name} while the estimate was "
                "sampling them; nothing was written.",
                hint="Run the estimate again (or start again): a fresh sample is taken.",
            ) from None
    calibration.commit_seconds = commit_seconds(engine)
    database = database_file(engine)
    if database is not None:
        calibration.written_byte_seconds = write_probe.seconds_per_byte(
            database.parent, calibration.written_values, calibration.written_bytes
        )
    return calibration


def tables_to_sample(tables: Sequence[TableScope], scope_rows: int) -> list[tuple[TableScope, int]]:
    """The tables the sample runs, each with its sample size (sample_size). Every table whose
    sample would hold MIN_SAMPLE_PER_TABLE rows is sampled; of the smaller ones (under 400 rows),
    only the largest until the sample holds MIN_SAMPLE_PER_TABLE rows. Each table sampled costs
    30-50 ms whatever its rows (its shadow's DDL, its statements compiled): sampling all nine
    tables of a demo of 531 rows (25-113 each) made its estimate cost about what migrating them
    does; four of them are sampled now. The tables left out are charged at the sampled rows'
    average cost, as every row of the scope is."""
    sampled: list[tuple[TableScope, int]] = []
    small: list[tuple[TableScope, int]] = []
    for table in tables:
        if table.pending_rows:
            sample = sample_size(table.pending_rows, scope_rows)
            (sampled if sample >= MIN_SAMPLE_PER_TABLE else small).append((table, sample))
    rows = sum(sample for _, sample in sampled)
    for table, sample in sorted(small, key=lambda pair: -pair[0].pending_rows):
        if rows >= MIN_SAMPLE_PER_TABLE:
            break
        sampled.append((table, sample))
        rows += sample
    return sampled


def sample_size(table_rows: int, scope_rows: int) -> int:
    """How many of a table's ``table_rows`` pending rows its sample runs, in a scope of
    ``scope_rows``: its share of SAMPLE_ROWS, at least MIN_SAMPLE_PER_TABLE, at most one row in
    SAMPLED_SHARE of the table (not below SMALLEST_SAMPLE), and never more than it has."""
    share = max(MIN_SAMPLE_PER_TABLE, math.ceil(SAMPLE_ROWS * table_rows / scope_rows))
    return min(share, max(SMALLEST_SAMPLE, math.ceil(table_rows / SAMPLED_SHARE)), table_rows)


def _calibrate_table(
    engine: Engine,
    table: TableScope,
    sample: int,
    config: MigrationConfig,
    cipher: ValueCipher,
    master_key: MasterKey,
    calibration: Calibration,
    turns: CpuTurns,
) -> None:
    """Reads are timed on the real table; every write goes to the temporary shadow tables of
    calibration_shadow.py, and the transaction is rolled back: estimating locks nothing but the
    rows it reads and writes nothing."""
    with engine.connect() as connection:
        transaction = connection.begin()
        try:
            backup_table = None
            if config.create_backups:
                backup_table = backup.backup_table(table.access, CALIBRATION_BACKUP_TABLE)
                calibration_shadow.create_temporary(connection, backup_table)
            batches = _calibration_batches(engine, table.access, table, cipher, master_key, backup_table)
            # Read whole, as a batch is: fewer rows where they are large (engine/read_sizes.py),
            # which each of the run's phases measures as it begins, as timed here.
            started = uncontended_seconds()
            largest = read_sizes.largest_row_bytes(engine, table.access)
            calibration.size_sample_seconds += uncontended_seconds() - started
            calibration.largest_row_bytes[table.access.mapped.name] = largest
            most = read_sizes.rows_for_largest(engine, table.access, largest, sample + WARM_UP_ROWS)
            warm_up = WARM_UP_ROWS if min(sample, most - WARM_UP_ROWS) > 2 * WARM_UP_ROWS else 0
            limit = min(sample + warm_up, most)
            rows = list(connection.execute(*batches.pending_read(after=None, limit=limit)).mappings())
            timed = len(rows) - warm_up
            if timed <= 0:
                return  # the application emptied the table meanwhile: nothing to time
            split = timed >= ONE_ROW_BATCHES + SPLIT_STRETCH_ROWS
            # As the batches read (with each row's backup, where the migration keeps them).
            timings = TableTimings()
            for _ in range(ONE_ROW_BATCHES if split else 0):
                timings.singles["read"].append(_timed_read(connection, batches, 1, turns))
            for _ in range(WHOLE_READS):
                cpu, seconds = _timed_read(connection, batches, len(rows), turns)
                timings.stretches["read"].append((cpu, (len(rows), seconds)))
            # Scans whose cost grows with the table, not the sample: the engine looks for rows
            # still holding plaintext once after encrypting a table (a count, or a catch-up
            # pass that finds none) and counts them once when verifying it.
            started = uncontended_seconds()
            connection.execute(pending_count(table.access, table.organizations)).scalar_one()
            calibration.fixed_seconds += 2 * (uncontended_seconds() - started)
            # From here the table's name finds the shadow: the sample, with its companions.
            shadow = calibration_shadow.shadow(connection, table.access, rows)
            if backup_table is not None:
                backup_table = backup.backup_table(shadow, CALIBRATION_BACKUP_TABLE)
            batches = _calibration_batches(engine, shadow, table, cipher, master_key, backup_table)
            if warm_up:
                _run_stages(connection, batches, rows[:warm_up], config, Calibration())
            _run_stretches(connection, batches, rows[warm_up:], config, timings, split=split, turns=turns)
            timings.charge(calibration, timed)
        finally:
            transaction.rollback()


def _calibration_batches(
    engine: Engine,
    access: TableAccess,
    table: TableScope,
    cipher: ValueCipher,
    master_key: MasterKey,
    backup_table: sa.Table | None,
) -> TableBatches:
    """The table's batches as the migration would run them, under a migration id of their own
    (every write is rolled back) and the default retry policy."""
    return TableBatches(
        engine,
        access,
        migration_id=CALIBRATION_MIGRATION_ID,
        organizations=table.organizations,
        cipher=cipher,
        master_key=master_key,
        backup_table=backup_table,
        dry_run=False,
        epoch=None,
    )


def _run_stretches(
    connection: sa.Connection,
    batches: TableBatches,
    rows: list[Any],
    config: MigrationConfig,
    timings: TableTimings,
    *,
    split: bool,
    turns: CpuTurns,
) -> None:
    """``rows`` through every stage: first, where ``split``, as batches of one row
    (ONE_ROW_BATCHES), then in stretches (TIMED_STRETCHES), each part on the next CPU of
    ``turns``; what each part timed goes to ``timings``."""
    ones = ONE_ROW_BATCHES if split else 0
    for row in rows[:ones]:
        cpu, part = _timed_stages(connection, batches, [row], config, turns)
        timings.add(cpu, part, single=True)
    rest = rows[ones:]
    count = max(1, min(TIMED_STRETCHES, len(rest) // MIN_STRETCH_ROWS))
    size = math.ceil(len(rest) / count)
    for first in range(0, len(rest), size):
        cpu, part = _timed_stages(connection, batches, rest[first : first + size], config, turns)
        timings.add(cpu, part, single=False)


@dataclass
class TableTimings:
    """What the parts of one table's sample timed, stage by stage, each with the CPU it ran on
    (common/cpu_turns.py): batches of one row (seconds) and stretches (rows, seconds)."""

    singles: dict[str, list[tuple[int, float]]] = field(default_factory=lambda: defaultdict(list))
    stretches: dict[str, list[tuple[int, tuple[int, float]]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    # Each stretch's CPU and its seconds per row over all its stages: which CPU ran faster.
    pace: list[tuple[int, float]] = field(default_factory=list)
    # The bytes and rows of every part, summed.
    parts: Calibration = field(default_factory=Calibration)

    def add(self, cpu: int, part: Calibration, *, single: bool) -> None:
        for stage, seconds in part.seconds_by_stage.items():
            if single:
                self.singles[stage].append((cpu, seconds))
            else:
                self.stretches[stage].append((cpu, (part.sample_rows, seconds)))
        if not single:
            self.pace.append((cpu, sum(part.seconds_by_stage.values()) / part.sample_rows))
        self.parts.sample_rows += part.sample_rows
        self.parts.original_bytes += part.original_bytes
        self.parts.added_bytes += part.added_bytes
        self.parts.written_values += part.written_values
        self.parts.written_bytes += part.written_bytes

    def fastest_cpu(self) -> int | None:
        """The CPU whose stretches ran fastest (the median of each CPU's), None without any."""
        return fastest(self.pace)

    def charge(self, calibration: Calibration, rows: int) -> None:
        """Charge each stage to ``calibration`` for ``rows`` rows as the CPU that ran the
        stretches fastest timed it: its cost per row and per batch (_split). Where the other
        CPU ran the same work slower at nearly the same moment, it was in a slow spell, which a
        run of many seconds meets only now and then; how far apart they were is the spread.

        Measured on 2026-12-06 (tests/benchmarks/MEASUREMENTS.md): 36 estimates, each figured
        three ways from one and the same sample against the run it stood for (both datasets,
        both backends, concurrency 1, 2 and 4, three rounds). Charged as the faster CPU timed
        them, 28 within 15 % (mean error 11 %); the mean over the CPUs 25 (14 %); the median of
        every part whatever its CPU, as before, 26 (14 %). Of the 14 samples whose CPUs were
        1.25-1.68 times apart: 12, 9 and 10 within 15 % (mean errors 9, 15 and 14 %)."""
        faster = self.fastest_cpu()
        for stage in sorted(self.stretches):
            singles = _timed_on(faster, self.singles.get(stage, []))
            calibration.add(stage, _split(singles, _timed_on(faster, self.stretches[stage])), rows)
        calibration.cpu_spread = max(calibration.cpu_spread, spread(self.pace))
        calibration.split_tables += 1 if self.singles else 0
        calibration.sample_rows += self.parts.sample_rows
        calibration.original_bytes += self.parts.original_bytes
        calibration.added_bytes += self.parts.added_bytes
        calibration.written_values += self.parts.written_values
        calibration.written_bytes += self.parts.written_bytes


def _timed_on(cpu: int | None, timed: list[tuple[int, T]]) -> list[T]:
    """What ``cpu`` timed of ``timed`` (cpu, figure); where it timed none of that kind, what
    every CPU timed: a stage's cost per batch is not to be charged per row for want of batches
    of one row on one CPU."""
    return [figure for on, figure in timed if on == cpu] or [figure for _on, figure in timed]


def _timed_read(
    connection: sa.Connection, source: TableBatches, limit: int, turns: CpuTurns
) -> tuple[int, float]:
    """Seconds to read the first ``limit`` pending rows as a batch of the run reads them, on
    the next CPU of ``turns`` (which, and the seconds)."""
    query, parameters = source.pending_read(after=None, limit=limit)
    with turns.next_cpu() as cpu:
        started = uncontended_seconds()
        list(connection.execute(query, parameters).mappings())
        return cpu, uncontended_seconds() - started


def _timed_stages(
    connection: sa.Connection,
    batches: TableBatches,
    rows: list[Any],
    config: MigrationConfig,
    turns: CpuTurns,
) -> tuple[int, Calibration]:
    """``rows`` through every stage on the next CPU of ``turns`` (which, and the timings)."""
    part = Calibration()
    with turns.next_cpu() as cpu:
        _run_stages(connection, batches, rows, config, part)
    return cpu, part


def _split(singles: list[float], stretches: list[tuple[int, float]]) -> tuple[float, float]:
    """A stage's seconds per row and per batch, from batches of one row (``singles``: seconds)
    and stretches (rows, seconds): a stretch of k rows costs a batch's share and k rows'. The
    medians of both, so one preempted part moves neither; neither part below zero. Without
    singles every second counts per row.

    A statement's round trip and planning are paid per batch: counted per row, the demo's nine
    tables, sampled in stretches of about 100 rows, charged the run's batches of 1,000 ten times
    over for them (2026-12-05: estimates 20-30 % long on PostgreSQL, where they cost most)."""
    rows = statistics.median(count for count, _ in stretches)
    per_stretch_row = statistics.median(seconds / count for count, seconds in stretches if count)
    if not singles or rows <= 1:
        return per_stretch_row, 0.0
    one = statistics.median(singles)
    per_row = max(0.0, (per_stretch_row * rows - one) / (rows - 1))
    return per_row, max(0.0, one - per_row)


def _run_stages(
    connection: sa.Connection,
    batches: TableBatches,
    rows: list[Any],
    config: MigrationConfig,
    calibration: Calibration,
) -> None:
    """One batch's worth of every stage the migration will run, timed per stage."""
    stages = calibration.seconds_by_stage
    access, cipher = batches.access, batches.cipher
    # As a run reads them (on PostgreSQL with their versions, here in the shadow).
    rows = _with_row_versions(connection, access, rows)
    # PostgreSQL: what the stages add is measured in the shadows (see _stored_bytes).
    written_to = [access.table, row_metadata_table]
    if batches.backup_table is not None:
        written_to.append(batches.backup_table)
    on_server = connection.dialect.name == "postgresql"
    stored_before = _stored_bytes(connection, written_to) if on_server else 0
    # As a run's batches: each row's backup sealed with its tokens, written with them.
    started = uncontended_seconds()
    sealed, failures = batches.seal_rows(rows)
    _add(stages, "encrypt", started)
    # What the run's own process spends moving such a batch to a worker process and back (its
    # rows out, their tokens and backups in, as seal_batch returns them): no stage of a run
    # without worker processes, and with them the run's own process's part (main_process_seconds).
    returned = [{name: value for name, value in item.items() if name != "row"} for item in sealed]
    stages["transfer"] = stages.get("transfer", 0.0) + cpu_pool.transfer_seconds(rows, (returned, failures))
    started = uncontended_seconds()
    # The shadow is this session's alone: its rows cannot change until the write, as a claimed
    # batch's cannot.
    batches.write_in(connection, sealed, [], 0, locked=True)
    _add(stages, "write", started)
    if batches.backup_table is not None:
        started = uncontended_seconds()
        # As the copy's read-back once the batches are done: its rows as stored, each digested.
        backup.read_back_rows(
            connection, batches.backup_table, access, batches.key(rows[0]), batches.key(rows[-1])
        )
        _add(stages, "backupVerify", started)
        if not on_server:
            calibration.added_bytes += sum(
                len(item["backup"][backup.SEALED_COLUMN]) + 16 for item in sealed if item["backup"]
            )
    if not config.skip_integrity_checks:
        started = uncontended_seconds()
        # As a window of the run's verification reads and checks its rows (verify_window).
        verification.verify_rows_in(
            connection,
            cpu_pool.BatchContext(cipher),
            access,
            CALIBRATION_MIGRATION_ID,
            batches.organizations,
            batches.key(rows[0]),
            batches.key(rows[-1]),
        )
        _add(stages, "verify", started)
    calibration.sample_rows += len(rows)
    for row in rows:
        calibration.original_bytes += sum(_size(row[c.name]) for c in access.mapped.columns)
    if on_server:
        calibration.added_bytes += _stored_bytes(connection, written_to) - stored_before
        return
    # SQLite: the tokens take the originals' place in the rows (their old space is reused), so
    # the growth is the tokens' extra bytes, the backups and the row metadata. What the run
    # writes is the tokens whole, the backups and the row metadata (see write_probe).
    for row, item in zip(rows, sealed, strict=False):
        metadata = _metadata_bytes(item, access.mapped.name)
        tokens = [_size(item["parameters"].get(c.companion or c.name)) for c in access.mapped.columns]
        calibration.added_bytes += (
            metadata + sum(tokens) - sum(_size(row[c.name]) for c in access.mapped.columns)
        )
        calibration.written_values += len(tokens) + 1
        calibration.written_bytes += metadata + sum(tokens)
        if item["backup"]:
            calibration.written_values += 1
            calibration.written_bytes += len(item["backup"][backup.SEALED_COLUMN])


def _stored_bytes(connection: sa.Connection, tables: list[sa.Table]) -> int:
    """PostgreSQL: the bytes ``tables`` take now, indexes and TOAST included — their shadows',
    which a bare name finds first. What a batch adds there is not the tokens' extra bytes: an
    UPDATE writes each row anew (all its columns, a tuple header, and an entry in every index)
    and leaves the old version where it was until a VACUUM, so the growth is measured in
    the shadow's pages, as the run's table will grow, rather than computed."""
    size = sa.func.pg_total_relation_size(sa.func.to_regclass(sa.func.quote_ident(sa.bindparam("name"))))
    return sum(
        int(connection.execute(sa.select(size), {"name": table.name}).scalar_one() or 0) for table in tables
    )


def measure_commit_and_keep(engine: Engine, repeats: int = 3) -> float:
    """A committed write of one small row to tm_meta, timed: the fixed cost every batch pays.
    Kept there for those who may not write (see kept_commit_seconds); only a caller allowed to
    change the database calls this."""
    durations = []
    for _ in range(repeats):
        started = uncontended_seconds()
        # Not synced, as a batch's commits are not (see storage.database.serialized_write).
        with serialized_write(engine, durable=False) as connection:
            write_meta(connection, META_LAST_CALIBRATION, json.dumps({"at": utc_now().isoformat()}))
        durations.append(uncontended_seconds() - started)
    seconds = sorted(durations)[len(durations) // 2]
    with serialized_write(engine) as connection:
        write_meta(
            connection,
            META_LAST_CALIBRATION,
            json.dumps({"commitSeconds": seconds, "at": utc_now().isoformat()}),
        )
    return seconds


def keep_calibration(engine: Engine, scope_key: str, calibration: Calibration) -> None:
    """Keep ``calibration`` (measured for the scope ``scope_key`` names) beside the commit cost,
    so a start of the same scope soon after reuses it instead of sampling again. Only a caller
    allowed to change the database calls this."""
    with serialized_write(engine) as connection:
        kept = _kept(read_meta(connection, META_LAST_CALIBRATION))
        kept.update(
            {
                "commitSeconds": calibration.commit_seconds,
                "at": utc_now().isoformat(),
                "scope": scope_key,
                "calibration": dataclasses.asdict(calibration),
            }
        )
        write_meta(connection, META_LAST_CALIBRATION, json.dumps(kept))


def kept_calibration(engine: Engine, scope_key: str) -> Calibration | None:
    """The calibration kept for ``scope_key`` if it is fresh (FRESH_SECONDS), else None."""
    with engine.connect() as connection:
        kept = _kept(read_meta(connection, META_LAST_CALIBRATION))
    try:
        if kept.get("scope") != scope_key:
            return None
        age = (utc_now() - datetime.fromisoformat(kept["at"])).total_seconds()
        if not 0 <= age <= FRESH_SECONDS:
            return None
        return Calibration(**kept["calibration"])
    except (KeyError, TypeError, ValueError):
        return None  # an older or damaged entry: measure afresh


def _kept(text: str | None) -> dict[str, Any]:
    try:
        kept = json.loads(text or "{}")
    except ValueError:
        return {}
    return kept if isinstance(kept, dict) else {}


def kept_commit_seconds(engine: Engine) -> float:
    """The commit cost measured by the last calibration that could write, read without writing;
    where none was kept, a commit of a temporary table (no fsync of the database, so lower),
    remembered in this process."""
    with engine.connect() as connection:
        kept = read_meta(connection, META_LAST_CALIBRATION)
    try:
        return float(json.loads(kept or "{}")["commitSeconds"])
    except (ValueError, KeyError, TypeError):
        pass
    key = engine.url.render_as_string(hide_password=True)
    if key not in _temporary_commit_seconds:
        _temporary_commit_seconds[key] = _measure_temporary_commit(engine)
    return _temporary_commit_seconds[key]


_temporary_commit_seconds: dict[str, float] = {}


def _measure_temporary_commit(engine: Engine, repeats: int = 3) -> float:
    durations = []
    with engine.connect() as connection:
        for number in range(repeats):
            started = uncontended_seconds()
            with connection.begin():
                connection.exec_driver_sql("CREATE TEMPORARY TABLE IF NOT EXISTS tm_commit_probe (n INTEGER)")
                connection.exec_driver_sql(f"INSERT INTO tm_commit_probe (n) VALUES ({number})")
            durations.append(uncontended_seconds() - started)
        with connection.begin():
            connection.exec_driver_sql("DROP TABLE tm_commit_probe")
    return sorted(durations)[len(durations) // 2]


def estimated_seconds(
    calibration: Calibration, scope: MigrationScope, config: MigrationConfig, dialect: str
) -> float:
    rows = scope.pending_rows
    if not rows or not calibration.sample_rows:
        return 0.0
    stages = ["read", "encrypt"]
    if not config.dry_run:
        stages.append("write")
        if config.create_backups:
            stages.append("backupVerify")
        if not config.skip_integrity_checks:
            stages.append("verify")
    size = batch_size.steady(config, sum(calibration.per_row(stage) for stage in stages))
    largest = calibration.largest_row_bytes

    def cost(stage: str) -> float:
        """The stage's cost per row over the rows in scope, and per batch over the batches the
        run makes of them, table by table (the backups' read-back and verification go in
        windows of their own size)."""
        batches = _batches(scope, WINDOW_ROWS.get(stage, size), largest)
        return rows * calibration.per_row(stage) + batches * calibration.per_batch(stage)

    speed = run_speed(dialect, config.max_concurrency, rows)
    seconds = sum(cost(stage) for stage in stages) / speed
    # What the run's own process spends writing the batches' bytes into the database file
    # beyond what the sample's writes were timed at (write_probe; SQLite, none in a dry run).
    writing = 0.0 if config.dry_run else written_seconds(calibration, rows)
    if cpu_pool.migration_processes(config.max_concurrency, rows):
        # The batches' stages go side by side in the worker processes and the run's own, but
        # the run's own process does its part of every batch: where that alone takes longer
        # (large rows: its reads, its writes and moving them to and from the worker processes
        # outweigh the sealing), the batches take that long.
        batch_stages = [stage for stage in stages if stage not in WINDOW_ROWS]
        side_by_side = sum(cost(stage) for stage in batch_stages) / speed
        own = main_process_seconds(calibration, batch_stages, cost, dialect) + writing
        seconds += max(0.0, own - side_by_side)
    else:
        seconds += writing
    # Each batch commits its writes (its backups among them) and then its resume key.
    commits = _batches(scope, size, largest) * 2
    # Each phase that reads the tables samples their rows' sizes first: the batches, and the
    # read-back of the backups and verification where they run.
    phases = 1 + (stages.count("backupVerify") + stages.count("verify"))
    return (
        seconds
        + commits * calibration.commit_seconds
        + calibration.fixed_seconds
        + phases * calibration.size_sample_seconds
    )


def main_process_seconds(
    calibration: Calibration, batch_stages: list[str], cost: Callable[[str], float], dialect: str
) -> float:
    """What the run's own process spends on the batches when worker processes seal them: it
    moves each batch to a worker process and back (transfer) and, on SQLite, which runs inside
    it, reads and writes it; at the speed of a run without worker processes against its stages
    (RUN_SPEED). A PostgreSQL server reads and writes in processes of its own, several batches
    at once: 2,000 rows of 200 KB timed 8 ms a row of writing there, which a run spread over
    both cores (tests/benchmarks/MEASUREMENTS.md)."""
    own = ["transfer"]
    if dialect != "postgresql":
        own += [stage for stage in batch_stages if stage != "encrypt"]
    return sum(cost(stage) for stage in own) / run_speed(dialect, 1, 0)


def written_seconds(calibration: Calibration, rows: int) -> float:
    """What writing ``rows`` rows' tokens, backups and row metadata into the database file costs
    beyond the calibration's timing of the same writes (write_probe): the sample's bytes per
    row, at the probe's cost per byte."""
    if not calibration.sample_rows:
        return 0.0
    return rows * calibration.written_bytes / calibration.sample_rows * calibration.written_byte_seconds


def _batches(scope: MigrationScope, size: int, largest_row_bytes: dict[str, int] | None = None) -> int:
    """The batches a run makes of the rows in scope, ``size`` rows at most, table by table, and
    no more than a read of each table holds (engine/read_sizes.py: ``largest_row_bytes``, by
    table, as the calibration found them)."""
    largest = largest_row_bytes or {}
    return sum(
        math.ceil(table.pending_rows / read_sizes.rows_within(largest.get(table.access.mapped.name, 0), size))
        for table in scope.tables
        if table.pending_rows
    )


def run_speed(dialect: str, max_concurrency: int, rows: int) -> float:
    """How many times faster a run of ``rows`` rows goes than its stages timed one after another
    by the calibration, on ``dialect``'s database with ``max_concurrency`` batches in flight
    (and the worker processes cpu_pool.migration_processes gives it).

    The calibration times each stage alone, in one process. A run overlaps them — its worker
    processes seal and check batches while its own process reads and writes others, and on
    PostgreSQL the server works on them too, over separate connections — but on the same
    cores, and its own process does its part in threads that share one GIL with progress,
    heartbeats and checkpoints. So without worker processes a run goes slower than its stages'
    sum (on PostgreSQL less so: the server's work is in its own process), and a worker process
    adds less than a core. A second worker process past the cores has none to use.

    The medians of 36 runs on two cores (2026-12-05: 100,000 rows of the demo's nine tables and
    of the peers benchmark's one table of six text columns, --max-concurrency 1, 2 and 4, three
    rounds; tests/benchmarks/estimate_accuracy.py --dataset both): without worker processes
    SQLite 0.59-0.80 (median 0.67), PostgreSQL 0.72-1.07 (0.75); with two, SQLite 1.23-1.47
    (1.28), PostgreSQL 1.20-1.69 (1.32). Checked on 24 more runs: 23 within 15 %. Past two
    cores the figure per worker process is untested.

    Without worker processes re-fitted later that day, after nonces were drawn in bulk
    (crypto/nonces.py) made such runs faster against their stages: the estimate then erred by a
    median +11 % on SQLite (eight runs at concurrency 1) and +7 % on PostgreSQL (five), samples
    taken in a busy spell left out; one process's speed rose by as much (0.67 -> 0.74, 0.75 ->
    0.80), the speed with two worker processes kept (1.28, 1.32).

    Re-fitted again late on 2026-12-05 from the two matrices of that evening (48 runs, the same
    command, 20:33-20:50 and 22:58-23:15 UTC; tests/benchmarks/MEASUREMENTS.md), on a machine
    whose estimates had erred long: with two worker processes by a median +8.5 % on SQLite (16
    runs) and +11.5 % on PostgreSQL (16), without them -2 % (8) and +10 % (8). The speeds
    rise by as much: SQLite 1.28 -> 1.39 with two (0.74 kept without), PostgreSQL 0.80 -> 0.88
    without and 1.32 -> 1.47 with two. Single estimates stay far apart on such a machine (the
    same table's, minutes apart: up to 1.5 times): see MEASUREMENTS.md on its slow spells.

    PostgreSQL re-fitted on 2026-12-06 (22:59-23:02 UTC, 12 runs of the matrix at concurrency
    1, 2 and 4), after a run's own work had grown cheaper (statements built once, the backup
    packed from sealing's encodings) and the calibration began to time the run's own
    verification: with two worker processes estimates were a median 21 % short (7 of 8 runs
    14-33 %), without them 4 %. The server's share of a run is larger now that the tool's
    Python is smaller, and the two cores it shares with them run it no faster: 1.47 -> 1.16
    with two worker processes, 0.88 -> 0.85 without. SQLite's matrix of the same minutes (12 of
    12 within 15 %, median -2 %) kept its figures."""
    one, per_worker = RUN_SPEED["postgresql" if dialect == "postgresql" else "sqlite"]
    processes = cpu_pool.migration_processes(max_concurrency, rows)
    return one + per_worker * max(0, processes - 1)


def storage_increase_percent(
    calibration: Calibration, scope: MigrationScope, database_bytes: int | None
) -> float | None:
    if not calibration.sample_rows or not database_bytes:
        return None
    return 100.0 * added_bytes(calibration, scope.pending_rows) / database_bytes


def added_bytes(calibration: Calibration, rows: int) -> int:
    """What migrating ``rows`` rows adds to the database, as the sample's writes measured."""
    if not calibration.sample_rows:
        return 0
    return round(calibration.added_bytes / calibration.sample_rows * rows)


def _with_row_versions(connection: sa.Connection, access: TableAccess, rows: list[Any]) -> list[Any]:
    """PostgreSQL: the sample's rows with their versions in the shadow (they were read from the
    real table, with its versions), as a claimed batch reads them, so the writes are timed as
    the run's one statement per batch. The shadow holds the whole sample, warm-up rows
    included; ``rows`` are a stretch of it in key order, so the versions are read for their
    key range. (Where a key does not match, the rows go without versions and the per-row
    writes are timed.)"""
    plain = [{name: value for name, value in row.items() if name not in ROW_VERSION} for row in rows]
    if connection.dialect.name != "postgresql" or not rows:
        return plain
    width = len(access.key_columns)
    versions = connection.execute(
        sa.select(*access.key_columns, *access.row_version_columns())
        .where(access.key_range(key_of(access, rows[0]), key_of(access, rows[-1])))
        .order_by(*access.key_columns)
    ).all()
    if len(versions) != len(rows) or any(
        encode_key(tuple(version[:width])) != encode_key(key_of(access, row))
        for version, row in zip(versions, rows, strict=True)
    ):
        return plain
    return [
        {**row, **dict(zip(ROW_VERSION, version[width:], strict=True))}
        for version, row in zip(versions, plain, strict=True)
    ]


def _metadata_bytes(item: dict[str, Any], table: str) -> int:
    """What one row's metadata adds: its text, the key columns twice (the row and its primary
    key's index: migration, table, row key), and the fixed overhead."""
    key = len(CALIBRATION_MIGRATION_ID) + len(table) + len(item["row_key"])
    text = (
        len(item["key_id"])
        + len(item["digest"])
        + len(item["sealed_columns"])
        + len(item["tokens_digest"] or "")
    )
    return 2 * key + text + ROW_METADATA_OVERHEAD_BYTES


def _add(stages: dict[str, float], stage: str, started: float) -> None:
    stages[stage] = stages.get(stage, 0.0) + uncontended_seconds() - started


def _size(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, (bytes, bytearray, memoryview)):
        return len(value)
    if isinstance(value, str):
        return len(value.encode("utf-8", "surrogatepass"))
    if isinstance(value, (int, float, bool)):
        return 8
    return len(str(value).encode("utf-8"))
