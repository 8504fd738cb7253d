"""A non-editable install carries the stylesheets and both entry points."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_wheel_ships_stylesheets_and_console_script(tmp_path: Path) -> None:
    # Build from a copy of the tracked files: setuptools leaves build/ behind in the source tree,
    # and a stale build/ there could slip removed modules into the wheel.
    source = tmp_path / "source"
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True)
    for name in tracked.stdout.splitlines():
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    for name in ("tui_migrator", "styles"):  # and files not committed yet
        shutil.copytree(
            ROOT / name, source / name, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__")
        )
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(source)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("tui_migrator-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(n for n in names if n.endswith("entry_points.txt"))
        scripts = archive.read(entry_points).decode()
    stylesheets = {path.name for path in (ROOT / "styles").glob("*.tcss")}
    assert stylesheets
    assert {f"tui_migrator/styles/{name}" for name in stylesheets} <= names
    assert "tui_migrator/__main__.py" in names
    assert "tui-migrator = tui_migrator.cli.launch:entry" in scripts

    # Installed from the wheel (not from this checkout), the app finds its stylesheet.
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
    )
    probe = (
        "import tui_migrator.tui.styles as s; p = s.stylesheet('app.tcss'); "
        "assert p.is_file(), p; assert 'site' in str(p), p; print(p)"
    )
    completed = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env={"PYTHONPATH": str(target)},
        capture_output=True,
        text=True,
    )
    assert completed.returncode == 0, completed.stderr
