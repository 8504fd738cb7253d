"""The new-migration form's schedule: maintenance window, time zone and not-before, checked as
typed by MigrationConfig's own validators (the CLI's words), shown in the confirmation, filled by
"load configuration", and stored in the started migration's configuration."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, Static

from tests.tui.conftest import capture_notifications, settle, wait_until
from tui_migrator.common.errors import InvalidMigrationConfig
from tui_migrator.common.migration_config import parse_config
from tui_migrator.common.windows import BEFORE_START, local_zone_name
from tui_migrator.service.facade import MigratorService
from tui_migrator.storage.migration_status import Status
from tui_migrator.tui.app import MigratorApp
from tui_migrator.tui.screens.confirm_start import ConfirmStartModal
from tui_migrator.tui.screens.load_config import LoadConfigModal
from tui_migrator.tui.screens.monitor import MonitorScreen
from tui_migrator.tui.screens.new_migration import NewMigrationScreen

# Far ahead, so the started migration is still waiting for it whenever the suite runs.
NOT_BEFORE = "2099-12-24T01:00"


async def open_form(app: MigratorApp, pilot: Pilot[None]) -> NewMigrationScreen:
    await pilot.press("n")
    await settle(app, pilot)
    assert isinstance(app.screen, NewMigrationScreen)
    return app.screen


async def type_into(form: NewMigrationScreen, pilot: Pilot[None], field_id: str, text: str) -> None:
    """Type ``text`` into the empty field, key by key, as an operator does."""
    field = form.query_one(f"#{field_id}", Input)
    field.focus()
    await pilot.pause()
    assert field.value == ""
    await pilot.press(*text)
    await pilot.pause()
    assert field.value == text


def schedule_fields(form: NewMigrationScreen) -> dict[str, str]:
    return {
        field_id: form.query_one(f"#{field_id}", Input).value
        for field_id in ("window", "timezone", "not-before")
    }


async def test_a_window_zone_and_start_time_typed_in_the_form_reach_the_started_migration(
    app: MigratorApp, operator_service: MigratorService
) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        form = await open_form(app, pilot)
        await type_into(form, pilot, "window", "1:00-5:00")
        await type_into(form, pilot, "timezone", "Europe/Berlin")
        await type_into(form, pilot, "not-before", NOT_BEFORE)
        for field_id in ("window", "timezone", "not-before"):
            assert not form.query_one(f"#{field_id}-message", Static).has_class("-invalid")
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        modal = app.screen
        assert isinstance(modal, ConfirmStartModal)
        summary = str(modal.query_one("#confirm-summary", Static).render())
        assert "Window:         01:00-05:00 daily, Europe/Berlin; paused outside it" in summary
        assert "Not before:     2099-12-24 01:00+01:00 (Europe/Berlin)" in summary
        await pilot.press("enter")
        # Started (once its worker has taken it), the migration's monitor opens: waited for, so
        # the app is not torn down while that screen is still being mounted.
        await wait_until(pilot, lambda: isinstance(app.screen, MonitorScreen))
        await settle(app, pilot)
        (record,) = operator_service.list_migrations()[1]
        try:
            # Stored as the CLI stores `start --window 1:00-5:00 --timezone ... --not-before ...`.
            assert (record.config.window, record.config.timezone, record.config.not_before) == (
                "01:00-05:00",
                "Europe/Berlin",
                NOT_BEFORE,
            )
            assert record.config.to_json_data()["notBefore"] == NOT_BEFORE
            # And its worker honours it: it waits for its scheduled start, writing nothing.
            await wait_until(pilot, lambda: operator_service.status(record.id).pause_reason == BEFORE_START)
            waiting = operator_service.status(record.id)
            assert waiting.stored_status is Status.PAUSED and waiting.encrypted_records == 0
        finally:
            operator_service.cancel(record.id, "test over")


# field id, typed value, the option the CLI names, the name the form's message starts with.
BAD_VALUES = [
    ("window", "25:00-03:00", "--window", "Maintenance window"),
    ("timezone", "Mars/Olympus", "--timezone", "Time zone"),
    ("not-before", "christmas", "--not-before", "Not before"),
]


@pytest.mark.parametrize(("field_id", "typed", "option", "label"), BAD_VALUES)
async def test_a_bad_schedule_value_shows_the_clis_error_naming_the_field_and_starts_nothing(
    app: MigratorApp,
    operator_service: MigratorService,
    monkeypatch: pytest.MonkeyPatch,
    field_id: str,
    typed: str,
    option: str,
    label: str,
) -> None:
    # The CLI's words for the same value (start --window 25:00-03:00 ...): parse_config's.
    field = {"window": "window", "timezone": "timezone", "not-before": "not_before"}[field_id]
    with pytest.raises(InvalidMigrationConfig) as refused:
        parse_config({field: typed})
    cli_words = refused.value.message.split(f"{option}: ", 1)[1].removesuffix(".")
    notes = capture_notifications(app, monkeypatch)
    async with app.run_test(size=(80, 24)) as pilot:
        form = await open_form(app, pilot)
        await type_into(form, pilot, field_id, typed)
        message = form.query_one(f"#{field_id}-message", Static)
        assert message.has_class("-invalid")
        assert str(message.render()).replace("\n", " ") == f"{label} {cli_words}"
        # Scrolled into sight at the foot of the settings panel.
        assert message.region.height > 0 and form.query_one("#settings-panel").region.contains_region(
            message.region
        )
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        assert app.screen is form
        assert any("Cannot start" in note and f"{label} {cli_words}" in note for note in notes), notes
        # Emptying the field means no such setting, which is valid again.
        await pilot.press("end", "ctrl+u")
        await pilot.pause()
        assert not message.has_class("-invalid")
    assert operator_service.list_migrations()[1] == []


async def load(app: MigratorApp, pilot: Pilot[None], path: Path) -> None:
    await pilot.press("ctrl+o")
    await settle(app, pilot)
    assert isinstance(app.screen, LoadConfigModal)
    app.screen.query_one("#config-path", Input).value = str(path)
    await pilot.press("enter")
    await settle(app, pilot)


async def test_a_config_file_with_a_window_fills_the_schedule_fields(
    app: MigratorApp, tmp_path: Path
) -> None:
    scheduled = tmp_path / "night.toml"
    scheduled.write_text(
        f'window = "22:00-4:00"\ntimezone = "America/New_York"\nnotBefore = "{NOT_BEFORE}"\n'
    )
    window_only = tmp_path / "window.json"
    window_only.write_text('{"window": "01:00-05:00", "batchSize": 50}\n')
    async with app.run_test(size=(80, 24)) as pilot:
        form = await open_form(app, pilot)
        assert schedule_fields(form) == {"window": "", "timezone": "", "not-before": ""}
        await load(app, pilot, scheduled)
        assert app.screen is form
        # As `start --config night.toml` reads it: the window written the one way.
        assert schedule_fields(form) == {
            "window": "22:00-04:00",
            "timezone": "America/New_York",
            "not-before": NOT_BEFORE,
        }
        assert app.pending_config is not None
        assert (app.pending_config["window"], app.pending_config["timezone"]) == (
            "22:00-04:00",
            "America/New_York",
        )
        # A file without a zone gets this machine's, as the CLI writes it; keys it leaves out
        # go back to none.
        await load(app, pilot, window_only)
        assert schedule_fields(form) == {
            "window": "01:00-05:00",
            "timezone": local_zone_name(),
            "not-before": "",
        }
        assert app.pending_config is not None and app.pending_config["not_before"] is None
