"""How close the estimate comes to the real run (the suite checks how the estimate is made, not
how close it lands: on a busy machine the two halves of one run see different loads).

Run: .venv/bin/python -m tests.benchmarks.estimate_accuracy [--rows 100000] [--postgres]
         [--dataset demo|records|both] [--max-concurrency 2[,4,…]] [--rounds 1]

Builds each dataset once into a template — ``demo``: the demo's nine tables of mixed types
(``--rows`` sensitive rows in all); ``records``: the peers benchmark's one table of six text
columns (tests/benchmarks/peers.py) — in a SQLite file or, with ``--postgres``, in a database of a
throwaway PostgreSQL cluster (fsync off; vacuumed, analysed and checkpointed, as a database in
use is). Then, ``--rounds`` times, for each dataset and each ``--max-concurrency``, on a fresh
copy of the template: ``estimate``, then ``start`` with the same options (which reuses that
fresh calibration), as one service in this process (the tool's package compiled to bytecode
first, as peers.py does). Prints for each run the estimate, the real
time of the migration (and of the whole command, which on SQLite also sweeps the file), the
errors, on SQLite the sweep's forecast (engine/sweep_forecast.py) beside the time the sweep
took, the storage increase estimated and measured, the calibration and the run's phases; at
the end, with more than one run, every error and how many land within ±15 %.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.benchmarks import peers
from tests.support.databases import make_settings
from tests.support.postgres_cluster import PostgresCluster
from tui_migrator.common.settings import Settings
from tui_migrator.service.facade import MigratorService, create_demo_service
from tui_migrator.storage import sweep_records
from tui_migrator.storage.database import database_size_bytes
from tui_migrator.storage.migration_status import Status

# The demo writes about this many sensitive rows per patient.
ROWS_PER_PATIENT = 8.83
DEMO_USER = "bench"
# The estimate's target in the performance issue.
WITHIN_PERCENT = 15


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--max-concurrency", default="2", help="one or more, comma-separated")
    parser.add_argument("--dataset", choices=["demo", "records", "both"], default="demo")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--postgres", action="store_true", help="on a throwaway PostgreSQL cluster")
    arguments = parser.parse_args()
    try:
        concurrencies = [int(value) for value in arguments.max_concurrency.split(",")]
    except ValueError:
        parser.error("--max-concurrency takes whole numbers, comma-separated (e.g. 1,2,4)")
    if arguments.rows < 1 or arguments.rounds < 1 or min(concurrencies) < 1:
        parser.error("--rows, --rounds and every --max-concurrency must be at least 1")
    datasets = ["demo", "records"] if arguments.dataset == "both" else [arguments.dataset]
    scratch = Path(tempfile.mkdtemp(prefix="tui-migrator-bench-"))
    errors: list[tuple[str, float]] = []
    # The worker processes' fork server imports the tool as an installed tool would (peers.py).
    print(peers.compile_the_tool(), file=sys.stderr, flush=True)
    try:
        with _cluster(arguments.postgres) as cluster:
            templates = {name: _template(name, scratch, cluster, arguments.rows) for name in datasets}
            for round_number in range(arguments.rounds):
                for name, template in templates.items():
                    for concurrency in concurrencies:
                        config = {"batch_size": arguments.batch_size, "max_concurrency": concurrency}
                        copy = template.backend.copy(f"{name}_{concurrency}_{round_number}")
                        # The copy's pages (and the build's, before the first run) on disk before
                        # the estimate: written back during it, they made its commits wait for
                        # the disk and the sample, which lasts half a second, up to 65 % long
                        # while the twelve-second run hardly noticed.
                        os.sync()
                        try:
                            error = _run(template, copy, config, f"{name}, round {round_number + 1}")
                        finally:
                            template.backend.discard(copy)
                        errors.append((f"{name} c{concurrency}", error))
            for template in templates.values():
                template.backend.close()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if len(errors) > 1:
        within = sum(abs(error) <= WITHIN_PERCENT for _, error in errors)
        print(
            f"\nestimate against the migration, {len(errors)} runs: "
            + ", ".join(f"{label} {error:+.0f}%" for label, error in errors)
        )
        print(
            f"within ±{WITHIN_PERCENT}%: {within} of {len(errors)}; "
            f"median {statistics.median(error for _, error in errors):+.0f}%, "
            f"largest {max((error for _, error in errors), key=abs):+.0f}%"
        )


@dataclass(frozen=True)
class _Template:
    backend: peers.Backend
    schema: Path | None  # the records table's mapping; the demo's is in its database
    user: str  # who set it up, so who may migrate its copies


def _template(name: str, scratch: Path, cluster: PostgresCluster | None, rows: int) -> _Template:
    """Dataset ``name`` built once, set up for the tool, in a template the runs copy."""
    root = scratch / name
    root.mkdir()
    backend: peers.Backend
    if cluster is not None:
        backend = peers.PostgresBackend(cluster.url("postgres"), root, "throwaway cluster, fsync off")
        backend.set_prefix(f"{name}_accuracy")
    else:
        backend = peers.SqliteBackend(root)
    print(f"building {name} …", file=sys.stderr, flush=True)
    if name == "records":
        schema = root / "schema.toml"
        schema.write_text(peers.SCHEMA_TOML)
        backend.build(rows)
        copy = peers.Copy("template", backend.template_url, backend.template_data)
        peers.tool_json(peers.run_untimed(peers.tool_command(copy, schema, "init")), "init")
        template = _Template(backend, schema, peers.USER)
    else:
        settings = make_settings(backend.template_data.parent, database_url=backend.prepare_empty_template())
        service, _ = create_demo_service(
            settings, patients=max(1, round(rows / ROWS_PER_PATIENT)), organizations=4, seed=7, user=DEMO_USER
        )
        service.close()
        template = _Template(backend, None, DEMO_USER)
    if cluster is not None:
        # A database in use has been vacuumed and analysed, its pages written out; a freshly
        # filled one would have autovacuum and the checkpointer doing that during the
        # estimate's sample (a third of a second: it times whatever else runs then).
        with peers.pg_connect(backend.template_url, autocommit=True) as connection:
            connection.execute("VACUUM ANALYZE")
            connection.execute("CHECKPOINT")
    return template


def _run(template: _Template, copy: peers.Copy, config: dict[str, int], label: str) -> float:
    """One estimate and the start it stands for, on ``copy``: prints them; the error in %."""
    values: dict[str, object] = {"data_dir": copy.data_dir, "database_url": copy.url}
    if template.schema is not None:
        values["schema_path"] = template.schema
    with MigratorService.open(Settings.resolve(values, environ={}), user=template.user) as service:
        rows = service.plan(config).scope.pending_rows
        estimate = service.estimate(config)
        size_before = database_size_bytes(service.engine) or 1
        started = time.perf_counter()
        record = service.start(config)
        actual = time.perf_counter() - started
        growth = 100 * ((database_size_bytes(service.engine) or 0) - size_before) / size_before
        with service.engine.connect() as connection:
            swept = sweep_records.read(connection, record.id)
    if record.status is not Status.COMPLETED:
        raise SystemExit(f"the migration ended {record.status.value}: {record.error_message}")
    # The estimate is the migration's (start to completed); on SQLite the command then sweeps
    # the file (engine/sweep.py), which the estimate does not include: both are shown.
    migration = record.elapsed_seconds
    seconds = estimate.estimated_time_seconds
    print(
        f"{label}: {rows:,} rows, batch {config['batch_size']}, "
        f"concurrency {config['max_concurrency']}: estimate {seconds:.1f} s; "
        f"the migration took {migration:.1f} s ({_error(seconds, migration):+.0f}%), "
        f"the command with its sweep {actual:.1f} s ({_error(seconds, actual):+.0f}%); "
        f"storage increase estimated {estimate.estimated_storage_increase}, measured {growth:.0f}%"
    )
    forecast = estimate.sweep.seconds
    sweep_seconds = None if swept is None else swept.result.get("durationSeconds")
    if forecast is not None and sweep_seconds:
        print(
            f"its sweep: forecast {forecast:.2f} s, took {sweep_seconds:.2f} s "
            f"({_error(forecast, sweep_seconds):+.0f}%)"
        )
    print(f"calibration: {estimate.calibration.to_json()}")
    # What each phase of the run took, to set beside the calibration's stages: batch_processing
    # (read, encrypt and write, each with the rows' backups, then backupVerify), verification
    # (verify).
    print(
        "the run's phases: "
        + ", ".join(f"{phase} {seconds:.2f} s" for phase, seconds in record.phase_seconds.items()),
        flush=True,
    )
    return _error(seconds, migration)


@contextlib.contextmanager
def _cluster(postgres: bool) -> Iterator[PostgresCluster | None]:
    if not postgres:
        yield None
        return
    cluster = PostgresCluster().start()
    try:
        yield cluster
    finally:
        cluster.stop()


def _error(estimate: float, actual: float) -> float:
    return 100 * (estimate - actual) / actual


if __name__ == "__main__":
    main()
