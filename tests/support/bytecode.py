"""The tool's modules compiled to bytecode, as installing it does.

pip compiles a wheel's modules when it installs them, and an editable install's are written on
their first import — except where PYTHONDONTWRITEBYTECODE is set (as on the machines the README's
figures come from): there none is ever written, and every process that imports the tool (a CLI
run, a detached worker, the TUI, a fork server) compiles its 25,000 lines afresh, 0.3–0.5 s of
CPU each (2026-12-05 and 2026-12-07). The benchmarks compile it before timing; the suite before
its first test.
"""

from __future__ import annotations

import compileall
from pathlib import Path

import tui_migrator

PACKAGE = Path(tui_migrator.__file__).parent


def compile_the_tool() -> None:
    """Write the bytecode of every module of the tool's package where Python looks for it
    (compileall writes it whatever PYTHONDONTWRITEBYTECODE says; up to date ones are kept)."""
    compileall.compile_dir(PACKAGE, quiet=1)
