"""The batch-function benchmark (tests/benchmarks/batch_functions.py) runs on a small batch and
prints a line per function; no timing is asserted."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_it_prints_time_and_calls_per_row_for_every_batch_function() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tests.benchmarks.batch_functions", "--rows", "40", "--repeat", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    for name in (
        "seal_batch",
        "verify_batch",
        "verify_batch, opening",
        "copy_batch",
        "read_back_batch",
        "AES-GCM alone",
    ):
        assert re.search(rf"^{name}\s+\d+\.\d\s+\d+\.\d$", done.stdout, re.MULTILINE), done.stdout
