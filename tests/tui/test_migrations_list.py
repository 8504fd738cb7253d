"""The migrations list: every migration with its status in words, the summary, filters, the monitor."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Static

from tests.support.databases import ADMIN, copy_sqlite_workspace, seeded_sqlite_template
from tests.tui.conftest import REAL_USER, settle
from tui_migrator.common.settings import Settings
from tui_migrator.service.facade import MigratorService
from tui_migrator.storage.migration_status import Status
from tui_migrator.tui.app import MigratorApp
from tui_migrator.tui.screens import migrations_list
from tui_migrator.tui.screens.migrations_list import MigrationsScreen

REAL = {"batch_size": 40}
DRY_RUN = {"batch_size": 40, "dry_run": True}


@dataclass(frozen=True)
class Seeded:
    dry_run: str  # started by another operator, through their own service (as another process would)
    rolled_back: str


def _seed(settings: Settings) -> Seeded:
    with MigratorService.open(settings, user=ADMIN) as other_operator:
        other_operator.grant(REAL_USER, "super_admin")
        dry_run = other_operator.start(DRY_RUN)
    with MigratorService.open(settings, user=REAL_USER) as operator:
        real = operator.start(REAL)
        assert real.status is Status.COMPLETED, real.error_message
        operator.rollback(real.id, confirm=True)
    return Seeded(dry_run=dry_run.id, rolled_back=real.id)


@pytest.fixture(scope="module")
def seeded_template(demo_template: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Seeded]:
    """The demo with the two migrations the list shows, built once for the module."""
    return seeded_sqlite_template(demo_template, tmp_path_factory, "migrations-list", _seed)


@pytest.fixture
def workspace(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """A test that lists the seeded migrations starts from a copy of their template, the others
    from the bare demo's."""
    if "seeded" in request.fixturenames:
        root: Path = request.getfixturevalue("seeded_template")[0]
    else:
        root = request.getfixturevalue("demo_template")
    return copy_sqlite_workspace(root, tmp_path)


@pytest.fixture
def seeded(seeded_template: tuple[Path, Seeded]) -> Seeded:
    return seeded_template[1]


async def open_list(app: MigratorApp, pilot: Pilot[None]) -> DataTable[object]:
    await pilot.press("l")
    await settle(app, pilot)
    assert isinstance(app.screen, MigrationsScreen)
    return app.screen.query_one("#migrations-table", DataTable)


def rows(table: DataTable[object]) -> list[list[str]]:
    return [[str(cell) for cell in table.get_row_at(index)] for index in range(table.row_count)]


def ids(table: DataTable[object]) -> list[str]:
    return [row[0] for row in rows(table)]


def text_of(app: MigratorApp, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


def selected_id(table: DataTable[object]) -> str | None:
    return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value


async def wait_until(pilot: Pilot[None], condition: Callable[[], bool], seconds: float = 10.0) -> None:
    for _ in range(int(seconds / 0.05)):
        if condition():
            return
        await pilot.pause(0.05)
    raise AssertionError("the screen did not reach the expected state in time")


async def test_list_shows_every_migration_newest_first_with_status_in_words_and_the_summary(
    app: MigratorApp, seeded: Seeded
) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        table = await open_list(app, pilot)
        shown = rows(table)
        assert [row[0] for row in shown] == [seeded.rolled_back, seeded.dry_run]
        assert shown[0][1] == "rolled back"
        assert shown[1][1] == "completed (dry run)"
        assert text_of(app, "#migrations-summary") == "2 migrations: completed 1 · rolled back 1"
        # The selected migration in full, including who started it.
        assert f"{seeded.rolled_back} — rolled back, started by" in text_of(app, "#migrations-detail")


async def test_status_filter_cycles_in_words_and_narrows_the_rows(app: MigratorApp, seeded: Seeded) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        table = await open_list(app, pilot)
        assert text_of(app, "#migrations-status-filter") == "Status: all"
        await pilot.press("s")
        assert text_of(app, "#migrations-status-filter") == "Status: running"
        assert table.row_count == 0
        await pilot.press("s", "f7")
        assert text_of(app, "#migrations-status-filter") == "Status: completed"
        assert ids(table) == [seeded.dry_run]
        await pilot.press("s", "s", "s", "s")
        assert text_of(app, "#migrations-status-filter") == "Status: rolled back"
        assert ids(table) == [seeded.rolled_back]
        # The summary counts everything, whatever the filter shows.
        assert text_of(app, "#migrations-summary") == "2 migrations: completed 1 · rolled back 1"
        await pilot.press("s")
        assert text_of(app, "#migrations-status-filter") == "Status: all"
        assert table.row_count == 2


async def test_slash_filters_by_text_and_escape_clears_the_filter(app: MigratorApp, seeded: Seeded) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        table = await open_list(app, pilot)
        await pilot.press("slash")
        field = app.screen.query_one("#migrations-filter", Input)
        assert field.has_focus
        await pilot.press(*"dry")
        assert ids(table) == [seeded.dry_run]
        await pilot.press("escape")
        assert field.value == "" and table.has_focus
        assert table.row_count == 2
        # By the operator who started it (the dry run was started by another operator).
        await pilot.press("slash", *ADMIN, "enter")
        assert ids(table) == [seeded.dry_run] and table.has_focus
        await pilot.press("escape", "slash", *"zzz")
        assert table.row_count == 0
        assert "No migration matches" in text_of(app, "#migrations-detail")


async def test_enter_opens_another_operators_migration_in_the_monitor(
    app: MigratorApp, seeded: Seeded
) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        table = await open_list(app, pilot)
        await pilot.press("down")
        assert selected_id(table) == seeded.dry_run
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen.__class__.__name__ == "MonitorScreen"


async def test_refresh_shows_new_migrations_and_keeps_the_cursor_on_the_same_one(
    app: MigratorApp, operator_service: MigratorService, seeded: Seeded
) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        table = await open_list(app, pilot)
        await pilot.press("down")
        assert selected_id(table) == seeded.dry_run
        newer = operator_service.start(DRY_RUN)
        await pilot.press("r")
        await settle(app, pilot)
        assert ids(table) == [newer.id, seeded.rolled_back, seeded.dry_run]
        assert selected_id(table) == seeded.dry_run


async def test_the_list_refreshes_itself_on_a_timer(
    app: MigratorApp, operator_service: MigratorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(migrations_list, "REFRESH_SECONDS", 0.05)
    async with app.run_test(size=(80, 24)) as pilot:
        table = await open_list(app, pilot)
        assert table.row_count == 0
        assert "No migrations yet" in text_of(app, "#migrations-summary")
        started = operator_service.start(DRY_RUN)
        await wait_until(pilot, lambda: ids(table) == [started.id])
        assert text_of(app, "#migrations-summary") == "1 migration: completed 1"


async def test_an_operator_without_a_role_is_told_so_once_and_the_refusal_is_not_polled(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(migrations_list, "REFRESH_SECONDS", 0.05)
    with MigratorService.open(settings, user="nobody") as stranger:
        app = MigratorApp(stranger)
        notes: list[str] = []
        notify = app.notify

        def recording(message: str, **options: Any) -> None:
            notes.append(message)
            notify(message, **options)

        monkeypatch.setattr(app, "notify", recording)
        async with app.run_test(size=(80, 24)) as pilot:
            await open_list(app, pilot)
            assert "'nobody' has no role" in text_of(app, "#migrations-summary")
            refused = [note for note in notes if "so 'list' is refused" in note]
            assert len(refused) == 1 and "operators grant nobody" in refused[0]
            # Proving an absence needs time to pass: ten refresh intervals.
            await pilot.pause(0.5)
    with MigratorService.open(settings, user=ADMIN) as admin:
        refusals = [
            entry
            for entry in admin.audit_entries(limit=None).entries
            if entry.operation == "permission_denied" and entry.details["attemptedOperation"] == "list"
        ]
    # Every refusal is audited, so polling a refusal would fill the trail.
    assert len(refusals) == 1


async def test_the_list_stops_polling_while_another_screen_is_shown(
    app: MigratorApp, operator_service: MigratorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(migrations_list, "REFRESH_SECONDS", 0.05)
    loads: list[None] = []
    list_migrations = operator_service.list_migrations

    def counting(**options: Any) -> Any:
        loads.append(None)
        return list_migrations(**options)

    monkeypatch.setattr(operator_service, "list_migrations", counting)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_list(app, pilot)
        await wait_until(pilot, lambda: len(loads) >= 3)
        await pilot.press("d")
        await settle(app, pilot)
        while_away = len(loads)
        # Proving an absence needs time to pass: ten refresh intervals.
        await pilot.pause(0.5)
        assert len(loads) == while_away
        await pilot.press("l")
        await wait_until(pilot, lambda: len(loads) > while_away)
