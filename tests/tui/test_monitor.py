"""The monitor follows a migration live, and cancel, pause, rollback and sweep work from the
keyboard."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from textual.widgets import Input, Static

from tests.support.migration_helpers import cancel_unless_completed, exiting_at_once, raw_dump
from tests.tui.conftest import capture_notifications, opened_monitor, settle, wait_until
from tui_migrator.common.settings import Settings
from tui_migrator.engine import detached
from tui_migrator.engine.log_files import log_path
from tui_migrator.service.facade import MigratorService
from tui_migrator.storage import rollback_progress
from tui_migrator.storage.migration_status import Status
from tui_migrator.storage.tables import utc_now
from tui_migrator.tui.app import MigratorApp
from tui_migrator.tui.screens.monitor import MonitorScreen
from tui_migrator.tui.screens.monitor_modals import (
    CancelModal,
    PurgeBackupsModal,
    ResumeModal,
    RollbackModal,
    SweepModal,
)


def text_of(app: MigratorApp, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


async def test_monitor_shows_a_completed_migration_with_its_report(
    app: MigratorApp, operator_service: MigratorService
) -> None:
    record = operator_service.start({"batch_size": 40})
    async with app.run_test(size=(100, 32)) as pilot:
        await opened_monitor(app, pilot, record.id)
        assert "COMPLETED" in text_of(app, "#monitor-title")
        assert "✔ done   8 Completion Reporting" in text_of(app, "#stages")
        assert f"encrypted {record.encrypted_records:,}" in text_of(app, "#counts")
        assert "COMPLETED:" in text_of(app, "#monitor-alerts")


async def test_monitor_shows_the_migrations_warnings(
    app: MigratorApp, operator_service: MigratorService
) -> None:
    """What the start warned of (backups off, here) and what the run added stays in sight."""
    record = operator_service.start({"batch_size": 40, "create_backups": False})
    assert record.warnings
    async with app.run_test(size=(100, 32)) as pilot:
        await opened_monitor(app, pilot, record.id)
        shown = " ".join(text_of(app, "#monitor-alerts").split())
        for warning in record.warnings:
            assert f"Warning: {warning}" in shown


async def test_cancel_from_the_monitor_asks_a_reason_and_stops_the_worker(
    busy_service: MigratorService,
) -> None:
    operator_service, app = busy_service, MigratorApp(busy_service)
    record = operator_service.start({"batch_size": 1, "max_concurrency": 1}, detach=True)
    async with app.run_test(size=(100, 32)) as pilot:
        app.open_monitor(record.id)
        screen = app.screen
        assert isinstance(screen, MonitorScreen)
        await wait_until(pilot, lambda: screen.record is not None and screen.record.status is Status.RUNNING)
        await pilot.press("c")
        assert isinstance(app.screen, CancelModal)
        # Typed at once, the reason lands in its field; an empty Enter first keeps the dialog
        # open and cancels nothing.
        assert app.focused is not None and app.focused.id == "reason"
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, CancelModal)
        assert not operator_service.status(record.id).cancel_requested
        await pilot.press("E")
        field = app.screen.query_one("#reason", Input)
        assert field.value == "E"
        field.value = "Emergency maintenance required"  # the rest at once: the run is short
        await pilot.press("enter")
        await wait_until(
            pilot, lambda: screen.record is not None and screen.record.status is Status.CANCELLED
        )
    cancelled = operator_service.status(record.id)
    assert cancelled.cancel_reason == "Emergency maintenance required"
    assert cancelled.encrypted_records < cancelled.total_records


async def test_rollback_needs_the_typed_migration_id(
    app: MigratorApp, operator_service: MigratorService
) -> None:
    before = raw_dump(operator_service.engine)
    record = operator_service.start({"batch_size": 40})
    async with app.run_test(size=(100, 32)) as pilot:
        app.open_monitor(record.id)
        screen = app.screen
        assert isinstance(screen, MonitorScreen)
        await wait_until(pilot, lambda: screen.record is not None)
        await pilot.press("r")
        assert isinstance(app.screen, RollbackModal)
        await pilot.press(*"migration_wrong", "enter")
        assert isinstance(app.screen, RollbackModal)  # a wrong id does nothing
        app.screen.query_one("#typed", Input).value = record.id
        await pilot.press("enter")
        await settle(app, pilot)
        await wait_until(pilot, lambda: operator_service.status(record.id).status is Status.ROLLED_BACK)
    assert raw_dump(operator_service.engine) == before


async def test_sweep_from_the_monitor_reports_what_it_proved(
    app: MigratorApp, operator_service: MigratorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = operator_service.start({"batch_size": 40, "data_categories": ["DEMOGRAPHICS"]})
    seen = capture_notifications(app, monkeypatch)
    async with app.run_test(size=(100, 32)) as pilot:
        app.open_monitor(record.id)
        screen = app.screen
        assert isinstance(screen, MonitorScreen)
        await wait_until(pilot, lambda: screen.record is not None)
        # SQLite swept it when it completed; the monitor says so, and what it proved.
        assert "no plaintext left" in text_of(app, "#monitor-sweep")
        await pilot.press("s")  # runs in a detached process; the monitor tells its outcome
        await settle(app, pilot)
        await wait_until(pilot, lambda: any("Sweep of" in t and "no plaintext left" in t for t in seen))
    swept = [
        entry.operation
        for entry in operator_service.audit_entries(limit=None, migration_id=record.id).entries
        if entry.operation == "data_migration_swept"
    ]
    assert len(swept) == 2


async def test_a_sweep_whose_process_never_began_is_told_not_awaited(
    app: MigratorApp, operator_service: MigratorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``s`` whose detached process exits before it could begin: the operator is told so, with
    its log, and the monitor waits for no outcome from it (a later sweep is not taken for it)."""
    record = operator_service.start({"batch_size": 40, "data_categories": ["DEMOGRAPHICS"]})

    monkeypatch.setattr(detached, "spawn", exiting_at_once)
    seen = capture_notifications(app, monkeypatch)
    async with app.run_test(size=(100, 32)) as pilot:
        screen = await opened_monitor(app, pilot, record.id)
        await pilot.press("s")
        await wait_until(pilot, lambda: any("exited (code 3) before it began" in text for text in seen))
        await settle(app, pilot)
        assert not screen._sweep_asked
    [told] = [text for text in seen if "before it began" in text]
    assert str(log_path(operator_service.settings, record.id)) in told


async def test_sweep_confirmation_needs_the_typed_migration_id(app: MigratorApp) -> None:
    answers: list[bool | None] = []
    async with app.run_test(size=(100, 32)) as pilot:
        app.push_screen(SweepModal("migration_20260302_001"), answers.append)
        await pilot.pause()
        await pilot.press(*"migration_wrong", "enter")
        assert isinstance(app.screen, SweepModal) and answers == []
        app.screen.query_one("#typed", Input).value = "migration_20260302_001"
        await pilot.press("enter")
        await pilot.pause()
    assert answers == [True]


async def test_viewer_sees_actions_disabled(settings: Settings, operator_service: MigratorService) -> None:
    record = operator_service.start({"batch_size": 40})
    operator_service.grant("bob", "viewer")
    with MigratorService.open(settings, user="bob") as bob:
        app = MigratorApp(bob)
        async with app.run_test(size=(100, 32)) as pilot:
            app.open_monitor(record.id)
            screen = app.screen
            assert isinstance(screen, MonitorScreen)
            await wait_until(pilot, lambda: screen.record is not None)
            assert screen.check_action("rollback", ()) is None  # shown, disabled
            assert "only a super_admin" in (app.denied_reason or "")
            await pilot.press("r")
            assert not isinstance(app.screen, RollbackModal)


@pytest.mark.parametrize("key", ["c", "p", "r"])
async def test_readonly_hides_mutating_actions(
    settings: Settings, operator_service: MigratorService, key: str
) -> None:
    record = operator_service.start({"batch_size": 40})
    with MigratorService.open(
        settings.model_copy(update={"readonly": True}), user=operator_service.user
    ) as readonly:
        app = MigratorApp(readonly)
        async with app.run_test(size=(100, 32)) as pilot:
            app.open_monitor(record.id)
            screen = app.screen
            assert isinstance(screen, MonitorScreen)
            await wait_until(pilot, lambda: screen.record is not None)
            action = {"c": "cancel", "p": "pause", "r": "rollback"}[key]
            assert screen.check_action(action, ()) is False


async def test_resume_from_the_monitor_continues_a_cancelled_migration_in_a_background_worker(
    busy_service: MigratorService,
) -> None:
    operator_service, app = busy_service, MigratorApp(busy_service)
    record = operator_service.start({"batch_size": 1, "max_concurrency": 1}, detach=True)
    async with app.run_test(size=(100, 32)) as pilot:
        app.open_monitor(record.id)
        screen = app.screen
        assert isinstance(screen, MonitorScreen)
        await wait_until(pilot, lambda: screen.record is not None and screen.record.status is Status.RUNNING)
        operator_service.cancel(record.id, "Maintenance window over", wait_seconds=30)
        await wait_until(
            pilot, lambda: screen.record is not None and screen.record.status is Status.CANCELLED
        )
        assert "resume with u" in text_of(app, "#monitor-alerts")
        await pilot.press("u")
        assert isinstance(app.screen, ResumeModal)
        await pilot.press("enter")
        await wait_until(
            pilot,
            lambda: screen.record is not None and screen.record.status in (Status.RUNNING, Status.COMPLETED),
        )
    resumed = operator_service.status(record.id)
    assert resumed.status in (Status.RUNNING, Status.COMPLETED)
    if resumed.can_cancel:
        cancel_unless_completed(operator_service, record.id, "test over", wait_seconds=30)


async def test_the_command_palette_offers_the_monitors_actions_that_work_now(
    app: MigratorApp, operator_service: MigratorService
) -> None:
    record = operator_service.start({"batch_size": 40})
    async with app.run_test(size=(100, 32)) as pilot:
        app.open_monitor(record.id)
        screen = app.screen
        assert isinstance(screen, MonitorScreen)
        await wait_until(pilot, lambda: screen.record is not None)
        titles = {command.title for command in app.get_system_commands(screen)}
        assert {"Roll back", "Failed", "Sweep"} <= titles
        # Not in this state: a completed migration without failures is neither resumed nor cancelled.
        assert not {"Resume", "Cancel", "Pause/continue"} & titles
        rollback = next(c for c in app.get_system_commands(screen) if c.title == "Roll back")
        await rollback.callback()
        await pilot.pause()
        assert isinstance(app.screen, RollbackModal)


async def test_purge_backups_from_the_monitor_needs_the_typed_id_and_rollback_still_restores(
    app: MigratorApp, operator_service: MigratorService
) -> None:
    before = raw_dump(operator_service.engine)
    record = operator_service.start({"batch_size": 40})
    assert any(table.backup_table for table in record.tables)
    async with app.run_test(size=(100, 32)) as pilot:
        app.open_monitor(record.id)
        screen = app.screen
        assert isinstance(screen, MonitorScreen)
        await wait_until(pilot, lambda: screen.record is not None)
        await pilot.press("b")
        assert isinstance(app.screen, PurgeBackupsModal)
        await pilot.press("enter")
        assert isinstance(app.screen, PurgeBackupsModal)  # nothing typed: nothing dropped
        app.screen.query_one("#typed", Input).value = record.id
        await pilot.press("enter")
        await settle(app, pilot)
        await wait_until(
            pilot, lambda: not any(t.backup_table for t in operator_service.status(record.id).tables)
        )
        await wait_until(
            pilot, lambda: screen.record is not None and not screen.check_action("purge_backups", ())
        )
    operator_service.rollback(record.id, confirm=True)  # by decryption alone now
    assert raw_dump(operator_service.engine) == before


async def test_a_stopped_rollback_says_why_or_where_to_look(
    app: MigratorApp, operator_service: MigratorService
) -> None:
    """A rollback whose process went silent: where to look (its log, g) and that r runs it
    again; one refused before it began (see service/undo.py): the refusal itself."""
    record = operator_service.start({"batch_size": 40})
    long_ago = utc_now() - timedelta(seconds=rollback_progress.STALE_SECONDS + 5)
    silent = replace(
        rollback_progress.starting(record.encrypted_records, len(record.tables), ticket="t0k3n"),
        heartbeat_at=long_ago,
    )
    rollback_progress.write(operator_service.engine, record.id, silent)
    async with app.run_test(size=(160, 40)) as pilot:
        await opened_monitor(app, pilot, record.id)
        await wait_until(pilot, lambda: "ROLLBACK STOPPED" in text_of(app, "#monitor-alerts"))
        shown = text_of(app, "#monitor-alerts")
        assert "could not start: g shows its log" in shown and "press r to run it again" in shown

        refused = replace(silent, error="Another rollback, purge-backups or sweep is running.")
        rollback_progress.write(operator_service.engine, record.id, refused)
        await wait_until(
            pilot, lambda: "purge-backups or sweep is running" in text_of(app, "#monitor-alerts")
        )
        assert "g shows its log" not in text_of(app, "#monitor-alerts")
