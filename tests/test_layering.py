"""Everything but the TUI runs without Textual. import-linter (in .ci/run) checks the imports
statically; this checks what really gets loaded, so a dynamic import cannot slip past it."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import tui_migrator


def modules_outside_the_tui() -> list[str]:
    """Every module of the package except tui_migrator.tui.*, found by walking the package, so a
    new module is checked without anyone adding it to a list."""
    return sorted(
        info.name
        for info in pkgutil.walk_packages(tui_migrator.__path__, prefix="tui_migrator.")
        if not info.name.startswith("tui_migrator.tui")
        and info.name not in ("tui_migrator.__main__", "tui_migrator.styles")
    )


def test_the_walk_finds_every_layer() -> None:
    found = {name.split(".")[1] for name in modules_outside_the_tui() if name.count(".") >= 1}
    assert {"common", "crypto", "storage", "engine", "service", "demo", "cli", "reader"} <= found


def test_every_module_outside_the_tui_imports_with_textual_unavailable() -> None:
    script = (
        "import sys\n"
        "sys.modules['textual'] = None  # any 'import textual' now raises ImportError\n"
        f"for name in {modules_outside_the_tui()!r}:\n"
        "    __import__(name)\n"
        "assert not any(m == 'textual' or m.startswith('textual.') for m in sys.modules if sys.modules[m])\n"
    )
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert completed.returncode == 0, completed.stderr


def test_no_module_outside_the_tui_loads_the_tui_package() -> None:
    script = (
        f"import sys\nfor name in {modules_outside_the_tui()!r}:\n    __import__(name)\n"
        "print(sorted(m for m in sys.modules if m.startswith('tui_migrator.tui')))\n"
    )
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert completed.stdout.strip() == "[]"
