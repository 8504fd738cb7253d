"""Locates the ``.tcss`` files, which live in ``styles/`` and ship as ``tui_migrator.styles``."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def stylesheet(name: str) -> Path:
    return Path(str(resources.files("tui_migrator.styles").joinpath(name)))
