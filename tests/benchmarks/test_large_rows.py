"""The large-rows benchmark runs end to end on a small table (no timing is asserted)."""

from __future__ import annotations

import re

import pytest

from tests.support.benchmark_runs import run_benchmark
from tests.support.databases import fresh_postgres_database
from tests.support.postgres_cluster import PostgresCluster


@pytest.mark.slow
def test_the_large_rows_benchmark_measures_a_run_whose_reads_are_cut_and_rolls_it_back_exactly() -> None:
    output = run_benchmark("large_rows", "--rows", "40", "--kib", "300", "--batch-size", "100")
    assert "40 rows of two 300-KiB text columns: 23 MiB of values (sqlite)" in output, output
    check_output(output)


@pytest.mark.slow
@pytest.mark.postgresql
def test_the_large_rows_benchmark_runs_on_a_given_postgresql_database(
    postgres_cluster: PostgresCluster,
) -> None:
    with fresh_postgres_database(postgres_cluster) as url:
        output = run_benchmark(
            "large_rows", "--rows", "40", "--kib", "300", "--batch-size", "100", "--db", url
        )
    assert "40 rows of two 300-KiB text columns: 23 MiB of values (postgresql)" in output, output
    check_output(output)


def check_output(output: str) -> None:
    assert re.search(r"^start --batch-size 100 --max-concurrency 4: \d+\.\d\d s$", output, re.MULTILINE), (
        output
    )
    assert re.search(r"the run's process \d+ MiB; its whole tree \d+ MiB at once", output), output
    # 600 KiB a row: 13 rows fit 8 MiB, fewer than the 100 asked for.
    assert "rows of records hold up to 600 KiB: it is read 13 rows at a time at most" in output, output
    assert re.search(
        r"^start's estimate: \d+\.\d s for a migration of \d+\.\d s \([+-]\d+ %\)$", output, re.MULTILINE
    ), output
    assert "rolled back: every row byte for byte as before" in output, output
