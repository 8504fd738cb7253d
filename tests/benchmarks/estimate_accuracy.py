"""How close the estimate comes to the real run (the suite checks how the estimate is made, not
how close it lands: on a busy machine the two halves of one run see different loads).

Run: .venv/bin/python -m tests.benchmarks.estimate_accuracy [--rows 100000]

Prints the estimate, the real time of the same migration on the same database, and the error.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from tests.support.databases import make_settings
from tui_migrator.service.facade import create_demo_service
from tui_migrator.storage.migration_status import Status

# The demo writes about this many sensitive rows per patient.
ROWS_PER_PATIENT = 8.83


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=1000)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tui-migrator-bench-") as scratch:
        service, summary = create_demo_service(
            make_settings(Path(scratch)),
            patients=round(arguments.rows / ROWS_PER_PATIENT),
            organizations=4,
            seed=7,
            user="bench",
        )
        with service:
            config = {"batch_size": arguments.batch_size, "max_concurrency": 1}
            estimate = service.estimate(config)
            started = time.perf_counter()
            record = service.start(config)
            actual = time.perf_counter() - started
    if record.status is not Status.COMPLETED:
        raise SystemExit(f"the migration ended {record.status.value}: {record.error_message}")
    error = (estimate.estimated_time_seconds - actual) / actual
    print(
        f"{summary.sensitive_records:,} rows, batch {arguments.batch_size}: "
        f"estimate {estimate.estimated_time_seconds:.1f} s, real run {actual:.1f} s ({100 * error:+.0f}%)"
    )


if __name__ == "__main__":
    main()
