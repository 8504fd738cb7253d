"""A start right after an estimate of the same scope uses that estimate's calibration instead
of sampling the tables a second time; any other start measures afresh."""

from __future__ import annotations

import pytest

from tests.support.migration_helpers import FAST
from tui_migrator.engine import cpu_pool
from tui_migrator.engine import estimate as estimating
from tui_migrator.service.facade import MigratorService
from tui_migrator.storage.migration_status import Status


@pytest.fixture
def calibrations(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """One entry per calibration sampled."""
    taken: list[int] = []
    real = estimating.calibrate

    def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        taken.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(estimating, "calibrate", counted)
    return taken


def test_a_start_after_an_estimate_of_the_same_scope_samples_nothing(
    service: MigratorService, calibrations: list[int]
) -> None:
    estimate = service.estimate(FAST)
    assert len(calibrations) == 1
    record = service.start(FAST)
    assert len(calibrations) == 1
    assert record.status is Status.COMPLETED
    # The start's figure is the estimate's arithmetic on the same calibration.
    assert round(record.estimated_seconds or 0, 1) == estimate.estimated_time_seconds


def test_an_estimate_of_another_scope_is_not_reused(
    service: MigratorService, calibrations: list[int]
) -> None:
    service.estimate(FAST)
    service.estimate({**FAST, "data_categories": ["DEMOGRAPHICS"]})  # kept last
    service.start(FAST)
    assert len(calibrations) == 3


def test_a_stale_estimate_is_not_reused(
    service: MigratorService, calibrations: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    service.estimate(FAST)
    monkeypatch.setattr(estimating, "FRESH_SECONDS", -1)  # every kept calibration is stale
    service.start(FAST)
    assert len(calibrations) == 2


def test_the_fork_server_starts_after_the_calibration_never_beside_it(
    service: MigratorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The workers' fork server imports for half a second: beside the start's calibration it
    made the sample short (cli/launch.py). A start here samples first, then starts it."""
    events: list[str] = []
    real = estimating.calibrate

    def calibrating(*args, **kwargs):  # type: ignore[no-untyped-def]
        events.append("calibration")
        return real(*args, **kwargs)

    monkeypatch.setattr(estimating, "calibrate", calibrating)
    monkeypatch.setattr(cpu_pool, "start_process_server", lambda concurrency, rows: events.append("server"))
    record = service.start({**FAST, "max_concurrency": 2})
    assert record.status is Status.COMPLETED
    assert events[:2] == ["calibration", "server"]
