"""The estimate-accuracy benchmark (tests/benchmarks/estimate_accuracy.py) runs end to end on a
small demo, on SQLite and on a throwaway PostgreSQL cluster, and prints the estimate beside the
run, the calibration and the run's phases; over both datasets and several concurrencies it sums
the errors up. No figure is asserted."""

from __future__ import annotations

import re

import pytest

from tests.support.benchmark_runs import run_benchmark


@pytest.mark.parametrize("where", [[], pytest.param(["--postgres"], marks=pytest.mark.postgresql)])
def test_it_prints_the_estimate_beside_the_run(where: list[str]) -> None:
    output = run_benchmark("estimate_accuracy", "--rows", "300", *where)
    assert re.search(r"estimate \d+\.\d s; the migration took \d+\.\d s \([+-]\d+%\)", output), output
    assert re.search(r"storage increase estimated \d+%, measured -?\d+%", output), output
    assert "calibration: {'sampleRows': " in output
    assert re.search(r"the run's phases: .*batch_processing \d+\.\d\d s", output), output


def test_over_both_datasets_and_concurrencies_it_sums_the_errors_up() -> None:
    output = run_benchmark(
        "estimate_accuracy", "--rows", "300", "--dataset", "both", "--max-concurrency", "1,2"
    )
    for dataset in ("demo", "records"):
        for concurrency in (1, 2):
            assert re.search(
                rf"^{dataset}, round 1: [\d,]+ rows, batch 1000, concurrency {concurrency}: estimate ",
                output,
                re.MULTILINE,
            ), output
    assert re.search(
        r"^estimate against the migration, 4 runs: demo c1 [+-]\d+%, demo c2 ", output, re.MULTILINE
    )
    assert re.search(r"^within ±15%: \d of 4; median [+-]\d+%, largest [+-]\d+%$", output, re.MULTILINE), (
        output
    )
