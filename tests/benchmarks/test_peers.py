"""The peers benchmark (tests/benchmarks/peers.py) runs end to end on a few hundred rows: every
contender's line, the ratios as numbers, where the time goes. No timing is asserted: the numbers
are the machine's."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

import tui_migrator
from tests.benchmarks.peers import CONTENDERS, RATIOS, compile_the_tool
from tests.support import benchmark_runs
from tests.support.databases import fresh_postgres_database
from tests.support.postgres_cluster import PostgresCluster

ROWS = 300


def run_benchmark(*arguments: str) -> str:
    return benchmark_runs.run_benchmark("peers", "--rows", str(ROWS), "--repeat", "1", *arguments)


def check_output(output: str, *, postgres: bool) -> None:
    names = set()
    for contender in CONTENDERS:
        line = re.compile(
            rf"^{re.escape(contender.label)} +\d+\.\d\d +[\d,]+ +\d+ +\d+\.\d +\d+\.\d\d$", re.MULTILINE
        )
        if not contender.runs_on(postgres):
            assert not line.search(output), contender.label
            continue
        assert line.search(output), f"no line for {contender.label!r} in:\n{output}"
        names.add(contender.name)
    for label, numerator, denominator in RATIOS:
        if {numerator, denominator} <= names:
            assert re.search(rf"^{re.escape(label)}: \d+\.\d\d$", output, re.MULTILINE), (
                f"{label!r} in:\n{output}"
            )
    # The estimate each tool run started with, against the migration's time.
    assert re.search(r"^  tool: estimated \d+\.\d s for a \d+\.\d s migration", output, re.MULTILINE), output
    assert "where the time goes" in output
    assert re.search(r"^  batch_processing +\d+\.\d\d s$", output, re.MULTILINE), output
    # PostgreSQL: the server's time per statement, or why it was not measured (a server that
    # does not load pg_stat_statements, as the suite's does not).
    assert bool(re.search(r"^where the server's time goes", output, re.MULTILINE)) is postgres, output
    backend = "PostgreSQL" if postgres else "SQLite"
    assert re.search(rf"backend {backend} ", output), output
    assert "the tool's bytecode compiled before timing" in output, output
    assert re.search(
        r"^disk: a 4 KiB write made durable \(fdatasync\) in \d+\.\d\d ms", output, re.MULTILINE
    ), output


def test_the_tool_is_timed_with_its_bytecode_compiled_as_installed() -> None:
    """Every module the tool's processes import has its bytecode where Python looks for it, so
    no timed process compiles the tool (PYTHONDONTWRITEBYTECODE or not)."""
    compile_the_tool()

    sources = sorted(Path(tui_migrator.__file__).parent.rglob("*.py"))
    assert len(sources) > 100
    missing = [s for s in sources if not Path(importlib.util.cache_from_source(str(s))).is_file()]
    assert not missing, missing


@pytest.mark.slow
def test_the_benchmark_runs_every_contender_on_sqlite() -> None:
    check_output(run_benchmark(), postgres=False)


@pytest.mark.slow
@pytest.mark.postgresql
def test_the_benchmark_runs_every_contender_on_a_given_postgresql_server(
    postgres_cluster: PostgresCluster,
) -> None:
    with fresh_postgres_database(postgres_cluster) as url:
        check_output(run_benchmark("--db", url), postgres=True)
