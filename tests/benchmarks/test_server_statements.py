"""The peers benchmark's per-statement server time (tests/benchmarks/server_statements.py): the
statements a database ran since the reset, counted by the server, and a plain "not measured"
where the server does not load pg_stat_statements. No timing is asserted: calls and rows are."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.benchmarks.peers import pg_connect
from tests.benchmarks.server_statements import MODULE, SETTINGS, ServerStatements, Statement, statement_lines
from tests.support.postgres_cluster import PostgresCluster, find_bin_dir, has_library

pytestmark = pytest.mark.postgresql


@pytest.fixture(scope="module")
def cluster_with_statistics() -> Iterator[PostgresCluster]:
    bin_dir = find_bin_dir()
    if bin_dir is None or not has_library(bin_dir, MODULE):
        pytest.skip(f"this PostgreSQL server has no {MODULE} module (its contrib modules)")
    cluster = PostgresCluster(bin_dir, settings=SETTINGS).start()
    try:
        yield cluster
    finally:
        cluster.stop()


def test_the_statements_of_one_database_since_the_reset_are_counted(
    cluster_with_statistics: PostgresCluster,
) -> None:
    cluster = cluster_with_statistics
    statements = ServerStatements(lambda: pg_connect(cluster.url("postgres"), autocommit=True))
    assert statements.available, statements.missing
    cluster.create_database("runs")
    with pg_connect(cluster.url("runs"), autocommit=True) as connection:
        connection.execute("CREATE TABLE numbers (n integer)")
        connection.execute("INSERT INTO numbers SELECT generate_series(1, 10)")
    statements.reset()
    with pg_connect(cluster.url("runs"), autocommit=True) as connection:
        for limit in (2, 3, 4):
            connection.execute("SELECT n, n * 2 AS twice FROM numbers ORDER BY n LIMIT %s", (limit,))
    with pg_connect(cluster.url("postgres"), autocommit=True) as elsewhere:
        elsewhere.execute("SELECT 1")

    counted = statements.of_database("runs")
    selects = [s for s in counted if "FROM numbers" in s.text]
    assert len(selects) == 1, counted  # one normalized statement: its constant is $1
    assert selects[0].calls == 3 and selects[0].rows == 2 + 3 + 4
    assert not any("CREATE TABLE" in s.text or "INSERT" in s.text for s in counted), "before the reset"
    assert not any(s.text.strip() == "SELECT $1" for s in counted), "another database's"

    lines = statement_lines(counted, "a test")
    assert lines[0].startswith(f"where the server's time goes (a test; {MODULE}")
    assert any(
        line.split()[:1] == ["3"] and "SELECT … FROM numbers ORDER BY n LIMIT $1" in line for line in lines
    )


def test_a_server_without_the_module_is_said_to_be_unmeasured(postgres_cluster: PostgresCluster) -> None:
    statements = ServerStatements(lambda: pg_connect(postgres_cluster.url("postgres"), autocommit=True))
    assert not statements.available
    assert statements.missing is not None and "not loaded" in statements.missing


def test_a_select_is_shown_by_what_it_reads_not_its_columns() -> None:
    claimed_read = Statement(
        100,
        250.0,
        100_000,
        "SELECT records.id, (SELECT bk.sealed FROM bk WHERE records.id = bk.id) AS held\nFROM records "
        "WHERE records.id > $1 ORDER BY records.id LIMIT $2 FOR UPDATE OF records",
    )
    (line,) = statement_lines([claimed_read], "a test")[2:]
    assert line.split()[:4] == ["100", "250", "2.50", "100,000"]
    assert line.endswith(
        "SELECT … FROM records WHERE records.id > $1 ORDER BY records.id LIMIT $2 FOR UPDATE OF records"
    )
