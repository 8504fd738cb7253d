"""An estimate of a small demo database, and the scope it was made for (tests of the estimate)."""

from __future__ import annotations

from pathlib import Path

from tests.support.databases import make_settings
from tui_migrator.engine.scope import MigrationScope
from tui_migrator.service.facade import create_demo_service
from tui_migrator.service.planning import Estimate


def estimated_demo(tmp_path: Path) -> tuple[Estimate, MigrationScope]:
    """``estimate`` of a 200-patient demo in ``tmp_path`` with batches of 100, and its scope."""
    service, _ = create_demo_service(
        make_settings(tmp_path), patients=200, organizations=2, seed=3, user="alice"
    )
    with service:
        estimate = service.estimate({"batch_size": 100})
        scope = service.plan({"batch_size": 100}).scope
    return estimate, scope
