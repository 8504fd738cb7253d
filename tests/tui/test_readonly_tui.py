"""Every TUI action of a viewer, or of a read-only session, writes nothing: each screen is opened
and every key its bindings name is pressed (a dialog that opens is answered with the migration's
id and Enter, then left); afterwards the database holds what it held, apart from the audit
entries of refusals."""

from __future__ import annotations

import pytest
from textual.pilot import Pilot

from tests.support.databases import ADMIN
from tests.support.db_state import database_state, sqlite_file_bytes, without_audit_head
from tests.tui.conftest import settle
from tui_migrator.common.settings import Settings
from tui_migrator.service.facade import MigratorService
from tui_migrator.storage.audit_operations import AuditOperation
from tui_migrator.tui.app import MigratorApp

# Keys that leave the app or only move around; everything else is pressed.
NOT_PRESSED = {"q", "question_mark", "f1", "escape", "ctrl+q", "ctrl+c", "ctrl+p"}


async def _press_every_binding(app: MigratorApp, pilot: Pilot[None], migration_id: str) -> list[str]:
    screen = app.screen
    pressed = []
    for binding in list(screen.BINDINGS):
        key = binding.key.split(",")[0] if hasattr(binding, "key") else binding[0].split(",")[0]  # type: ignore[index]
        if key in NOT_PRESSED:
            continue
        await pilot.press(key)
        await settle(app, pilot)
        pressed.append(key)
        if app.screen is not screen:  # a dialog or another screen: answer it, then leave it
            await pilot.press(*migration_id, "enter")
            await settle(app, pilot)
            while app.screen is not screen and len(app.screen_stack) > 1:
                await pilot.press("escape")
                await settle(app, pilot)
                if app.screen is not screen and app.screen.is_modal is False:
                    app.pop_screen()
                    await settle(app, pilot)
    return pressed


@pytest.mark.parametrize(
    ("user", "readonly"), [("vera", False), (ADMIN, True)], ids=["viewer", "admin-readonly"]
)
async def test_no_tui_action_of_a_viewer_or_a_readonly_session_writes(
    settings: Settings, service: MigratorService, user: str, readonly: bool
) -> None:
    migration = service.start({"batch_size": 50, "data_categories": ["DEMOGRAPHICS"]})
    service.grant("vera", "viewer")
    before, before_bytes = database_state(settings), sqlite_file_bytes(settings)
    session_settings = settings.model_copy(update={"readonly": readonly})
    with MigratorService.open(session_settings, user=user) as session:
        app = MigratorApp(session)
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(app, pilot)
            pressed: list[str] = []
            for mode in ("f2", "f3", "f4", "f5", "f6"):  # d n e l a, which a field would take as text
                await pilot.press(mode)
                await settle(app, pilot)
                pressed += await _press_every_binding(app, pilot, migration.id)
            app.open_monitor(migration.id)
            await settle(app, pilot)
            pressed += await _press_every_binding(app, pilot, migration.id)
    assert len(pressed) > 10
    after = database_state(settings)
    assert without_audit_head(after) == without_audit_head(before)
    new_entries = after["audit"][len(before["audit"]) :]
    assert after["audit"][: len(before["audit"])] == before["audit"]
    assert {operation for _, operation in new_entries} <= {AuditOperation.PERMISSION_DENIED}
    if not new_entries:
        assert sqlite_file_bytes(settings) == before_bytes
