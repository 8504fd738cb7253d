"""The core imports without Textual: the service layer knows nothing of any UI."""

from __future__ import annotations

import subprocess
import sys

CORE_MODULES = [
    "tui_migrator.audit",
    "tui_migrator.categories",
    "tui_migrator.codec",
    "tui_migrator.crypto",
    "tui_migrator.database",
    "tui_migrator.demo",
    "tui_migrator.errors",
    "tui_migrator.health",
    "tui_migrator.keyring",
    "tui_migrator.keys",
    "tui_migrator.mapping",
    "tui_migrator.operators",
    "tui_migrator.reader",
    "tui_migrator.service",
    "tui_migrator.settings",
    "tui_migrator.store",
    "tui_migrator.tokens",
    "tui_migrator.cli.commands",
]


def test_core_imports_with_textual_unavailable() -> None:
    script = (
        "import sys\n"
        "sys.modules['textual'] = None  # any 'import textual' now raises ImportError\n"
        f"for name in {CORE_MODULES!r}:\n"
        "    __import__(name)\n"
        "assert not any(m == 'textual' or m.startswith('textual.') for m in sys.modules if sys.modules[m])\n"
    )
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert completed.returncode == 0, completed.stderr


def test_the_tui_package_is_not_imported_by_the_core() -> None:
    script = (
        f"import sys\nfor name in {CORE_MODULES!r}:\n    __import__(name)\n"
        "print(sorted(m for m in sys.modules if m.startswith('tui_migrator.tui')))\n"
    )
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert completed.stdout.strip() == "[]"
