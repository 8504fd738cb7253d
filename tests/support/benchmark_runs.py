"""Running a benchmark of tests/benchmarks/ end to end, as its user does, for a test of it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_benchmark(module: str, *arguments: str, timeout: float = 600) -> str:
    """``python -m tests.benchmarks.<module> <arguments>`` from the repository's root: what it
    printed. It must exit 0 (the failure shows its output and the end of its errors)."""
    done = subprocess.run(
        [sys.executable, "-m", f"tests.benchmarks.{module}", *arguments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr[-6000:]}"
    return done.stdout
