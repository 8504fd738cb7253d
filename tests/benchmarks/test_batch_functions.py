"""The batch-function benchmark (tests/benchmarks/batch_functions.py) runs on a small batch and
prints a line per function; no timing is asserted."""

from __future__ import annotations

import re

from tests.support.benchmark_runs import run_benchmark


def test_it_prints_time_and_calls_per_row_for_every_batch_function() -> None:
    output = run_benchmark("batch_functions", "--rows", "40", "--repeat", "1", timeout=300)
    for name in (
        "seal_batch",
        "verify_batch",
        "verify_batch, opening",
        "read_back_batch",
        "AES-GCM alone",
    ):
        assert re.search(rf"^{name}\s+\d+\.\d\s+\d+\.\d$", output, re.MULTILINE), output
