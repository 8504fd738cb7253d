"""A table's rows and plaintext rows per organization, as a migration's plan counts them
(scope.organization_counts): the counts of every stored organization value, and on SQLite a
grouping that never carries the table's values along."""

from __future__ import annotations

from collections import Counter

import sqlalchemy as sa

from tests.support.databases import BOTH_BACKENDS
from tui_migrator.common.categories import DataCategory
from tui_migrator.crypto.tokens import TOKEN_PREFIX
from tui_migrator.engine import scope
from tui_migrator.storage.column_storage import reflect
from tui_migrator.storage.mapping import ResolvedColumn, ResolvedTable, Storage

MAPPED = ResolvedTable(
    name="visits",
    category=DataCategory.DEMOGRAPHICS,
    primary_key=("id",),
    organization_column="site",
    default_organization="org_main",
    columns=(
        ResolvedColumn("note", "TEXT", True, Storage.IN_PLACE),
        ResolvedColumn("report", "TEXT", True, Storage.IN_PLACE),
    ),
)
TOKEN = f"{TOKEN_PREFIX}key_1:AAAA"
# (site, note, report): plaintext, tokens, NULLs, and the organization values the one rule
# reads alike ('7' as stored text, NULL and blank for the default).
ROWS = [
    ("7", "plain", None),
    ("7", TOKEN, TOKEN),
    ("7", TOKEN, "plain"),
    ("north", None, None),
    ("north", "x" * 5_000, TOKEN),
    (None, "plain", "plain"),
    (" ", TOKEN, None),
    ("", None, "plain"),
]


@BOTH_BACKENDS
def test_each_organization_value_counts_its_rows_and_those_holding_plaintext(empty_database_url: str) -> None:
    engine = sa.create_engine(empty_database_url)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql(
                "CREATE TABLE visits (id INTEGER PRIMARY KEY, site TEXT, note TEXT, report TEXT)"
            )
            visits = sa.table("visits", *(sa.column(name) for name in ("id", "site", "note", "report")))
            connection.execute(
                sa.insert(visits),
                [
                    {"id": number, "site": site, "note": note, "report": report}
                    for number, (site, note, report) in enumerate(ROWS, start=1)
                ],
            )
        with engine.connect() as connection:
            access = reflect(connection, MAPPED)
            counted = {
                site: (int(rows), int(pending))
                for site, rows, pending in connection.execute(scope.organization_counts(access))
            }
    finally:
        engine.dispose()

    def plaintext(value: str | None) -> bool:
        return value is not None and not value.startswith(TOKEN_PREFIX)

    rows = Counter(site for site, _note, _report in ROWS)
    pending = Counter(site for site, note, report in ROWS if plaintext(note) or plaintext(report))
    assert counted == {site: (rows[site], pending[site]) for site in rows}


def test_sqlite_works_out_plaintext_before_it_groups(tmp_path: object) -> None:
    """Grouped directly, SQLite sorted every row with all its mapped values and looked at them
    after sorting (a copy of the whole table's values: ten times the time on rows of 200 KB);
    the subquery that flags each row is kept apart from the grouping (a co-routine)."""
    engine = sa.create_engine(f"sqlite:///{tmp_path}/plan.db")
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql(
                "CREATE TABLE visits (id INTEGER PRIMARY KEY, site TEXT, note TEXT, report TEXT)"
            )
            access = reflect(connection, MAPPED)
            compiled = scope.organization_counts(access).compile(dialect=connection.dialect)
            parameters = tuple(compiled.params[name] for name in compiled.positiontup or [])
            plan = [
                str(row[-1])
                for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled.string}", parameters)
            ]
    finally:
        engine.dispose()
    assert any(step.startswith("CO-ROUTINE") for step in plan), plan
