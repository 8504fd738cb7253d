"""The estimate screen: the seed's numbers for the shared configuration, and applying its advice."""

from __future__ import annotations

import pytest
from textual.widgets import DataTable, Input, Static

from tests.tui.conftest import capture_notifications, settle
from tui_migrator.common.errors import OperationFailed
from tui_migrator.service.facade import MigratorService
from tui_migrator.tui.app import MigratorApp
from tui_migrator.tui.screens.config_fields import DEFAULT_VALUES
from tui_migrator.tui.screens.estimate import EstimateScreen
from tui_migrator.tui.screens.new_migration import NewMigrationScreen


def table_rows(table: DataTable[object]) -> dict[str, str]:
    return {str(row[0]): str(row[1]) for row in (table.get_row_at(i) for i in range(table.row_count))}


def text(screen: EstimateScreen, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


async def test_estimate_shows_records_time_storage_advice_risk_and_checks_in_words(
    app: MigratorApp, operator_service: MigratorService
) -> None:
    expected = operator_service.estimate({})
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("e")
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, EstimateScreen)
        assert "calibrating" not in text(screen, "#estimate-status")
        summary = text(screen, "#summary-body")
        assert f"Records:       {expected.estimated_records}" in summary
        assert f"Storage:       +{expected.estimated_storage_increase}" in summary
        assert "Time:" in summary and "Can start:     yes" in summary
        categories = table_rows(screen.query_one("#category-table", DataTable))
        assert categories == {
            **{name: str(records) for name, records in expected.by_category.items()},
            "total": str(expected.estimated_records),
        }
        organizations = table_rows(screen.query_one("#organization-table", DataTable))
        assert {name: organizations[name] for name in expected.by_organization} == {
            name: str(records) for name, records in expected.by_organization.items()
        }
        advice = text(screen, "#recommendations-body")
        assert f"Batch size:   {expected.recommendations.optimal_batch_size} (now 100)" in advice
        assert f"Complexity:  {expected.risk_assessment.complexity}" in text(screen, "#risk-body")
        checks = [str(widget.render()) for widget in screen.query("#checks-body Static")]
        assert [line.split()[:2] for line in checks] == [
            ["passed", f"{check.check}:"] for check in expected.preflight_checks
        ]


async def test_apply_recommendation_puts_batch_size_and_concurrency_into_the_form(
    app: MigratorApp, operator_service: MigratorService
) -> None:
    advice = operator_service.estimate({}).recommendations
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("e")
        await settle(app, pilot)
        await pilot.press("t")
        await settle(app, pilot)
        config = app.pending_config
        assert config is not None
        assert (config["batch_size"], config["max_concurrency"]) == (
            advice.optimal_batch_size,
            advice.recommended_concurrency,
        )
        assert isinstance(app.screen, EstimateScreen)  # `a` here applies; it does not open the audit
        assert f"concurrency {advice.recommended_concurrency}" in text(app.screen, "#estimate-status")
        await pilot.press("n")
        await settle(app, pilot)
        form = app.screen
        assert isinstance(form, NewMigrationScreen)
        assert form.query_one("#batch-size", Input).value == str(advice.optimal_batch_size)
        assert form.query_one("#max-concurrency", Input).value == str(advice.recommended_concurrency)


async def test_estimate_follows_the_forms_category_selection(
    app: MigratorApp, operator_service: MigratorService
) -> None:
    demographics = operator_service.plan({}).scope.by_category["DEMOGRAPHICS"]
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("e")
        await settle(app, pilot)
        await pilot.press("n")
        await settle(app, pilot)
        app.screen.query_one("#categories").focus()
        await pilot.press("space")  # selects the first category, DEMOGRAPHICS
        await pilot.press("e")
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, EstimateScreen)
        assert f"Records:       {demographics}" in text(screen, "#summary-body")
        assert table_rows(screen.query_one("#category-table", DataTable))["DEMOGRAPHICS"] == str(demographics)


async def test_r_estimates_the_shared_configuration_again(app: MigratorApp) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("e")
        await settle(app, pilot)
        assert text(app.screen, "#estimate-status").startswith("Estimate for batch 100 ")
        app.pending_config = {**DEFAULT_VALUES, "batch_size": 200}
        await pilot.press("r")
        await settle(app, pilot)
        assert text(app.screen, "#estimate-status").startswith("Estimate for batch 200 ")


async def test_a_failed_estimate_says_so_instead_of_calibrating_forever(
    app: MigratorApp, operator_service: MigratorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(_values: object) -> None:
        raise OperationFailed("Cannot read the table 'demographics'.")

    monkeypatch.setattr(operator_service, "estimate", fail)
    notes = capture_notifications(app, monkeypatch)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("e")
        await settle(app, pilot)
        status = app.screen.query_one("#estimate-status", Static)
        assert status.has_class("-failed")
        assert "Estimate failed" in str(status.render())
        assert any("Cannot read the table" in note for note in notes)
        await pilot.press("t")
        await pilot.pause()
        assert isinstance(app.screen, EstimateScreen)
        assert app.pending_config is None


async def test_a_failed_refresh_clears_the_earlier_results(
    app: MigratorApp, operator_service: MigratorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("e")
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, EstimateScreen)
        assert "Records:" in text(screen, "#summary-body")

        def fail(_values: object) -> None:
            raise OperationFailed("Cannot read the table 'demographics'.")

        monkeypatch.setattr(operator_service, "estimate", fail)
        await pilot.press("r")
        await settle(app, pilot)
        assert "Estimate failed" in text(screen, "#estimate-status")
        assert text(screen, "#summary-body") == ""
        assert screen.query_one("#category-table", DataTable).row_count == 0
