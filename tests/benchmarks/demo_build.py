"""How long the demo takes to build on SQLite (the suite checks how it is built, not how fast).

Run: .venv/bin/python -m tests.benchmarks.demo_build [--patients 100000]

Prints the rows written, the seconds taken and the rows/s.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from tui_migrator.demo import build_demo_database
from tui_migrator.storage.database import create_database_engine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--organizations", type=int, default=8)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tui-migrator-bench-") as scratch:
        engine = create_database_engine(f"sqlite:///{Path(scratch) / 'demo.db'}")
        try:
            started = time.perf_counter()
            summary = build_demo_database(
                engine, patients=arguments.patients, organizations=arguments.organizations
            )
            seconds = time.perf_counter() - started
        finally:
            engine.dispose()
    rows = sum(summary.rows_by_table.values())
    print(f"{arguments.patients:,} patients: {rows:,} rows in {seconds:.1f} s ({rows / seconds:,.0f} rows/s)")


if __name__ == "__main__":
    main()
