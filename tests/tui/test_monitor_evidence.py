"""The monitor writes a migration's evidence bundle (v): it asks for the folder, suggests one in
the data dir, writes the signed bundle in a worker and says where it is and how to check it."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input

from tests.tui.conftest import capture_notifications, settle, wait_until
from tui_migrator.crypto.keys import load_master_key
from tui_migrator.service.evidence_bundle import verify_bundle
from tui_migrator.service.facade import MigratorService
from tui_migrator.tui.app import MigratorApp
from tui_migrator.tui.screens.monitor import MonitorScreen
from tui_migrator.tui.screens.monitor_modals import EvidenceModal


async def test_v_on_the_monitor_writes_a_bundle_that_verifies(
    app: MigratorApp, operator_service: MigratorService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = operator_service.start({"batch_size": 40, "data_categories": ["DEMOGRAPHICS"]})
    seen = capture_notifications(app, monkeypatch)
    folder = tmp_path / "for-the-auditor"
    async with app.run_test(size=(100, 32)) as pilot:
        app.open_monitor(record.id)
        screen = app.screen
        assert isinstance(screen, MonitorScreen)
        await wait_until(pilot, lambda: screen.record is not None)
        await pilot.press("v")
        await pilot.pause()
        modal = app.screen
        assert isinstance(modal, EvidenceModal)
        field = modal.query_one("#folder", Input)
        suggested = Path(field.value)
        assert suggested.parent == operator_service.settings.data_dir / "evidence"
        assert suggested.name.startswith(f"{record.id}-")
        field.value = str(folder)
        await pilot.press("enter")
        await settle(app, pilot)
        assert app.screen is screen
    checked = verify_bundle(folder, load_master_key(operator_service.settings, create_if_missing=False))
    assert checked.intact and checked.migration_id == record.id
    assert any(f"written to {folder}" in text and "evidence verify" in text for text in seen), seen


async def test_backing_out_of_the_evidence_dialog_writes_nothing(
    app: MigratorApp, operator_service: MigratorService
) -> None:
    record = operator_service.start({"batch_size": 40, "data_categories": ["DEMOGRAPHICS"]})
    async with app.run_test(size=(100, 32)) as pilot:
        app.open_monitor(record.id)
        screen = app.screen
        assert isinstance(screen, MonitorScreen)
        await wait_until(pilot, lambda: screen.record is not None)
        await pilot.press("v")
        await pilot.pause()
        assert isinstance(app.screen, EvidenceModal)
        await pilot.press("escape")
        await settle(app, pilot)
        assert app.screen is screen
    assert not (operator_service.settings.data_dir / "evidence").exists()
