"""PostgreSQL: one worker against two workers on the same migration, in one run.

Run: .venv/bin/python -m tests.benchmarks.workers [--patients 5000] [--batch-size 200]

Starts a throwaway PostgreSQL cluster (tests/postgres_cluster.py), builds the demo once into a
template database, then migrates two identical copies of it: once with the detached worker
alone (the peer), once with a second worker process joining it (``tui-migrator worker ID``) as
soon as batch processing starts. Each worker runs one batch at a time, so the second worker is
the only source of extra parallelism. Prints the batch-processing time and rows/s of both runs,
the rows each worker took, and the speed-up.
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.support.postgres_cluster import PostgresCluster
from tui_migrator.common.settings import Settings
from tui_migrator.service.facade import MigratorService, create_demo_service
from tui_migrator.storage.migration_status import Phase, Status

USER = pwd.getpwuid(os.geteuid()).pw_name


def settings_for(root: Path, url: str) -> Settings:
    return Settings.resolve({"data_dir": root / "data", "database_url": url}, environ={})


def run(cluster: PostgresCluster, template_root: Path, workers: int, batch_size: int) -> dict[str, object]:
    name = f"bench_{workers}_workers"
    cluster.create_database(name, template="bench_template")
    root = Path(tempfile.mkdtemp(prefix="tui-migrator-bench-"))
    shutil.copytree(template_root / "data", root / "data")
    settings = settings_for(root, cluster.url(name))
    try:
        with MigratorService.open(settings, user=USER) as service:
            record = service.start({"batch_size": batch_size, "max_concurrency": 1}, detach=True)
            joined = None
            if workers == 2:
                while service.status(record.id).phase != Phase.BATCH_PROCESSING.value:
                    time.sleep(0.02)
                joined = subprocess.Popen(
                    [sys.executable, "-m", "tui_migrator", "--db", settings.effective_database_url,
                     "--data-dir", str(settings.data_dir), "--json", "worker", record.id],
                    stdout=subprocess.PIPE, text=True,
                )  # fmt: skip
            while service.status(record.id).status is not Status.COMPLETED:
                time.sleep(0.1)
            final = service.status(record.id)
            helper_rows = json.loads(joined.communicate()[0])["data"]["rowsProcessed"] if joined else 0
            seconds = final.phase_seconds[Phase.BATCH_PROCESSING.value]
            return {
                "workers": workers,
                "rows": final.encrypted_records,
                "batch_seconds": seconds,
                "rows_per_second": final.encrypted_records / seconds,
                "total_seconds": final.elapsed_seconds,
                "second_worker_rows": helper_rows,
            }
    finally:
        cluster.drop_database(name)
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=5000)
    parser.add_argument("--batch-size", type=int, default=200)
    args = parser.parse_args()
    cluster = PostgresCluster().start()
    template_root = Path(tempfile.mkdtemp(prefix="tui-migrator-bench-template-"))
    try:
        cluster.create_database("bench_template")
        settings = settings_for(template_root, cluster.url("bench_template"))
        service, summary = create_demo_service(
            settings, patients=args.patients, organizations=4, seed=3, user=USER
        )
        service.close()
        print(
            f"demo: {summary.sensitive_records:,} sensitive rows; {os.cpu_count()} cores; batch size {args.batch_size}"
        )
        one = run(cluster, template_root, 1, args.batch_size)
        two = run(cluster, template_root, 2, args.batch_size)
    finally:
        cluster.stop()
        shutil.rmtree(template_root, ignore_errors=True)
    print(
        f"{'workers':>8} {'rows':>8} {'batch phase':>12} {'rows/s':>9} {'whole run':>10} {'2nd worker took':>16}"
    )
    for result in (one, two):
        print(
            f"{result['workers']:>8} {result['rows']:>8,} {result['batch_seconds']:>11.1f}s "
            f"{result['rows_per_second']:>9,.0f} {result['total_seconds']:>9.1f}s {result['second_worker_rows']:>16,}"
        )
    speedup = float(one["batch_seconds"]) / float(two["batch_seconds"])  # type: ignore[arg-type]
    print(f"speed-up of batch processing, 1 -> 2 workers: {speedup:.2f}x")


if __name__ == "__main__":
    main()
