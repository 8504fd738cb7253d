"""Every screen and modal, rendered at 80×24 on the deterministic world and compared with the
accepted SVG in __snapshots__/. After an intended UI change, look at the new images and accept
them with: ./test tests/tui/test_snapshots.py --snapshot-update
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from textual.pilot import Pilot

from tests.tui.snapshot_world import VIEWER, World
from tui_migrator.tui.app import MigratorApp
from tui_migrator.tui.screens.monitor_modals import CancelModal

SIZE = (80, 24)
SnapCompare = Callable[..., bool]


async def settled(pilot: Pilot) -> None:
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def then_settle(*steps: Callable[[Pilot], object]) -> Callable[[Pilot], Awaitable[None]]:
    """run_before for snap_compare: let the screen load, run each step, let it load again."""

    async def run(pilot: Pilot) -> None:
        await settled(pilot)
        for step in steps:
            outcome = step(pilot)
            if isinstance(outcome, Awaitable):
                await outcome
            await settled(pilot)

    return run


def keys(*pressed: str) -> Callable[[Pilot], Awaitable[None]]:
    return lambda pilot: pilot.press(*pressed)


def monitor(migration_id: str) -> Callable[[Pilot], object]:
    return lambda pilot: pilot.app.open_monitor(migration_id)  # type: ignore[attr-defined]


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


def test_confirm_start(snap_compare: SnapCompare, shared_world: World) -> None:
    app = MigratorApp(shared_world.service)
    assert snap_compare(app, terminal_size=SIZE, run_before=then_settle(keys("n"), keys("ctrl+s")))


def test_estimate(snap_compare: SnapCompare, shared_world: World) -> None:
    app = MigratorApp(shared_world.service)
    assert snap_compare(app, terminal_size=SIZE, run_before=then_settle(keys("e")))


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
    # Only a live migration can be cancelled, and the world holds none (a live one would not
    # stand still for a snapshot), so the dialog is opened over a finished migration's monitor.
    app = MigratorApp(shared_world.service)
    run_before = then_settle(
        monitor(shared_world.completed),
        lambda pilot: pilot.app.push_screen(CancelModal(shared_world.completed)),
        keys("shift+tab", *"Emergency"),  # the dialog opens on "Keep running"
    )
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
