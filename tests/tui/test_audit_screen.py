"""The audit screen: entries newest first, one in full with its proof, filtering and verification."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Static

from tests.tui.conftest import settle
from tui_migrator.service.facade import MigratorService
from tui_migrator.storage.audit import AuditEntry
from tui_migrator.tui.app import MigratorApp
from tui_migrator.tui.screens.audit import AuditScreen


@pytest.fixture
def migrated(operator_service: MigratorService) -> Iterator[str]:
    """A completed migration, so the trail holds entries with details and a migration id."""
    yield operator_service.start({"batch_size": 40}).id


async def open_audit(app: MigratorApp, pilot: Pilot[None]) -> DataTable[object]:
    await pilot.press("a")
    await settle(app, pilot)
    assert isinstance(app.screen, AuditScreen)
    return app.screen.query_one("#audit-entries", DataTable)


def first_cells(table: DataTable[object]) -> list[str]:
    return [str(table.get_row_at(index)[0]) for index in range(table.row_count)]


def migration_cells(table: DataTable[object]) -> list[str]:
    return [str(table.get_row_at(index)[5]) for index in range(table.row_count)]


def text_of(app: MigratorApp, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


def selected_key(table: DataTable[object]) -> str | None:
    return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value


def all_entries(service: MigratorService) -> list[AuditEntry]:
    return service.audit_entries(limit=None).entries


async def test_audit_screen_lists_entries_newest_first_with_results_in_words(
    app: MigratorApp, operator_service: MigratorService, migrated: str
) -> None:
    expected = all_entries(operator_service)
    async with app.run_test(size=(80, 24)) as pilot:
        table = await open_audit(app, pilot)
        assert first_cells(table) == [str(entry.seq) for entry in expected]
        newest = [str(cell) for cell in table.get_row_at(0)]
        # On SQLite a completed migration is swept at once: that is the newest entry.
        assert newest[2:] == ["data_migration_swept", expected[0].user_id, "ok", migrated]
        assert text_of(app, "#audit-count") == f"{len(expected)} entries"


async def test_selecting_an_entry_shows_all_its_fields_and_its_proof(
    app: MigratorApp, operator_service: MigratorService, migrated: str
) -> None:
    started = next(
        entry for entry in all_entries(operator_service) if entry.operation == "data_migration_started"
    )
    async with app.run_test(size=(80, 24)) as pilot:
        table = await open_audit(app, pilot)
        await pilot.press(*["down"] * table.get_row_index(started.entry_id))
        assert selected_key(table) == started.entry_id
        detail = text_of(app, "#audit-detail")
        assert started.proof in detail
        assert "cryptographicProof" in detail
        assert started.entry_hash in detail and started.previous_hash in detail
        assert f"migration  {migrated}" in detail
        assert '"batchSize": 40' in detail


async def test_slash_filters_entries_by_migration_id(
    app: MigratorApp, operator_service: MigratorService, migrated: str
) -> None:
    of_migration = [entry for entry in all_entries(operator_service) if entry.migration_id == migrated]
    async with app.run_test(size=(80, 24)) as pilot:
        table = await open_audit(app, pilot)
        await pilot.press("slash", *migrated[-6:], "enter")
        assert first_cells(table) == [str(entry.seq) for entry in of_migration]
        assert set(migration_cells(table)) == {migrated}
        await pilot.press("escape")
        assert app.screen.query_one("#audit-filter", Input).value == ""
        assert table.row_count > len(of_migration)


async def test_v_verifies_an_intact_chain(app: MigratorApp, operator_service: MigratorService) -> None:
    total = len(all_entries(operator_service))
    async with app.run_test(size=(80, 24)) as pilot:
        await open_audit(app, pilot)
        await pilot.press("v")
        await settle(app, pilot)
        verified = text_of(app, "#audit-verification")
        assert verified.startswith(f"Chain verified: {total} entries intact. ")
        assert verified.endswith("anchored outside the database, all present.")
        # F7 does the same; the verification before it was audited, so there is one more entry.
        await pilot.press("f7")
        await settle(app, pilot)
        assert text_of(app, "#audit-verification").startswith(f"Chain verified: {total + 1} entries intact. ")


async def test_v_on_a_broken_chain_names_the_problem_and_marks_the_broken_entry(
    app: MigratorApp, operator_service: MigratorService, migrated: str
) -> None:
    with operator_service.engine.begin() as connection:
        connection.exec_driver_sql("DROP TRIGGER tm_audit_no_update")
        connection.exec_driver_sql("DROP TRIGGER tm_audit_no_delete")
        connection.exec_driver_sql("UPDATE tm_audit SET user_id = 'mallory' WHERE seq = 2")
    second = next(entry for entry in all_entries(operator_service) if entry.seq == 2)
    async with app.run_test(size=(80, 24)) as pilot:
        table = await open_audit(app, pilot)
        # A filter that hides entry 2 is cleared so the broken entry can be shown.
        await pilot.press("slash", *migrated[-6:], "enter", "v")
        await settle(app, pilot)
        status = text_of(app, "#audit-verification")
        assert status.startswith("CHAIN BROKEN: Audit entry #2 (audit_000002) was altered")
        assert selected_key(table) == second.entry_id
        assert str(table.get_row_at(table.cursor_row)[0]) == "2 BROKEN"
        assert first_cells(table).count("2 BROKEN") == 1
        assert "BROKEN" in text_of(app, "#audit-detail")
        assert "mallory" in text_of(app, "#audit-detail")


async def test_a_reload_that_finds_nothing_new_writes_nothing_and_the_cursor_stays(
    app: MigratorApp, operator_service: MigratorService, migrated: str, table_clears: list[str | None]
) -> None:
    """r reloads the entries (and coming back to the screen does): where none is new the table is
    not cleared and filled anew, so the operator's place in it stays; a new entry is shown with
    the cursor still on the entry it was on."""
    cleared = table_clears
    async with app.run_test(size=(80, 24)) as pilot:
        table = await open_audit(app, pilot)
        await pilot.press("down", "down")
        chosen = selected_key(table)
        shown = first_cells(table)
        fills = cleared.count("audit-entries")

        await pilot.press("r")
        await settle(app, pilot)
        assert cleared.count("audit-entries") == fills
        assert first_cells(table) == shown
        assert selected_key(table) == chosen

        operator_service.grant("vera", "viewer")  # one more entry, the newest
        await pilot.press("r")
        await settle(app, pilot)
        assert cleared.count("audit-entries") == fills + 1
        assert len(first_cells(table)) == len(shown) + 1
        assert selected_key(table) == chosen
