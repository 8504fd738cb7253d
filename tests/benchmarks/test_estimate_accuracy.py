"""The estimate-accuracy benchmark (tests/benchmarks/estimate_accuracy.py) runs end to end on a
small demo, on SQLite and on a throwaway PostgreSQL cluster, and prints the estimate beside the
run, the calibration and the run's phases; no figure is asserted."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("where", [[], pytest.param(["--postgres"], marks=pytest.mark.postgresql)])
def test_it_prints_the_estimate_beside_the_run(where: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tests.benchmarks.estimate_accuracy", "--rows", "300", *where],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert re.search(r"estimate \d+\.\d s; the migration took \d+\.\d s \([+-]\d+%\)", done.stdout), (
        done.stdout
    )
    assert re.search(r"storage increase estimated \d+%, measured -?\d+%", done.stdout), done.stdout
    assert "calibration: {'sampleRows': " in done.stdout
    assert re.search(r"the run's phases: .*batch_processing \d+\.\d\d s", done.stdout), done.stdout
