"""The audit screen after someone edited the trail behind its triggers: verify names the first
broken entry. Its own module, because it needs a world of its own (the shared one is never written).
"""

from __future__ import annotations

import pytest

from tests.tui.snapshot_world import world
from tests.tui.test_snapshots import SIZE, SnapCompare, keys, then_settle
from tui_migrator.service.facade import MigratorService
from tui_migrator.tui.app import MigratorApp

# The world lives at one fixed path: under xdist (--dist loadgroup) its users share one worker.
pytestmark = pytest.mark.xdist_group("snapshot_world")


def test_audit_verify_marks_the_first_broken_entry(snap_compare: SnapCompare) -> None:
    with world() as tampered:
        _tamper(tampered.service)
        app = MigratorApp(tampered.service)
        assert snap_compare(app, terminal_size=SIZE, run_before=then_settle(keys("a"), keys("v")))


def _tamper(service: MigratorService) -> None:
    """Edit one audit entry behind the triggers' back, as an intruder with file access could."""
    with service.engine.begin() as connection:
        connection.exec_driver_sql("DROP TRIGGER tm_audit_no_update")
        connection.exec_driver_sql("UPDATE tm_audit SET user_id = 'mallory' WHERE seq = 3")
