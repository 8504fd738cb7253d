"""The keys screen: each organization's data keys and the master key's fingerprint; `r` rotates
(every organization, or the one under the cursor) in a detached worker and opens the rotation's
monitor, which offers no rollback; refusals are notified; a viewer sees rotation disabled with
the reason and writes nothing; --readonly hides it."""

from __future__ import annotations

import pytest
from textual.pilot import Pilot
from textual.widgets import Button, DataTable, Static

from tests.support.db_state import database_state
from tests.tui.conftest import REAL_USER, capture_notifications, settle, wait_until
from tui_migrator.common.settings import Settings
from tui_migrator.service.facade import MigratorService
from tui_migrator.storage.keyring import KEY_STATUS_ACTIVE, KEY_STATUS_RETIRED
from tui_migrator.storage.migration_status import MigrationKind, Status
from tui_migrator.storage.operators import Action
from tui_migrator.tui.app import MigratorApp
from tui_migrator.tui.screens.keys import KeysScreen, RotateKeysModal
from tui_migrator.tui.screens.monitor import MonitorScreen

ENCRYPT = {"batch_size": 50, "data_categories": ["DEMOGRAPHICS"]}
# A rotation of the small demo takes seconds; this only bounds a hung worker.
ROTATION_TIMEOUT = 120.0


def text_of(app: MigratorApp, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


def rows(app: MigratorApp) -> list[tuple[str, str, str, str, str]]:
    """Key id, organization, generation, status and who made it, as the table shows them."""
    table = app.screen.query_one("#keys-table", DataTable)
    shown = [[str(cell) for cell in table.get_row_at(index)] for index in range(table.row_count)]
    return [(key_id, organization, gen, status, by) for key_id, organization, gen, status, _at, by in shown]


def rotate_binding_state(app: MigratorApp) -> dict[str, bool]:
    return {
        key: active.enabled
        for key, active in app.screen.active_bindings.items()
        if active.binding.id == "keys.rotate"
    }


async def open_keys(app: MigratorApp, pilot: Pilot[None]) -> KeysScreen:
    await pilot.press("k")
    await settle(app, pilot)
    assert isinstance(app.screen, KeysScreen)
    return app.screen


async def rotation_from_its_monitor(
    app: MigratorApp, pilot: Pilot[None], service: MigratorService
) -> MonitorScreen:
    """The monitor the dialog opened, once the rotation it follows has ended and it shows so."""
    await wait_until(pilot, lambda: isinstance(app.screen, MonitorScreen))
    monitor = app.screen
    assert isinstance(monitor, MonitorScreen)
    await wait_until(
        pilot, lambda: service.status(monitor.migration_id).status.is_finished, timeout=ROTATION_TIMEOUT
    )
    await wait_until(pilot, lambda: monitor.record is not None and monitor.record.is_finished)
    return monitor


async def test_the_screen_lists_each_organizations_key_and_the_master_key_fingerprint(
    app: MigratorApp, operator_service: MigratorService
) -> None:
    operator_service.start(ENCRYPT)
    infos = operator_service.data_keys()
    assert infos, "the migration made keys"
    async with app.run_test(size=(100, 30)) as pilot:
        await open_keys(app, pilot)
        assert rows(app) == [
            (info.key_id, info.organization_id, "1", KEY_STATUS_ACTIVE, REAL_USER) for info in infos
        ]
        assert operator_service.master_key_fingerprint in text_of(app, "#keys-master")
        organizations = len({info.organization_id for info in infos})
        assert text_of(app, "#keys-summary") == (
            f"{len(infos)} data keys of {organizations} organizations: {len(infos)} active"
        )
        assert rotate_binding_state(app) == {"r": True}
        assert not app.screen.query_one("#keys-access", Static).has_class("-shown")


async def test_rotate_all_starts_a_rotation_whose_monitor_opens_and_which_retires_generation_1(
    app: MigratorApp, operator_service: MigratorService
) -> None:
    operator_service.start(ENCRYPT)
    organizations = sorted({info.organization_id for info in operator_service.data_keys()})
    async with app.run_test(size=(100, 30)) as pilot:
        await open_keys(app, pilot)
        await pilot.press("r")
        await settle(app, pilot)
        dialog = app.screen
        assert isinstance(dialog, RotateKeysModal)
        assert app.focused is dialog.query_one("#rotate-cancel", Button)
        assert f"every organization with keys ({', '.join(organizations)})" in text_of(app, "#rotate-choices")
        await pilot.press("tab", "tab")  # past "Rotate one" to "Rotate all"
        assert app.focused is dialog.query_one("#rotate-all", Button)
        await pilot.press("enter")

        monitor = await rotation_from_its_monitor(app, pilot, operator_service)
        record = operator_service.status(monitor.migration_id)
        assert record.status is Status.COMPLETED, record.error_message
        assert record.kind is MigrationKind.ROTATION
        assert record.config.organization_ids == organizations
        assert record.created_by == REAL_USER
        assert f"{record.id} (key rotation) — COMPLETED" in text_of(app, "#monitor-title")
        assert "re-sealed" in text_of(app, "#monitor-alerts")
        # Nothing to roll back or sweep: neither is offered.
        assert monitor.check_action("rollback", ()) is False
        assert monitor.check_action("sweep", ()) is False

        await pilot.press("escape")  # the monitor pops; the keys screen reads the keys again
        await settle(app, pilot)
        assert isinstance(app.screen, KeysScreen)
        shown = {(organization, gen): status for _id, organization, gen, status, _by in rows(app)}
        assert shown == {
            **{(organization, "1"): KEY_STATUS_RETIRED for organization in organizations},
            **{(organization, "2"): KEY_STATUS_ACTIVE for organization in organizations},
        }


async def test_rotate_one_rotates_only_the_organization_under_the_cursor(
    app: MigratorApp, operator_service: MigratorService
) -> None:
    operator_service.start(ENCRYPT)
    infos = operator_service.data_keys()
    chosen = infos[1].organization_id
    async with app.run_test(size=(100, 30)) as pilot:
        await open_keys(app, pilot)
        await pilot.press("down", "r")
        await settle(app, pilot)
        dialog = app.screen
        assert isinstance(dialog, RotateKeysModal)
        assert f"Rotate one: {chosen} (the key under the cursor)" in text_of(app, "#rotate-choices")
        await pilot.press("tab", "enter")

        monitor = await rotation_from_its_monitor(app, pilot, operator_service)
        record = operator_service.status(monitor.migration_id)
        assert record.status is Status.COMPLETED, record.error_message
        assert record.config.organization_ids == [chosen]
    generations = {
        (info.organization_id, info.generation): info.status for info in operator_service.data_keys()
    }
    assert generations[(chosen, 2)] == KEY_STATUS_ACTIVE
    assert generations[(chosen, 1)] == KEY_STATUS_RETIRED
    assert [key for key in generations if key[1] == 2] == [(chosen, 2)]


async def test_cancel_in_the_dialog_rotates_nothing(
    app: MigratorApp, operator_service: MigratorService, settings: Settings
) -> None:
    operator_service.start(ENCRYPT)
    before = database_state(settings)
    async with app.run_test(size=(100, 30)) as pilot:
        keys = await open_keys(app, pilot)
        await pilot.press("r")
        await settle(app, pilot)
        assert isinstance(app.screen, RotateKeysModal)
        await pilot.press("enter")  # on the focused Cancel
        await settle(app, pilot)
        assert app.screen is keys
        await pilot.press("r")
        await settle(app, pilot)
        await pilot.press("c")
        await settle(app, pilot)
        assert app.screen is keys
    assert database_state(settings) == before


async def test_a_refused_rotation_is_notified_and_leaves_the_dialog_open(
    app: MigratorApp, operator_service: MigratorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing was encrypted yet, so the service refuses: there is no key to rotate."""
    notes = capture_notifications(app, monkeypatch)
    async with app.run_test(size=(100, 30)) as pilot:
        keys = await open_keys(app, pilot)
        assert rows(app) == []
        assert text_of(app, "#keys-summary").startswith("No data keys yet")
        await pilot.press("r")
        await settle(app, pilot)
        dialog = app.screen
        assert isinstance(dialog, RotateKeysModal)
        assert "(none yet)" in text_of(app, "#rotate-choices")
        await pilot.press("tab", "enter")  # "Rotate all", the only other button
        await settle(app, pilot)
        assert app.screen is dialog
        [note] = notes
        assert note.startswith("Starting the key rotation failed: This database has no data keys yet")
        assert "Nothing was rotated" in text_of(app, "#rotate-status")
        assert app.focused is dialog.query_one("#rotate-cancel", Button)
        await pilot.press("c")
        await settle(app, pilot)
        assert app.screen is keys
    assert operator_service.list_migrations(limit=None)[1] == []


async def test_a_viewer_sees_rotate_disabled_with_the_reason_and_r_writes_nothing(
    operator_service: MigratorService, settings: Settings
) -> None:
    operator_service.start(ENCRYPT)
    operator_service.grant("bob", "viewer")
    before = database_state(settings)
    with MigratorService.open(settings, user="bob") as bob:
        reason = bob.denied_reason(Action.MANAGE_KEYS)
        assert reason and "only a super_admin may rotate keys" in reason
        app = MigratorApp(bob)
        async with app.run_test(size=(100, 30)) as pilot:
            keys = await open_keys(app, pilot)
            assert len(rows(app)) == len(operator_service.data_keys())  # a viewer may read them
            assert rotate_binding_state(app) == {"r": False}
            assert app.screen.query_one("#keys-access", Static).has_class("-shown")
            assert text_of(app, "#keys-access") == f"Key rotation is not available: {reason}."
            await pilot.press("r")
            await settle(app, pilot)
            assert app.screen is keys
    # Not even a refusal to audit: the disabled key asked the service nothing.
    assert database_state(settings) == before


async def test_readonly_hides_rotate_and_says_why(
    operator_service: MigratorService, settings: Settings
) -> None:
    operator_service.start(ENCRYPT)
    with MigratorService.open(settings.model_copy(update={"readonly": True}), user=REAL_USER) as service:
        app = MigratorApp(service)
        async with app.run_test(size=(100, 30)) as pilot:
            keys = await open_keys(app, pilot)
            assert rotate_binding_state(app) == {}
            assert "read-only" in text_of(app, "#keys-access")
            await pilot.press("r")
            await settle(app, pilot)
            assert app.screen is keys
