"""A TUI left open for hours stays small and answers keys without long collector pauses: the
footer keeps none of the keys it replaced, a monitor rebuilds them only when what they offer
changes, and the launcher's app freezes its start-up objects out of the collector's passes."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import Header, Static
from textual.widgets._footer import FooterKey

from tests.tui.conftest import more_polls, opened_monitor, wait_until
from tui_migrator.service.facade import MigratorService
from tui_migrator.tui.app import MigratorApp
from tui_migrator.tui.screen_frame import KeyFooter
from tui_migrator.tui.screens.monitor import MonitorScreen

REBUILDS = 10
VISITS = 8


class _FooterApp(App[None]):
    """A screen whose one key comes and goes, as a monitor's do with the migration's state."""

    BINDINGS = [Binding("p", "pause", "Pause"), Binding("c", "cancel", "Cancel")]

    def __init__(self) -> None:
        super().__init__()
        self.pausable = True

    def compose(self) -> ComposeResult:
        yield Static("keys")
        yield KeyFooter()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return self.pausable if action == "pause" else True

    def action_pause(self) -> None: ...

    def action_cancel(self) -> None: ...


def _removed(kind: type[Widget]) -> int:
    gc.collect()
    return sum(1 for node in gc.get_objects() if isinstance(node, kind) and not node.is_attached)


async def test_the_footer_keeps_none_of_the_keys_it_replaced() -> None:
    app = _FooterApp()
    async with app.run_test() as pilot:
        footer = app.screen.query_one(KeyFooter)
        await pilot.pause()
        # This footer's keys only: counting every detached key in the process also counted the
        # keys of other tests' apps still on their way out (a busy machine's full run did).
        replaced: list[weakref.ref[FooterKey]] = []
        for rebuild in range(REBUILDS):
            app.pausable = rebuild % 2 == 1
            replaced += [weakref.ref(key) for key in footer.query(FooterKey)]
            before = footer.query(FooterKey).first()
            app.screen.refresh_bindings()
            await wait_until(pilot, lambda before=before: not before.is_attached)
            await pilot.pause()
        del before
        gc.collect()
        # Each rebuild replaced every key; Textual's Footer kept every one it removed.
        assert [key for key in (ref() for ref in replaced) if key is not None] == []
        assert len(footer.query(FooterKey)) == (1 if not app.pausable else 2)


async def test_closed_screens_leave_no_headers_behind(
    app: MigratorApp, operator_service: MigratorService
) -> None:
    record = operator_service.start({"batch_size": 40})

    async def visit_monitor(pilot: Pilot[None]) -> None:
        app.open_monitor(record.id)
        await wait_until(pilot, lambda: isinstance(app.screen, MonitorScreen))
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, MonitorScreen))
        await pilot.pause()

    async with app.run_test(size=(100, 32)) as pilot:
        for _visit in range(2):
            await visit_monitor(pilot)
        before = _removed(Header)
        for _visit in range(VISITS):
            await visit_monitor(pilot)
        # Textual's Header watches the app's title, which never changes: each closed monitor's
        # header stayed on the app's watchers, one more a visit. (The last closed screens' may
        # still be on their way out, on a busy machine one or two.)
        assert _removed(Header) - before < VISITS // 2


async def test_a_monitor_rebuilds_its_keys_only_when_what_they_offer_changes(
    app: MigratorApp, operator_service: MigratorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = operator_service.start({"batch_size": 40})  # completed: nothing changes from here
    rebuilt: list[KeyFooter] = []
    recompose = KeyFooter.recompose

    async def counted(footer: KeyFooter) -> None:
        rebuilt.append(footer)
        await recompose(footer)

    monkeypatch.setattr(KeyFooter, "recompose", counted)
    async with app.run_test(size=(100, 32)) as pilot:
        screen = await opened_monitor(app, pilot, record.id)
        after_first = len(rebuilt)
        # Each poll shows a record read afresh: two more polls, the same state.
        await more_polls(pilot, screen, 2)
        assert len(rebuilt) == after_first
        # What the footer offers is the completed migration's: rollback, not cancel.
        keys = {key.action for key in screen.query(FooterKey)}
        assert "rollback" in keys and "cancel" not in keys


@pytest.fixture
def unfrozen() -> Iterator[None]:
    """Whatever a test freezes goes back to the collector after it."""
    assert gc.get_freeze_count() == 0
    yield
    gc.unfreeze()


async def test_the_launchers_app_freezes_its_start_up_objects(
    operator_service: MigratorService, unfrozen: None
) -> None:
    app = MigratorApp(operator_service, freeze_after_start=True)
    async with app.run_test() as pilot:
        await pilot.pause()
        # Every object the app and its first screen are made of is out of the collector's passes.
        assert gc.get_freeze_count() > 0


async def test_an_app_opened_by_a_test_freezes_nothing(
    operator_service: MigratorService, unfrozen: None
) -> None:
    app = MigratorApp(operator_service)
    async with app.run_test() as pilot:
        await pilot.pause()
        assert gc.get_freeze_count() == 0
