"""The batch-size policy and the in-order resume keys, without a database."""

from __future__ import annotations

from tui_migrator.common.migration_config import parse_config
from tui_migrator.engine import batch_size
from tui_migrator.engine.table_pass import ResumeKeys

AUTO = parse_config({"batch_size": "auto"})
FIXED = parse_config({"batch_size": 250})


def test_a_configured_size_is_kept_everywhere() -> None:
    assert batch_size.initial(FIXED) == 250
    assert batch_size.initial(FIXED, running_size=40) == 250
    assert batch_size.steady(FIXED, 0.001) == 250


def test_auto_starts_small_or_where_the_migration_runs_now() -> None:
    assert batch_size.initial(AUTO) == batch_size.AUTO_INITIAL
    assert batch_size.initial(AUTO, running_size=640) == 640


def test_auto_moves_half_way_towards_half_a_second_within_bounds() -> None:
    # 100 rows in 0.1 s: 500 rows would take the target 0.5 s; half way from 100 is 300.
    assert batch_size.adapt(100, rows=100, seconds=0.1) == 300
    assert batch_size.adapt(100, rows=100, seconds=0.0001) == batch_size.AUTO_MAX
    assert batch_size.adapt(10, rows=10, seconds=100.0) == batch_size.AUTO_MIN
    assert batch_size.adapt(123, rows=0, seconds=0.5) == 123


def test_the_estimate_assumes_the_size_auto_settles_at() -> None:
    assert batch_size.steady(AUTO, 0.5 / 400) == 400
    assert batch_size.steady(AUTO, 0.0) == batch_size.AUTO_MAX
    assert batch_size.steady(AUTO, 1.0) == batch_size.AUTO_MIN


def test_the_seed_guideline_by_dataset_size() -> None:
    assert [batch_size.recommended(rows) for rows in (999, 1_000, 10_000, 10_001)] == [100, 500, 500, 1000]


def test_the_resume_key_only_passes_batches_that_all_committed() -> None:
    keys = ResumeKeys()
    first, second, third = (keys.dispatched((n,)) for n in (10, 20, 30))
    assert keys.committed(second) is None  # the first batch is still in flight
    assert keys.committed(first) == (20,)
    assert keys.committed(third) == (30,)
