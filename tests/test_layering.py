"""The core imports without Textual: the service layer knows nothing of any UI."""

from __future__ import annotations

import subprocess
import sys

CORE_MODULES = [
    "tui_migrator.storage.audit",
    "tui_migrator.common.categories",
    "tui_migrator.crypto.codec",
    "tui_migrator.crypto.ciphers",
    "tui_migrator.storage.database",
    "tui_migrator.demo",
    "tui_migrator.common.errors",
    "tui_migrator.service.health",
    "tui_migrator.storage.keyring",
    "tui_migrator.crypto.keys",
    "tui_migrator.storage.mapping",
    "tui_migrator.storage.operators",
    "tui_migrator.reader",
    "tui_migrator.service.facade",
    "tui_migrator.common.settings",
    "tui_migrator.storage.tables",
    "tui_migrator.crypto.tokens",
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
