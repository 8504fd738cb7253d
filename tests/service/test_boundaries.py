"""The service is below the faces: importing it loads neither the CLI, the TUI nor the read API."""

from __future__ import annotations

import subprocess
import sys


def test_the_service_imports_no_face() -> None:
    script = (
        "import sys\n"
        "import tui_migrator.service.facade\n"
        "faces = ('tui_migrator.cli', 'tui_migrator.tui', 'tui_migrator.reader')\n"
        "print(sorted(m for m in sys.modules if m.startswith(faces)))\n"
    )
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert completed.stdout.strip() == "[]"
