"""The new-migration form's "load configuration" (ctrl+o or F7): a MigrationConfig file fills
the form as ``start --config FILE`` reads it, and a bad file keeps the dialog open saying what is
wrong, leaving the form as it was."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Checkbox, Input, SelectionList, Static

from tests.tui.conftest import capture_notifications, settle
from tui_migrator.common.config_file import read_config_file
from tui_migrator.common.migration_config import parse_config
from tui_migrator.tui.app import MigratorApp
from tui_migrator.tui.screens.load_config import LoadConfigModal
from tui_migrator.tui.screens.new_migration import NewMigrationScreen

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


async def open_form(app: MigratorApp, pilot: Pilot[None]) -> NewMigrationScreen:
    await pilot.press("n")
    await settle(app, pilot)
    assert isinstance(app.screen, NewMigrationScreen)
    return app.screen


async def load(app: MigratorApp, pilot: Pilot[None], path: Path | str, key: str = "ctrl+o") -> None:
    """Open the dialog with ``key``, give the path and press enter."""
    await pilot.press(key)
    await settle(app, pilot)
    assert isinstance(app.screen, LoadConfigModal)
    app.screen.query_one("#config-path", Input).value = str(path)
    await pilot.press("enter")
    await settle(app, pilot)


def form_values(form: NewMigrationScreen) -> dict[str, object]:
    return {
        "batch_size": form.query_one("#batch-size", Input).value,
        "max_concurrency": form.query_one("#max-concurrency", Input).value,
        "dry_run": form.query_one("#dry-run", Checkbox).value,
        "skip_integrity_checks": form.query_one("#skip-integrity", Checkbox).value,
        "create_backups": form.query_one("#create-backups", Checkbox).value,
        "data_categories": list(form.query_one("#categories", SelectionList).selected),
        "organization_ids": list(form.query_one("#organizations", SelectionList).selected),
    }


async def test_loading_the_production_example_fills_every_field_and_the_shared_config(
    app: MigratorApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    notes = capture_notifications(app, monkeypatch)
    expected = parse_config(read_config_file(EXAMPLES / "production.json")).model_dump(mode="json")
    async with app.run_test(size=(80, 24)) as pilot:
        form = await open_form(app, pilot)
        await load(app, pilot, EXAMPLES / "production.json")
        assert app.screen is form
        assert form_values(form) == {
            "batch_size": "500",
            "max_concurrency": "5",
            "dry_run": False,
            "skip_integrity_checks": False,
            "create_backups": True,
            "data_categories": ["DEMOGRAPHICS", "MOTOR_SYMPTOMS", "MEDICATION_DATA"],
            "organization_ids": [],
        }
        assert app.pending_config == expected
        assert any(f"Loaded {EXAMPLES / 'production.json'}" in note for note in notes), notes


async def test_f7_loads_the_toml_example_into_the_same_configuration_as_the_json_one(
    app: MigratorApp,
) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        form = await open_form(app, pilot)
        await load(app, pilot, EXAMPLES / "production.json")
        from_json = form_values(form)
        await pilot.press("end", "ctrl+u", *"40")
        await load(app, pilot, EXAMPLES / "production.toml", key="f7")
        assert form_values(form) == from_json


async def test_an_organization_the_file_names_is_selected_even_when_the_data_has_none(
    app: MigratorApp,
) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        form = await open_form(app, pilot)
        await load(app, pilot, EXAMPLES / "development.json")
        values = form_values(form)
        assert values["organization_ids"] == ["dev_org"]
        assert (values["batch_size"], values["dry_run"]) == ("50", True)
        assert app.pending_config is not None and app.pending_config["organization_ids"] == ["dev_org"]


async def test_keys_the_file_leaves_out_go_back_to_their_defaults(app: MigratorApp, tmp_path: Path) -> None:
    path = tmp_path / "concurrency.toml"
    path.write_text("maxConcurrency = 3\n")
    async with app.run_test(size=(80, 24)) as pilot:
        form = await open_form(app, pilot)
        defaults = form_values(form)
        await pilot.press("end", "ctrl+u", *"40")
        await load(app, pilot, path)
        assert form_values(form) == {**defaults, "max_concurrency": "3"}


async def test_a_bad_file_keeps_the_dialog_open_with_every_problem_and_the_form_unchanged(
    app: MigratorApp, tmp_path: Path
) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{\n  "batchSize": 0,\n  "dryRun": 1,\n  "batch_size": 3\n}\n')
    async with app.run_test(size=(80, 24)) as pilot:
        form = await open_form(app, pilot)
        before = (form_values(form), app.pending_config)
        await load(app, pilot, path)
        dialog = app.screen
        assert isinstance(dialog, LoadConfigModal)
        shown = str(dialog.query_one("#load-config-error", Static).render())
        assert f"{path}:2: batchSize: must be from 1 to 1000" in shown
        assert f"{path}:3: dryRun: must be true or false, not the number 1; write true." in shown
        assert f"{path}:4: batch_size: not a MigrationConfig key; did you mean batchSize?" in shown
        assert dialog.query_one("#load-config-problems").has_class("-shown")
        # The path stays, to be corrected; esc backs out and the form is as it was.
        assert app.focused is dialog.query_one("#config-path", Input)
        await pilot.press("escape")
        await settle(app, pilot)
        assert app.screen is form
        assert (form_values(form), app.pending_config) == before


async def test_a_file_of_another_kind_is_refused_in_the_dialog(app: MigratorApp, tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("batchSize: 50\n")
    async with app.run_test(size=(80, 24)) as pilot:
        await open_form(app, pilot)
        await load(app, pilot, path)
        assert isinstance(app.screen, LoadConfigModal)
        shown = str(app.screen.query_one("#load-config-error", Static).render())
        assert "must be JSON or TOML" in shown and ".json or .toml" in shown


async def test_load_config_is_a_footer_key_of_the_form(app: MigratorApp) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        form = await open_form(app, pilot)
        shown = {
            binding.id for (_node, binding, enabled, _tooltip) in form.active_bindings.values() if enabled
        }
        assert "new_migration.load_config" in shown
