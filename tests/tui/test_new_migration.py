"""The new-migration form: counts, inline validation, the start confirmation, and who may start."""

from __future__ import annotations

from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Button, Input, SelectionList, Static

from tests.tui.conftest import REAL_USER, capture_notifications, settle, wait_until
from tui_migrator.common.errors import OperationFailed
from tui_migrator.common.settings import Settings
from tui_migrator.service.facade import MigratorService
from tui_migrator.storage.migration_status import Status
from tui_migrator.tui.app import MigratorApp
from tui_migrator.tui.screens.confirm_start import ConfirmStartModal
from tui_migrator.tui.screens.new_migration import NewMigrationScreen


def shared_config(app: MigratorApp) -> dict[str, Any]:
    """The configuration the form shares with the estimate screen; the form has written one."""
    assert app.pending_config is not None
    return app.pending_config


def prompts(selection_list: SelectionList[str]) -> dict[str, str]:
    return {
        option.value: str(option.prompt)
        for option in (selection_list.get_option_at_index(i) for i in range(selection_list.option_count))
    }


async def open_form(app: MigratorApp, pilot: Pilot[None]) -> NewMigrationScreen:
    await pilot.press("n")
    await settle(app, pilot)
    assert isinstance(app.screen, NewMigrationScreen)
    return app.screen


async def test_form_lists_categories_and_organizations_with_their_record_counts(
    app: MigratorApp, operator_service: MigratorService
) -> None:
    scope = operator_service.plan({}).scope
    async with app.run_test(size=(80, 24)) as pilot:
        form = await open_form(app, pilot)
        categories = prompts(form.query_one("#categories", SelectionList))
        organizations = prompts(form.query_one("#organizations", SelectionList))
        assert set(organizations) == set(scope.by_organization)
        for name, records in scope.by_category.items():
            assert categories[name].split() == [str(records), name]
        for name, records in scope.by_organization.items():
            assert organizations[name].split() == [str(records), name]
        status = str(form.query_one("#counts-status", Static).render())
        assert f"{scope.pending_rows} records" in status


async def test_selecting_a_category_marks_it_in_words_and_in_the_shared_config(app: MigratorApp) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        form = await open_form(app, pilot)
        form.query_one("#categories", SelectionList).focus()
        await pilot.press("space")
        await pilot.pause()
        categories = form.query_one("#categories", SelectionList)
        # The box says it in characters, not in colour alone.
        assert categories.render_line(0).text.startswith("[x]")
        assert categories.render_line(1).text.startswith("[ ]")
        assert shared_config(app)["data_categories"] == ["DEMOGRAPHICS"]


async def test_invalid_batch_size_is_marked_as_typed_and_start_is_refused(
    app: MigratorApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    notes = capture_notifications(app, monkeypatch)
    async with app.run_test(size=(80, 24)) as pilot:
        form = await open_form(app, pilot)
        assert app.focused is form.query_one("#batch-size", Input)
        await pilot.press("end", "ctrl+u", "0")
        await pilot.pause()
        message = form.query_one("#batch-size-message", Static)
        assert message.has_class("-invalid")
        assert "Batch size must be from 1 to 1000" in str(message.render())
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.screen is form
        assert any("Cannot start" in note and "Batch size" in note for note in notes)
        # Fixing the value clears the mark.
        await pilot.press("backspace", "5", "0")
        await pilot.pause()
        assert not message.has_class("-invalid")


async def test_concurrency_out_of_range_is_marked_as_typed(app: MigratorApp) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        form = await open_form(app, pilot)
        await pilot.press("tab", "end", "ctrl+u", "1", "1")
        await pilot.pause()
        message = form.query_one("#max-concurrency-message", Static)
        assert message.has_class("-invalid")
        assert "Concurrency must be from 1 to 10, not 11" in str(message.render())


async def test_unchecking_backups_shows_a_warning_in_words(app: MigratorApp) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        form = await open_form(app, pilot)
        warning = form.query_one("#backups-warning", Static)
        assert not warning.has_class("-shown")
        form.query_one("#create-backups").focus()
        await pilot.press("space")
        await pilot.pause()
        assert warning.has_class("-shown")
        assert "no backups" in str(warning.render())
        assert shared_config(app)["create_backups"] is False


async def test_sweep_later_warns_of_the_plaintext_left_and_the_confirmation_says_it_is_put_off(
    app: MigratorApp,
) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        form = await open_form(app, pilot)
        warning = form.query_one("#sweep-later-warning", Static)
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        assert ", then its sweep" in str(app.screen.query_one("#confirm-estimate", Static).render())
        await pilot.press("escape")
        await pilot.pause()
        assert not warning.has_class("-shown")
        checkbox = form.query_one("#sweep-later")
        checkbox.focus()
        await pilot.press("space")
        await pilot.pause()
        assert "Sweep later: YES" in str(checkbox.render())
        # Shown, and scrolled into view: the panel's last line, below the fold at 80x24.
        assert form.query_one("#settings-panel").region.contains_region(warning.region)
        assert warning.has_class("-shown")
        assert "old plaintext stays" in str(warning.render())
        assert shared_config(app)["sweep_later"] is True
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        modal = app.screen
        assert isinstance(modal, ConfirmStartModal)
        estimate = str(modal.query_one("#confirm-estimate", Static).render())
        assert "; sweep put off (" in estimate and "then its sweep" not in estimate


async def test_ctrl_s_opens_the_confirmation_with_cancel_focused_and_escape_cancels(
    app: MigratorApp, operator_service: MigratorService
) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        form = await open_form(app, pilot)
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        modal = app.screen
        assert isinstance(modal, ConfirmStartModal)
        assert app.focused is modal.query_one("#confirm-cancel", Button)
        summary = str(modal.query_one("#confirm-summary", Static).render())
        assert "Backups:        on" in summary and "Dry run:        no" in summary
        estimate = str(modal.query_one("#confirm-estimate", Static).render())
        assert f"{operator_service.plan({}).scope.pending_rows} in 9 tables" in estimate
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is form
    assert operator_service.list_migrations()[1] == []


async def test_f5_opens_the_confirmation_where_only_enter_starts_and_c_cancels(
    app: MigratorApp, operator_service: MigratorService
) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        form = await open_form(app, pilot)
        await pilot.press("f9")
        await settle(app, pilot)
        modal = app.screen
        assert isinstance(modal, ConfirmStartModal)
        await pilot.press("space")  # a stray key on the focused Cancel starts nothing
        await pilot.pause()
        assert app.screen is modal
        await pilot.press("c")
        await pilot.pause()
        assert app.screen is form
        await pilot.press("f9")
        await settle(app, pilot)
        await pilot.click("#confirm-cancel")
        await pilot.pause()
        assert app.screen is form
    assert operator_service.list_migrations()[1] == []


async def test_enter_in_the_confirmation_starts_the_migration_and_opens_its_monitor(
    app: MigratorApp, operator_service: MigratorService
) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        await open_form(app, pilot)
        await pilot.press("end", "ctrl+u", "5", "0")
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        assert isinstance(app.screen, ConfirmStartModal)
        await pilot.press("enter")
        await wait_until(pilot, lambda: operator_service.list_migrations()[1])
        await wait_until(pilot, lambda: app.screen.__class__.__name__ == "MonitorScreen")
        (record,) = operator_service.list_migrations()[1]
        assert record.config.batch_size == 50
        assert record.created_by == REAL_USER
        final = (Status.COMPLETED, Status.FAILED, Status.CANCELLED, Status.INTERRUPTED)
        await wait_until(pilot, lambda: operator_service.status(record.id).status in final, timeout=60)
        finished = operator_service.status(record.id)
        assert finished.status is Status.COMPLETED, finished.error_message


async def test_a_refused_start_is_notified_and_leaves_the_confirmation_open(
    app: MigratorApp, operator_service: MigratorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*_args: object, **_options: object) -> None:
        raise OperationFailed("Pre-flight check 'locks' failed: demographics is held. Nothing was written.")

    monkeypatch.setattr(operator_service, "start", refuse)
    notes = capture_notifications(app, monkeypatch)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_form(app, pilot)
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        modal = app.screen
        await pilot.press("enter")
        await settle(app, pilot)
        assert app.screen is modal
        assert any("'locks' failed" in note for note in notes)
        assert "Not started" in str(modal.query_one("#confirm-status", Static).render())
        assert app.focused is modal.query_one("#confirm-cancel", Button)
        await pilot.press("c")
        await pilot.pause()
        assert isinstance(app.screen, NewMigrationScreen)


async def test_ctrl_e_estimates_the_forms_configuration(app: MigratorApp) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        await open_form(app, pilot)
        await pilot.press("tab", "end", "ctrl+u", "3")
        await pilot.press("ctrl+e")
        await settle(app, pilot)
        assert app.screen.__class__.__name__ == "EstimateScreen"
        assert shared_config(app)["max_concurrency"] == 3
        status = str(app.screen.query_one("#estimate-status", Static).render())
        assert "concurrency 3" in status


def start_binding_state(app: MigratorApp) -> dict[str, bool]:
    """Key → enabled, for the form's start binding as the footer and help see it."""
    return {
        key: active.enabled
        for key, active in app.screen.active_bindings.items()
        if active.binding.id == "new_migration.start"
    }


async def test_a_viewer_sees_start_disabled_with_the_reason(
    operator_service: MigratorService, settings: Settings
) -> None:
    operator_service.grant("bob", "viewer")
    with MigratorService.open(settings, user="bob") as bob:
        app = MigratorApp(bob)
        async with app.run_test(size=(80, 24)) as pilot:
            form = await open_form(app, pilot)
            assert start_binding_state(app) == {"ctrl+s": False, "f9": False}
            status = form.query_one("#form-status", Static)
            assert status.has_class("-shown")
            assert app.denied_reason and app.denied_reason in str(status.render())
            await pilot.press("ctrl+s")
            await pilot.pause()
            assert app.screen is form


async def test_readonly_hides_start(operator_service: MigratorService, settings: Settings) -> None:
    readonly = settings.model_copy(update={"readonly": True})
    with MigratorService.open(readonly, user=REAL_USER) as service:
        app = MigratorApp(service)
        async with app.run_test(size=(80, 24)) as pilot:
            form = await open_form(app, pilot)
            assert start_binding_state(app) == {}
            assert "read-only" in str(form.query_one("#form-status", Static).render())
            await pilot.press("f9")
            await pilot.pause()
            assert app.screen is form


async def test_escape_leaves_the_field_so_app_keys_work_again(app: MigratorApp) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("n")
        await settle(app, pilot)
        assert app.focused is not None  # a field has the focus: letters type
        await pilot.press("escape", "l")
        await settle(app, pilot)
        assert app.current_mode == "migrations"


async def test_the_total_follows_the_selection_of_categories_and_organizations(
    app: MigratorApp, operator_service: MigratorService
) -> None:
    everything = operator_service.plan({}).scope
    organization = everything.organizations[0]
    both = operator_service.plan(
        {"data_categories": ["DEMOGRAPHICS", "MOTOR_SYMPTOMS"], "organization_ids": [organization]}
    ).scope
    async with app.run_test(size=(80, 24)) as pilot:
        form = await open_form(app, pilot)
        form.query_one("#categories", SelectionList).select("DEMOGRAPHICS")
        form.query_one("#categories", SelectionList).select("MOTOR_SYMPTOMS")
        form.query_one("#organizations", SelectionList).select(organization)
        await pilot.pause()
        status = str(form.query_one("#counts-status", Static).render())
        assert status.startswith(f"{both.pending_rows:,} records to encrypt in this selection"), status
        assert f"(of {everything.pending_rows:,})" in status
        assert both.pending_rows < everything.pending_rows


async def test_the_first_space_in_a_scope_list_selects_its_first_row(app: MigratorApp) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        form = await open_form(app, pilot)
        organizations = form.query_one("#organizations", SelectionList)
        organizations.focus()
        await pilot.press("space")
        await pilot.pause()
        first = organizations.get_option_at_index(0).value
        assert organizations.selected == [first]
        assert shared_config(app)["organization_ids"] == [first]
