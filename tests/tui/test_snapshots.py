"""Every screen and modal, rendered at 80×24 on the deterministic world and compared with the
accepted SVG in __snapshots__/. After an intended UI change, look at the new images and accept
them with: ./test tests/tui/test_snapshots.py --snapshot-update
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace

import pytest
import sqlalchemy as sa
from textual.pilot import Pilot

from tests.tui.settling import settled, steady_cursors
from tests.tui.snapshot_world import VIEWER, World
from tui_migrator.storage import rollback_progress
from tui_migrator.storage.tables import migrations_table
from tui_migrator.tui.app import MigratorApp
from tui_migrator.tui.screens import dashboard as dashboard_screen
from tui_migrator.tui.screens import keys as keys_screen
from tui_migrator.tui.screens import migrations_list
from tui_migrator.tui.screens import monitor as monitor_screen

SIZE = (80, 24)
SnapCompare = Callable[..., bool]
# Longer than any test: the screens load once and then hold still.
NEVER_SECONDS = 3600.0


@pytest.fixture(autouse=True)
def no_polling(monkeypatch: pytest.MonkeyPatch) -> None:
    """The world is frozen, so the monitor's and the list's polling would only paint the same
    picture again; but a repaint landing while the picture is taken (a slow, loaded machine
    takes more than their second or two to settle) catches the footer half redrawn."""
    monkeypatch.setattr(monitor_screen, "REFRESH_SECONDS", NEVER_SECONDS)
    monkeypatch.setattr(migrations_list, "REFRESH_SECONDS", NEVER_SECONDS)
    monkeypatch.setattr(dashboard_screen, "REFRESH_SECONDS", NEVER_SECONDS)
    monkeypatch.setattr(keys_screen, "REFRESH_SECONDS", NEVER_SECONDS)


# The world lives at one fixed path: under xdist (--dist loadgroup) its users share one worker.
pytestmark = pytest.mark.xdist_group("snapshot_world")


def then_settle(*steps: Callable[[Pilot], object]) -> Callable[[Pilot], Awaitable[None]]:
    """run_before for snap_compare: let the screen load, run each step, let it load again, then
    hold the input cursors still for the picture."""

    async def run(pilot: Pilot) -> None:
        await settled(pilot)
        for step in steps:
            outcome = step(pilot)
            if isinstance(outcome, Awaitable):
                await outcome
            await settled(pilot)
        steady_cursors(pilot)
        await pilot.pause()

    return run


def keys(*pressed: str) -> Callable[[Pilot], Awaitable[None]]:
    return lambda pilot: pilot.press(*pressed)


def monitor(migration_id: str) -> Callable[[Pilot], object]:
    def open_monitor(pilot: Pilot) -> None:
        assert isinstance(pilot.app, MigratorApp)
        pilot.app.open_monitor(migration_id)

    return open_monitor


def test_dashboard(snap_compare: SnapCompare, shared_world: World) -> None:
    assert snap_compare(MigratorApp(shared_world.service), terminal_size=SIZE, run_before=then_settle())


def test_help(snap_compare: SnapCompare, shared_world: World) -> None:
    app = MigratorApp(shared_world.service)
    assert snap_compare(app, terminal_size=SIZE, run_before=then_settle(keys("question_mark")))


def test_new_migration(snap_compare: SnapCompare, shared_world: World) -> None:
    app = MigratorApp(shared_world.service)
    assert snap_compare(app, terminal_size=SIZE, run_before=then_settle(keys("n")))


def test_new_migration_marks_an_invalid_batch_size_as_typed(
    snap_compare: SnapCompare, shared_world: World
) -> None:
    app = MigratorApp(shared_world.service)
    typed = keys("n", "end", "ctrl+u", "0")
    assert snap_compare(app, terminal_size=SIZE, run_before=then_settle(typed))


def test_new_migration_without_backups_warns(snap_compare: SnapCompare, shared_world: World) -> None:
    app = MigratorApp(shared_world.service)
    to_backups = keys("n", "tab", "tab", "tab", "tab", "space")
    assert snap_compare(app, terminal_size=SIZE, run_before=then_settle(to_backups))


def test_new_migration_sweep_later_warns(snap_compare: SnapCompare, shared_world: World) -> None:
    app = MigratorApp(shared_world.service)
    # Past backups and the three schedule fields: the form's last setting, scrolled into view.
    to_sweep_later = keys("n", *["tab"] * 8, "space")
    assert snap_compare(app, terminal_size=SIZE, run_before=then_settle(to_sweep_later))


def test_confirm_start(snap_compare: SnapCompare, shared_world: World) -> None:
    app = MigratorApp(shared_world.service)
    assert snap_compare(app, terminal_size=SIZE, run_before=then_settle(keys("n"), keys("ctrl+s")))


def test_load_config_shows_what_is_wrong_with_the_file(
    snap_compare: SnapCompare, shared_world: World
) -> None:
    app = MigratorApp(shared_world.service)
    typed = keys(*"nowhere.json", "enter")
    assert snap_compare(app, terminal_size=SIZE, run_before=then_settle(keys("n"), keys("ctrl+o"), typed))


def test_estimate(snap_compare: SnapCompare, shared_world: World) -> None:
    app = MigratorApp(shared_world.service)
    assert snap_compare(app, terminal_size=SIZE, run_before=then_settle(keys("e")))


def test_keys(snap_compare: SnapCompare, shared_world: World) -> None:
    app = MigratorApp(shared_world.service)
    assert snap_compare(app, terminal_size=SIZE, run_before=then_settle(keys("k")))


def test_migrations(snap_compare: SnapCompare, shared_world: World) -> None:
    app = MigratorApp(shared_world.service)
    assert snap_compare(app, terminal_size=SIZE, run_before=then_settle(keys("l")))


def test_migrations_filtered_by_text(snap_compare: SnapCompare, shared_world: World) -> None:
    app = MigratorApp(shared_world.service)
    typed = keys("l", "slash", "r", "o", "l", "l")
    assert snap_compare(app, terminal_size=SIZE, run_before=then_settle(typed))


def test_monitor_of_a_completed_migration_with_failed_records(
    snap_compare: SnapCompare, shared_world: World
) -> None:
    app = MigratorApp(shared_world.service)
    run_before = then_settle(monitor(shared_world.with_failures))
    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_monitor_of_a_rolled_back_migration(snap_compare: SnapCompare, shared_world: World) -> None:
    app = MigratorApp(shared_world.service)
    run_before = then_settle(monitor(shared_world.rolled_back))
    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_failed_records(snap_compare: SnapCompare, shared_world: World) -> None:
    app = MigratorApp(shared_world.service)
    run_before = then_settle(monitor(shared_world.with_failures), keys("f"))
    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_rollback_confirmation(snap_compare: SnapCompare, shared_world: World) -> None:
    app = MigratorApp(shared_world.service)
    run_before = then_settle(monitor(shared_world.completed), keys("r"), keys("m", "i", "g"))
    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_cancel_asks_for_a_reason(snap_compare: SnapCompare, shared_world: World) -> None:
    app = MigratorApp(shared_world.service)
    run_before = then_settle(
        monitor(shared_world.running),
        keys("c"),
        keys(*"Emergency"),  # the dialog opens with the reason focused
    )
    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


@pytest.mark.parametrize("state", ["running", "paused", "cancelled", "failed", "interrupted"])
def test_monitor_of_a_migration_that_is(snap_compare: SnapCompare, shared_world: World, state: str) -> None:
    app = MigratorApp(shared_world.service)
    run_before = then_settle(monitor(getattr(shared_world, state)))
    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_monitor_of_a_migration_being_rolled_back(snap_compare: SnapCompare, shared_world: World) -> None:
    # A rollback of the cancelled migration, under way in another process (its heartbeat is the
    # frozen now); taken away again so the other pictures of the world stay as they are.
    engine = shared_world.service.engine
    under_way = replace(rollback_progress.starting(266, 1), restored_rows=120, table="non_motor_symptoms")
    rollback_progress.write(engine, shared_world.cancelled, under_way)
    try:
        app = MigratorApp(shared_world.service)
        run_before = then_settle(monitor(shared_world.cancelled))
        assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
    finally:
        with engine.begin() as connection:
            connection.execute(
                sa.update(migrations_table)
                .where(migrations_table.c.id == shared_world.cancelled)
                .values(rollback_progress=None)
            )


def test_resume_confirmation(snap_compare: SnapCompare, shared_world: World) -> None:
    app = MigratorApp(shared_world.service)
    run_before = then_settle(monitor(shared_world.interrupted), keys("u"))
    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_audit_with_the_oldest_entry_and_its_proof(snap_compare: SnapCompare, shared_world: World) -> None:
    # The oldest entry: every later hash chains in a migration's measured timings, which vary.
    app = MigratorApp(shared_world.service)
    assert snap_compare(app, terminal_size=SIZE, run_before=then_settle(keys("a"), keys("ctrl+end")))


def test_monitor_as_a_viewer_shows_actions_disabled(snap_compare: SnapCompare, shared_world: World) -> None:
    with shared_world.opened_as(VIEWER) as viewer:
        app = MigratorApp(viewer)
        run_before = then_settle(monitor(shared_world.completed))
        assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_readonly_monitor_hides_actions(snap_compare: SnapCompare, shared_world: World) -> None:
    with shared_world.opened_as("operator", readonly=True) as readonly:
        app = MigratorApp(readonly)
        run_before = then_settle(monitor(shared_world.completed))
        assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


# Without colour (NO_COLOR, or a monochrome terminal) every state must still read: status in
# words, [x] and [ ] on checkboxes, * on selected scope entries, the focused row by its marker.
NO_COLOUR_VIEWS: dict[str, Callable[[World], Callable[[Pilot], object]]] = {
    "new migration": lambda world: keys("n", "tab", "tab", "space"),
    "monitor, running": lambda world: monitor(world.running),
    "migrations": lambda world: keys("l"),
}


@pytest.mark.parametrize("view", list(NO_COLOUR_VIEWS))
def test_without_colour(
    snap_compare: SnapCompare, shared_world: World, view: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app = MigratorApp(shared_world.service)
    assert app.no_color
    run_before = then_settle(NO_COLOUR_VIEWS[view](shared_world))
    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_purge_backups_confirmation(snap_compare: SnapCompare, shared_world: World) -> None:
    app = MigratorApp(shared_world.service)
    run_before = then_settle(monitor(shared_world.completed), keys("b"))
    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_log_view(snap_compare: SnapCompare, shared_world: World) -> None:
    app = MigratorApp(shared_world.service)
    run_before = then_settle(monitor(shared_world.with_failures), keys("g"))
    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_an_error_stays_until_dismissed(snap_compare: SnapCompare, shared_world: World) -> None:
    # A monitor asked for a migration that does not exist: the read fails, and says so in words.
    app = MigratorApp(shared_world.service)
    run_before = then_settle(monitor("migration_20260302_999"))
    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
