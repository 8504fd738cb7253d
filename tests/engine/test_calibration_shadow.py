"""The estimate's shadow of a table holds exactly the sampled rows, found by their keys whatever
the keys' types: SQLite's keys as stored (a column of no declared type holds integers, reals,
text and blobs alike), PostgreSQL's in their columns' own types (a real key is not a float8)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from tests.support.databases import BOTH_BACKENDS
from tui_migrator.common.categories import DataCategory
from tui_migrator.engine import calibration_shadow
from tui_migrator.storage.column_storage import reflect
from tui_migrator.storage.mapping import ResolvedColumn, ResolvedTable, Storage

MAPPED = ResolvedTable(
    name="readings",
    category=DataCategory.DEMOGRAPHICS,
    primary_key=("device", "taken"),
    organization_column=None,
    default_organization="org_main",
    columns=(ResolvedColumn("note", "TEXT", True, Storage.IN_PLACE),),
)


@BOTH_BACKENDS
def test_the_shadow_holds_the_sampled_rows_whatever_their_keys(empty_database_url: str) -> None:
    engine = sa.create_engine(empty_database_url)
    sqlite = engine.dialect.name == "sqlite"
    # SQLite: a key column of no declared type keeps each value's own type; PostgreSQL: real.
    keys: list[tuple[Any, Any]] = (
        [(1, 1), (1, 1.5), (1, "1"), (1, b"\x01"), ("a", 0.1), (2.5, "x")]
        if sqlite
        else [("a", 0.1), ("a", 1.1), ("b", 3.3000002), ("c", -0.0), ("d", 1e-30), ("e", 7.0)]
    )
    taken = "" if sqlite else "REAL"
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql(
                f"CREATE TABLE readings (device {'' if sqlite else 'TEXT'}, taken {taken}, note TEXT, "
                "PRIMARY KEY (device, taken))"
            )
            readings = sa.table("readings", sa.column("device"), sa.column("taken"), sa.column("note"))
            connection.execute(
                sa.insert(readings),
                [{"device": device, "taken": when, "note": f"n{n}"} for n, (device, when) in enumerate(keys)],
            )
        with engine.connect() as connection, connection.begin():
            access = reflect(connection, MAPPED)
            rows = connection.execute(access.select_rows()).mappings().all()
            sampled = [row for number, row in enumerate(rows) if number % 2 == 0] + [rows[-1]]
            shadow = calibration_shadow.shadow(connection, access, sampled)
            held = connection.execute(sa.select(shadow.table.c.note)).scalars().all()
            connection.rollback()
    finally:
        engine.dispose()
    assert sorted(held) == sorted({row["note"] for row in sampled})
