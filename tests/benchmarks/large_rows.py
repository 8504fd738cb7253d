"""Memory and time of a migration whose rows hold large values, in one run.

Run: .venv/bin/python -m tests.benchmarks.large_rows [--rows 2000] [--kib 100] [--batch-size 1000]
     [--max-concurrency 4] [--postgres | --db URL]

Builds a table ``records`` of ``--rows`` rows (SQLite; ``--postgres``: in a throwaway PostgreSQL
cluster; ``--db``: in that PostgreSQL database, which must not hold a ``records`` table yet), each with two text columns of ``--kib`` KiB
(a report and its copy reversed, as a scanned document in a text column would be), sets the
tool up on it, runs ``start --yes`` through the CLI and samples, every 0.1 s from ``/proc``, the
resident memory of the tool's process and of every process under it (its worker processes,
their fork server). Prints the run's time, the peak of its own process, the peak over the whole
tree at one moment, the values' size for scale, and what the run warned of the reads it cut
(engine/read_sizes.py) and the estimate ``start`` made before it began against the
migration's time (the estimate's calibration charges what grows with the values' size:
engine/estimate.py). Then rolls the migration back and compares every row with the original,
byte for byte. Linux only (``/proc``).
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from tests.benchmarks.peers import pg_connect
from tests.support.postgres_cluster import PostgresCluster

SCHEMA_TOML = """\
[[tables]]
name = "records"
category = "NON_MOTOR_SYMPTOMS"
primary_key = "id"
organization_column = "organization_id"
columns = ["report", "copy"]
"""
SAMPLE_SECONDS = 0.1


@dataclass
class Peaks:
    """The largest resident memory seen, in MiB: of the process itself, and over its tree."""

    own: float = 0.0
    tree: float = 0.0
    processes: int = 0


def connect(url: str) -> Any:
    """A DB-API connection to the database of ``url`` (SQLite's file, or PostgreSQL's)."""
    parts = make_url(url)
    if parts.get_backend_name() == "sqlite":
        return sqlite3.connect(parts.database or "")
    return pg_connect(url)


def build(url: str, rows: int, kib: int) -> int:
    """The table, its values random words (so no page compresses them away); their bytes."""
    words = random.Random(7)
    alphabet = "abcdefghijklmnopqrstuvwxyz"
    total = 0
    mark = "?" if url.startswith("sqlite") else "%s"
    with closing(connect(url)) as connection:
        cursor = connection.cursor()
        cursor.execute(
            "CREATE TABLE records (id INTEGER PRIMARY KEY, organization_id TEXT, report TEXT, copy TEXT)"
        )
        for number in range(1, rows + 1):
            block = " ".join("".join(words.choices(alphabet, k=7)) for _ in range(128))
            report = (block * (kib * 1024 // len(block) + 1))[: kib * 1024]
            cursor.execute(
                f"INSERT INTO records VALUES ({', '.join([mark] * 4)})",
                (number, f"org_{number % 4}", report, report[::-1]),
            )
            total += 2 * len(report)
        connection.commit()
    return total


def every_row(url: str) -> list[tuple[Any, ...]]:
    with closing(connect(url)) as connection:
        return list(connection.cursor().execute("SELECT * FROM records ORDER BY id").fetchall())


@contextmanager
def database(args: argparse.Namespace, root: Path) -> Iterator[str]:
    """The URL of the database the benchmark builds its table in."""
    if args.db:
        yield args.db
    elif args.postgres:
        cluster = PostgresCluster().start()
        try:
            cluster.create_database("large_rows")
            yield cluster.url("large_rows")
        finally:
            cluster.stop()
    else:
        yield f"sqlite:///{root / 'large.db'}"


def tree(pid: int) -> list[int]:
    """``pid`` and every process under it, as /proc lists them now."""
    found = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return found
    for child in children:
        found += tree(int(child))
    return found


def resident_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass  # it exited between the listing and the read
    return 0.0


def run_sampled(command: list[str]) -> tuple[float, Peaks, subprocess.CompletedProcess[str]]:
    """Run ``command`` to its end, sampling its tree's memory; its seconds, peaks and result."""
    peaks = Peaks()
    started = time.perf_counter()
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as process:
        while process.poll() is None:
            pids = tree(process.pid)
            peaks.own = max(peaks.own, resident_mib(process.pid))
            peaks.tree = max(peaks.tree, sum(resident_mib(pid) for pid in pids))
            peaks.processes = max(peaks.processes, len(pids))
            time.sleep(SAMPLE_SECONDS)
        stdout, stderr = process.communicate()
    seconds = time.perf_counter() - started
    return seconds, peaks, subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument(
        "--kib", type=int, default=100, help="KiB in each of a row's two columns (default 100)"
    )
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--max-concurrency", type=int, default=4)
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--postgres", action="store_true", help="on a throwaway PostgreSQL cluster")
    where.add_argument("--db", metavar="URL", help="on this PostgreSQL database (postgresql+psycopg://…)")
    args = parser.parse_args()
    if args.db and not make_url(args.db).get_backend_name().startswith("postgresql"):
        parser.error("--db takes a PostgreSQL URL (the SQLite run needs no --db)")
    with tempfile.TemporaryDirectory(prefix="tui-migrator-large-rows-") as scratch:
        root = Path(scratch)
        with database(args, root) as url:
            return measure(args, root, url)


def measure(args: argparse.Namespace, root: Path, url: str) -> int:
    """Build, migrate (sampled), report, roll back and compare, on the database of ``url``."""
    schema = root / "schema.toml"
    schema.write_text(SCHEMA_TOML)
    values = build(url, args.rows, args.kib)
    original = every_row(url)
    tool = [
        sys.executable, "-m", "tui_migrator", "--db", url, "--schema", str(schema),
        "--data-dir", str(root / "data"),
    ]  # fmt: skip
    subprocess.run([*tool, "init"], check=True, capture_output=True)
    start = [*tool, "start", "--yes", "--batch-size", str(args.batch_size)]
    start += ["--max-concurrency", str(args.max_concurrency)]
    seconds, peaks, done = run_sampled(start)
    if done.returncode != 0:
        print(done.stdout, done.stderr, sep="\n", file=sys.stderr)
        return 1
    cut = [line.split(": ", 1)[-1] for line in done.stderr.splitlines() if "rows at a time at most" in line]
    migration_id = next(part for part in done.stdout.split() if part.startswith("migration_")).rstrip(":")
    status = subprocess.run([*tool, "--json", "status", migration_id], check=True, capture_output=True)
    timing = json.loads(status.stdout)["data"]["timing"]
    subprocess.run([*tool, "rollback", migration_id, "--confirm"], check=True, capture_output=True)
    restored = every_row(url)
    backend = make_url(url).get_backend_name()
    print(
        f"{args.rows:,} rows of two {args.kib:,}-KiB text columns: {values / 2**20:,.0f} MiB of values ({backend})"
    )
    print(f"start --batch-size {args.batch_size} --max-concurrency {args.max_concurrency}: {seconds:.2f} s")
    print(
        f"peak resident memory: the run's process {peaks.own:,.0f} MiB; its whole tree "
        f"{peaks.tree:,.0f} MiB at once ({peaks.processes} processes at most; sampled every {SAMPLE_SECONDS} s)"
    )
    estimated, took = timing["initialEstimateSeconds"], timing["elapsedSeconds"]
    error = f" ({100 * (estimated - took) / took:+.0f} %)" if estimated is not None and took else ""
    print(f"start's estimate: {estimated} s for a migration of {took} s{error}")
    print("reads cut (its warning):" if cut else "reads cut: none (its rows fit a read at the batch size)")
    for line in cut:
        print(f"  {line}")
    print(f"rolled back: every row {'byte for byte as before' if restored == original else 'DIFFERENT'}")
    return 0 if restored == original else 1


if __name__ == "__main__":
    raise SystemExit(main())
