"""The estimate comes from a measured calibration and lands within ±30 % of the real run."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.support.databases import make_settings
from tui_migrator.service.facade import create_demo_service
from tui_migrator.storage.migration_status import Status

ROWS_PER_PATIENT = 8.83


@pytest.mark.slow
def test_estimate_is_within_30_percent_of_the_real_run_on_100k_rows(tmp_path: Path) -> None:
    service, summary = create_demo_service(
        make_settings(tmp_path),
        patients=round(100_000 / ROWS_PER_PATIENT),
        organizations=4,
        seed=7,
        user="alice",
    )
    with service:
        config = {"batch_size": 1000, "max_concurrency": 1}
        estimate = service.estimate(config)
        assert estimate.estimated_records >= 99_000
        assert estimate.calibration.sample_rows >= 500
        started = time.perf_counter()
        record = service.start(config)
        actual = time.perf_counter() - started
    assert record.status is Status.COMPLETED
    error = (estimate.estimated_time_seconds - actual) / actual
    print(
        f"\nestimate {estimate.estimated_time_seconds:.1f} s, real {actual:.1f} s ({100 * error:+.0f}%) "
        f"for {summary.sensitive_records:,} rows"
    )
    assert abs(error) <= 0.30


def test_estimate_is_measured_not_constant(tmp_path: Path) -> None:
    """More rows in scope take proportionally longer; the calibration reports what it measured."""
    service, _ = create_demo_service(
        make_settings(tmp_path), patients=200, organizations=2, seed=3, user="alice"
    )
    with service:
        everything = service.estimate({"batch_size": 100})
        one_category = service.estimate({"batch_size": 100, "data_categories": ["DEMOGRAPHICS"]})
    assert everything.calibration.per_row("encrypt") > 0
    assert everything.estimated_time_seconds > one_category.estimated_time_seconds > 0
    assert everything.estimated_records > one_category.estimated_records
