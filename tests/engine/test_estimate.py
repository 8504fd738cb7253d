"""The estimate's sample and what it says when the application changes sampled rows."""

from __future__ import annotations

import sqlite3
from types import SimpleNamespace

import pytest

from tests.support.databases import BOTH_BACKENDS
from tests.support.db_state import database_state, sqlite_file_bytes
from tests.support.migration_helpers import (
    FAST,
    raw_dump,
)
from tui_migrator.common import uncontended_clock
from tui_migrator.common.errors import OperationFailed
from tui_migrator.common.settings import Settings
from tui_migrator.engine import batches as batches_module
from tui_migrator.engine import calibration_shadow
from tui_migrator.engine import estimate as estimate_engine
from tui_migrator.service.facade import MigratorService
from tui_migrator.storage.column_storage import ROW_VERSION

pytestmark = BOTH_BACKENDS


@pytest.mark.backends("sqlite")
def test_rows_changed_while_the_estimate_samples_them_is_said_in_words(
    service: MigratorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    def application_changed_the_sample(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        raise batches_module.RowsChanged

    monkeypatch.setattr(batches_module.TableBatches, "write_in", application_changed_the_sample)
    before = raw_dump(service.engine)
    with pytest.raises(OperationFailed, match="changed rows of .* while the estimate was sampling"):
        service.estimate(FAST)
    assert raw_dump(service.engine) == before


@pytest.mark.parametrize("readonly", [True, False])
def test_a_viewers_estimate_writes_nothing_at_all(
    settings: Settings, service: MigratorService, backend: str, readonly: bool
) -> None:
    """No data key created, no calibration kept, no column added: the user's and the tool's
    tables are as they were, and on SQLite so is every byte of the database file."""
    service.grant("vera", "viewer")
    before_dump, before_state = raw_dump(service.engine), database_state(settings)
    before_file = sqlite_file_bytes(settings)
    viewer_settings = settings.model_copy(update={"readonly": readonly})
    with MigratorService.open(viewer_settings, user="vera") as viewer:
        estimate = viewer.estimate({**FAST, "create_backups": True})
    assert estimate.estimated_records > 0 and estimate.calibration.sample_rows > 0
    assert raw_dump(service.engine) == before_dump
    assert database_state(settings) == before_state
    assert sqlite_file_bytes(settings) == before_file


def test_an_estimate_takes_no_lock_beyond_reading_rows(service: MigratorService, backend: str) -> None:
    """While the sample is being written (to its shadow tables), another session can still take
    the database's write lock (SQLite) or an exclusive lock on every sampled table (PostgreSQL,
    which only an ACCESS SHARE lock of the estimate's own reads would not block: checked in
    pg_locks)."""
    seen: list[object] = []
    real = estimate_engine._run_stages

    def run_stages_and_look(connection, batches, rows, config, calibration):  # type: ignore[no-untyped-def]
        real(connection, batches, rows, config, calibration)
        if connection.dialect.name == "sqlite":
            with sqlite3.connect(service.engine.url.database, timeout=0) as other:
                other.execute("BEGIN IMMEDIATE")
                other.rollback()
            seen.append("write lock free")
        else:
            pid = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
            with service.engine.connect() as other:
                modes = other.exec_driver_sql(
                    "SELECT DISTINCT l.mode FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                    "WHERE l.pid = %(pid)s AND c.relpersistence <> 't'",
                    {"pid": pid},
                ).scalars()
                seen.append(set(modes))

    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(estimate_engine, "_run_stages", run_stages_and_look)
        service.estimate({**FAST, "create_backups": True})
    assert seen
    if backend == "sqlite":
        assert set(seen) == {"write lock free"}
    else:
        assert set().union(*seen) <= {"AccessShareLock"}  # type: ignore[arg-type]


@pytest.mark.backends("postgresql")
def test_the_sample_is_written_as_a_run_writes_a_claimed_batch(service: MigratorService) -> None:
    """On PostgreSQL a run writes a claimed batch with one statement, finding its rows by the
    versions it read them at; the calibration must time that write, not the per-row UPDATE a
    batch falls back to — warm-up rows and sampled rows alike (each a stretch of the shadow)."""
    writes: list[bool] = []
    real = batches_module.TableBatches._update_rows

    def update_and_note(self, connection, sealed, failures, *, locked):  # type: ignore[no-untyped-def]
        writes.append(locked and all(ROW_VERSION[0] in item["row"] for item in sealed))
        return real(self, connection, sealed, failures, locked=locked)

    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(batches_module.TableBatches, "_update_rows", update_and_note)
        estimate = service.estimate({**FAST, "create_backups": True})
    assert estimate.calibration.sample_rows > 2 * estimate_engine.WARM_UP_ROWS
    # Per table in scope: the warm-up's write and the sample's.
    assert len(writes) >= 2 and all(writes)


@pytest.mark.backends("postgresql")
def test_the_storage_a_sample_adds_on_postgresql_is_measured_in_its_shadow(
    service: MigratorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An UPDATE on PostgreSQL writes each row anew, every column of it, and leaves the old
    version until a VACUUM: a table with a wide column the migration never touches grows by
    that column too with every row it seals. The storage estimate measures the shadow's growth,
    so it sees that; the tokens' extra bytes alone would not."""
    # The small demo's table whole, not a tenth of it: growth is measured in 8 KiB pages, too
    # coarse for a sample of ten rows to show a kilobyte a row.
    monkeypatch.setattr(estimate_engine, "SAMPLED_SHARE", 1)
    config = {**FAST, "data_categories": ["DEMOGRAPHICS"]}
    (table,) = [t for t in service.plan(config).scope.tables if t.pending_rows]

    def added_per_row() -> float:
        calibration = service.estimate(config).calibration
        return calibration.added_bytes / calibration.sample_rows

    before = added_per_row()
    name = service.engine.dialect.identifier_preparer.quote(table.name)
    with service.engine.begin() as connection:
        # Incompressible and short enough to stay in the row (not TOASTed out of line, where an
        # UPDATE would keep pointing at the same value).
        connection.exec_driver_sql(f"ALTER TABLE {name} ADD COLUMN filler text")
        connection.exec_driver_sql(
            f"UPDATE {name} SET filler = (SELECT string_agg(md5(random()::text || n), '') "
            "FROM generate_series(1, 32) AS n)"
        )
    after = added_per_row()
    # 32 × 32 = 1,024 bytes more in every new row version (pages make it coarse).
    assert after - before > 800


def test_a_small_scopes_sample_is_a_tenth_of_each_table_and_a_large_ones_is_spread_over_it() -> None:
    """A table of 60 rows was sampled 40 rows deep, as costly as migrating it: now a tenth of
    each table (ten rows at least, all of a smaller one); from 12,000 rows in scope the sample
    is SAMPLE_ROWS spread over the tables, as before, but for tables under 400 rows."""
    size = estimate_engine.sample_size
    assert size(60, 531) == 10 and size(7, 531) == 7 and size(300, 2_664) == 30
    assert size(100_000, 100_000) == estimate_engine.SAMPLE_ROWS
    assert size(12_000, 12_000) == estimate_engine.SAMPLE_ROWS
    # A small table of a large scope keeps the floor of MIN_SAMPLE_PER_TABLE where it has the rows,
    # a tenth of them where it has fewer than 400.
    assert size(1_000, 100_000) == estimate_engine.MIN_SAMPLE_PER_TABLE
    assert size(100, 100_000) == 10
    assert size(50_000, 100_000) == estimate_engine.SAMPLE_ROWS // 2


def test_an_estimate_of_the_small_demo_samples_its_largest_tables_until_it_holds_the_floor(
    service: MigratorService,
) -> None:
    """Each table sampled costs tens of milliseconds whatever its rows: of a scope of small
    tables only the largest are sampled, a tenth of each, until the sample holds
    MIN_SAMPLE_PER_TABLE rows."""
    scope = service.plan(FAST).scope
    chosen = estimate_engine.tables_to_sample(scope.tables, scope.pending_rows)
    with_rows = [table for table in scope.tables if table.pending_rows]
    assert 1 < len(chosen) < len(with_rows)
    sizes = [table.pending_rows for table, _ in chosen]
    assert sizes == sorted(sizes, reverse=True)
    assert min(sizes) >= max(t.pending_rows for t in with_rows if all(t is not c for c, _ in chosen))
    samples = [sample for _, sample in chosen]
    assert sum(samples[:-1]) < estimate_engine.MIN_SAMPLE_PER_TABLE <= sum(samples)
    estimate = service.estimate(FAST)
    assert estimate.calibration.sample_rows == sum(samples)


def test_every_table_whose_sample_reaches_the_floor_is_sampled() -> None:
    """A large scope's tables are all sampled where each holds MIN_SAMPLE_PER_TABLE rows; the
    small ones beside them are not, the sample holding enough rows already."""
    tables = [SimpleNamespace(pending_rows=rows) for rows in (90_000, 9_000, 600, 300, 0)]
    chosen = estimate_engine.tables_to_sample(tables, 99_900)  # type: ignore[arg-type]
    assert [table.pending_rows for table, _ in chosen] == [90_000, 9_000, 600]
    assert [sample for _, sample in chosen] == [
        estimate_engine.sample_size(rows, 99_900) for rows in (90_000, 9_000, 600)
    ]
    # Only small tables: the largest first, until the floor is reached.
    small = [SimpleNamespace(pending_rows=rows) for rows in (50, 390, 120, 7)]
    chosen = estimate_engine.tables_to_sample(small, 567)  # type: ignore[arg-type]
    assert [table.pending_rows for table, _ in chosen] == [390, 120]
    assert [sample for _, sample in chosen] == [39, 12]


def test_the_shadow_finds_a_row_by_its_key_as_the_table_does(service: MigratorService, backend: str) -> None:
    """A batch's UPDATE finds each row by its key. The shadow the sample is written to must find
    it the same way (through an index), or every row's write would scan the whole sample and
    the write stage would be timed at a cost that grows with the sample and no run pays."""
    (table, *_) = [t for t in service.plan(FAST).scope.tables if t.pending_rows]
    access = table.access
    with service.engine.connect() as connection, connection.begin():
        rows = connection.execute(access.select_rows(limit=50)).mappings().all()
        shadow = calibration_shadow.shadow(connection, access, rows)
        quote = connection.dialect.identifier_preparer.quote
        marker = "?" if backend == "sqlite" else "%s"
        column = quote(access.mapped.columns[0].name)
        key = " AND ".join(f"{quote(name)} = {marker}" for name in access.mapped.primary_key)
        update = f"UPDATE {quote(shadow.table.name)} SET {column} = {column} WHERE {key}"
        values = tuple(rows[0][name] for name in access.mapped.primary_key)
        if backend == "sqlite":
            plan = " ".join(
                str(row[-1]) for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {update}", values)
            )
            assert "USING INDEX" in plan and "SCAN" not in plan, plan
        else:
            # Any plan but a scan of the whole table (a sample this small may well be scanned
            # by choice; with scans priced out, only an index can avoid one).
            connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
            plan = " ".join(str(row[0]) for row in connection.exec_driver_sql(f"EXPLAIN {update}", values))
            assert "Index Scan" in plan and "Seq Scan" not in plan, plan
        connection.rollback()


@pytest.mark.backends("sqlite")
def test_a_table_the_application_empties_before_its_sample_is_left_out(service: MigratorService) -> None:
    """The scope was counted, then the application deleted every row of one of its tables
    before the sample reached it: the estimate goes on with the other tables, its figures
    measured on those alone, and writes nothing."""
    plan = service.plan(FAST)
    emptied = next(table.name for table in plan.scope.tables if table.pending_rows)
    real = estimate_engine._calibrate_table
    sampled: list[str] = []
    once_emptied: list[object] = []

    def empty_it_first(engine, table, *args, **kwargs):  # type: ignore[no-untyped-def]
        if table.access.mapped.name == emptied:
            with engine.begin() as connection:
                quoted = connection.dialect.identifier_preparer.quote(emptied)
                connection.exec_driver_sql(f"DELETE FROM {quoted}")
            once_emptied.append(raw_dump(engine))
        sampled.append(table.access.mapped.name)
        return real(engine, table, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(estimate_engine, "_calibrate_table", empty_it_first)
        estimate = service.estimate(FAST)
    assert emptied in sampled and len(sampled) > 1
    # The other tables were sampled and counted (counts, not timings: the machine may be busy).
    assert estimate.calibration.sample_rows > 0 and estimate.estimated_records > 0
    assert raw_dump(service.engine) == once_emptied[0]


@pytest.mark.backends("sqlite")
def test_time_other_processes_took_from_the_sample_is_left_out(
    service: MigratorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sample is timed on the uncontended clock: one in which the thread was kept waiting
    10 s for a CPU at every reading estimates what a quiet one does, and only the count of that
    waiting tells them apart. Stand-in readings, so every timing is exact: the wall clock moves
    1 ms a reading, plus the stall. The two measurements on clocks of their own are fixed too:
    the write probe's cost per byte and the transfer's thread time (on CI their real readings
    once moved the rounded estimate by 0.1 s between two calls)."""
    monkeypatch.setattr(estimate_engine.write_probe, "seconds_per_byte", lambda *_args: 5e-9)
    monkeypatch.setattr(estimate_engine.cpu_pool, "transfer_seconds", lambda *_args: 0.0)

    def estimate_with(stall: float, *, stall_counted: bool) -> float:
        state = SimpleNamespace(wall=0.0, waited=0.0)

        def perf_counter() -> float:
            state.wall += 0.001 + stall
            state.waited += stall if stall_counted else 0.0
            return state.wall

        monkeypatch.setattr(uncontended_clock, "time", SimpleNamespace(perf_counter=perf_counter))
        monkeypatch.setattr(uncontended_clock, "_waited_for_a_cpu", lambda: state.waited)
        monkeypatch.setattr(uncontended_clock, "_COUNTED", True)
        return service.estimate(FAST).estimated_time_seconds

    quiet = estimate_with(0.0, stall_counted=True)
    assert estimate_with(10.0, stall_counted=True) == pytest.approx(quiet)
    assert estimate_with(10.0, stall_counted=False) > 100 * quiet
