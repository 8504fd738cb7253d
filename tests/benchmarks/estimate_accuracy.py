"""How close the estimate comes to the real run (the suite checks how the estimate is made, not
how close it lands: on a busy machine the two halves of one run see different loads).

Run: .venv/bin/python -m tests.benchmarks.estimate_accuracy [--rows 100000] [--max-concurrency 2] [--postgres]

Prints the estimate, the real time of the same migration on the same database (and of the whole
command, which on SQLite also sweeps the file), and the errors. ``--postgres``: the demo
database on a throwaway PostgreSQL cluster (fsync off) instead of a SQLite file.
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from tests.support.databases import make_settings
from tests.support.postgres_cluster import PostgresCluster
from tui_migrator.service.facade import create_demo_service
from tui_migrator.storage.database import database_size_bytes
from tui_migrator.storage.migration_status import Status

# The demo writes about this many sensitive rows per patient.
ROWS_PER_PATIENT = 8.83


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--max-concurrency", type=int, default=2)
    parser.add_argument("--postgres", action="store_true", help="on a throwaway PostgreSQL cluster")
    arguments = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="tui-migrator-bench-") as scratch,
        _database(Path(scratch), postgres=arguments.postgres) as overrides,
    ):
        service, summary = create_demo_service(
            make_settings(Path(scratch), **overrides),
            patients=round(arguments.rows / ROWS_PER_PATIENT),
            organizations=4,
            seed=7,
            user="bench",
        )
        with service:
            if arguments.postgres:
                # A database in use has been vacuumed and analysed, its pages written out; a
                # freshly filled one would have autovacuum and the checkpointer doing that during
                # the estimate's sample (a third of a second: it times whatever else runs then).
                with service.engine.connect() as connection:
                    autocommit = connection.execution_options(isolation_level="AUTOCOMMIT")
                    autocommit.exec_driver_sql("VACUUM ANALYZE")
                    autocommit.exec_driver_sql("CHECKPOINT")
            config = {"batch_size": arguments.batch_size, "max_concurrency": arguments.max_concurrency}
            estimate = service.estimate(config)
            size_before = database_size_bytes(service.engine) or 1
            started = time.perf_counter()
            record = service.start(config)
            actual = time.perf_counter() - started
            growth = 100 * ((database_size_bytes(service.engine) or 0) - size_before) / size_before
    if record.status is not Status.COMPLETED:
        raise SystemExit(f"the migration ended {record.status.value}: {record.error_message}")
    # The estimate is the migration's (start to completed); on SQLite the command then sweeps
    # the file (engine/sweep.py), which the estimate does not include: both are shown.
    migration = record.elapsed_seconds
    print(
        f"{summary.sensitive_records:,} rows, batch {arguments.batch_size}, "
        f"concurrency {arguments.max_concurrency}: estimate {estimate.estimated_time_seconds:.1f} s; "
        f"the migration took {migration:.1f} s ({_error(estimate.estimated_time_seconds, migration)}), "
        f"the command with its sweep {actual:.1f} s ({_error(estimate.estimated_time_seconds, actual)}); "
        f"storage increase estimated {estimate.estimated_storage_increase}, measured {growth:.0f}%"
    )
    print(f"calibration: {estimate.calibration.to_json()}")
    # What each phase of the run took, to set beside the calibration's stages: backup (backupRead,
    # backup, backupVerify), batch_processing (read, encrypt, write), verification (verify).
    print(
        "the run's phases: "
        + ", ".join(f"{phase} {seconds:.2f} s" for phase, seconds in record.phase_seconds.items())
    )


@contextlib.contextmanager
def _database(scratch: Path, *, postgres: bool) -> Iterator[dict[str, object]]:
    """The settings naming the benchmark's database: a SQLite file under ``scratch`` (the
    default) or a new database on a throwaway PostgreSQL cluster, stopped afterwards."""
    if not postgres:
        yield {}
        return
    cluster = PostgresCluster().start()
    try:
        yield {"database_url": cluster.url(cluster.create_database("estimate_accuracy"))}
    finally:
        cluster.stop()


def _error(estimate: float, actual: float) -> str:
    return f"{100 * (estimate - actual) / actual:+.0f}%"


if __name__ == "__main__":
    main()
