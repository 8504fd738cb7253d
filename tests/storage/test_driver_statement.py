"""DriverStatement runs a statement through the driver's executemany and stores exactly what
SQLAlchemy's own executemany stores: same types, same processed values, same row counts."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from tui_migrator.storage.database import (
    DriverStatement,
    create_database_engine,
    fetch_dicts,
    upsert,
)

ROWS = [
    {"id": 1, "name": "a", "at": datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC), "blob": b"\x00\x01", "n": 7},
    {"id": 2, "name": None, "at": datetime(1999, 12, 31, 23, 59, 59), "blob": None, "n": None},
    {"id": 3, "name": "ü" * 3, "at": None, "blob": b"", "n": -1},
]


def table(name: str) -> sa.Table:
    return sa.Table(
        name,
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.Text),
        sa.Column("at", sa.DateTime(timezone=True)),
        sa.Column("blob", sa.LargeBinary),
        sa.Column("n", sa.Numeric),
        sa.Column("resolved", sa.Boolean, default=False),
    )


def stored(connection: sa.Connection, name: str) -> list[tuple[object, ...]]:
    columns = ", ".join(f"typeof({c}), {c}" for c in ("id", "name", "at", "blob", "n", "resolved"))
    return list(connection.exec_driver_sql(f"SELECT {columns} FROM {name} ORDER BY id"))


@pytest.fixture
def engine(tmp_path: Path) -> sa.Engine:
    return create_database_engine(f"sqlite:///{tmp_path / 'statements.db'}")


def test_inserts_upserts_and_updates_store_what_sqlalchemy_stores(engine: sa.Engine) -> None:
    by_driver, by_sqlalchemy = table("by_driver"), table("by_sqlalchemy")
    with engine.begin() as connection:
        for each in (by_driver, by_sqlalchemy):
            each.create(connection)
            rows = [dict(row, resolved=False) for row in ROWS]
            # An upsert over rows that are new, then over the same rows again.
            statement = upsert(connection, each, ["name", "at", "blob", "n"])
            for _ in range(2):
                if each is by_driver:
                    DriverStatement(statement).execute(connection, rows)
                else:
                    connection.execute(statement, rows)
            # An UPDATE with a value of its own besides the bound ones.
            update = (
                sa.update(each)
                .where(each.c.id == sa.bindparam("key"))
                .values(name=sa.bindparam("new_name"), resolved=True)
            )
            changes = [
                {"key": 1, "new_name": "b"},
                {"key": 3, "new_name": None},
                {"key": 99, "new_name": "x"},
            ]
            if each is by_driver:
                matched = DriverStatement(update).execute(connection, changes)
            else:
                matched = connection.execute(update, changes).rowcount
            assert matched == 2
        assert stored(connection, "by_driver") == stored(connection, "by_sqlalchemy")
        assert stored(connection, "by_driver")[0][10:12] == ("integer", 1)
        assert Decimal(str(stored(connection, "by_driver")[0][9])) == 7


def test_shared_values_complete_every_parameter_set_as_if_each_had_them(engine: sa.Engine) -> None:
    """Values the same for every set (a batch's time, its migration) are processed once and
    stored exactly as if each set carried them, wherever they fall in the statement's order."""
    by_driver, by_sqlalchemy = table("shared_driver"), table("shared_sqlalchemy")
    at = datetime(2026, 12, 3, 14, 0, 0, 123456, tzinfo=UTC)
    with engine.begin() as connection:
        for each in (by_driver, by_sqlalchemy):
            each.create(connection)
            rows = [{"id": row["id"], "name": row["name"], "blob": row["blob"]} for row in ROWS]
            shared = {"at": at, "n": Decimal("1.5"), "resolved": True}
            if each is by_driver:
                DriverStatement(sa.insert(each)).execute(connection, rows, shared)
            else:
                connection.execute(sa.insert(each), [{**row, **shared} for row in rows])
        assert stored(connection, "shared_driver") == stored(connection, "shared_sqlalchemy")
        assert len(stored(connection, "shared_driver")) == len(ROWS)
        # Only shared values: every set is just its shared values.
        only = (
            sa.update(by_driver).where(by_driver.c.id == sa.bindparam("key")).values(name=sa.bindparam("new"))
        )
        assert DriverStatement(only).execute(connection, [{"key": 1}, {"key": 2}], {"new": "z"}) == 2
        names = connection.exec_driver_sql("SELECT name FROM shared_driver ORDER BY id").scalars().all()
        assert names == ["z", "z", ROWS[2]["name"]]


def test_sets_with_other_keys_give_only_the_names_asked_for(engine: sa.Engine) -> None:
    """``names``: the sets are taken as they are (a batch's sealed rows, with keys the statement
    does not bind), and only those names are bound, with the shared values, wherever they fall."""
    by_driver, by_sqlalchemy = table("named_driver"), table("named_sqlalchemy")
    at = datetime(2026, 12, 4, 15, 0, 0, 654321, tzinfo=UTC)
    shared = {"at": at, "n": Decimal("2.5"), "resolved": True}
    sets = [{"id": row["id"], "name": row["name"], "other": object(), "more": [1]} for row in ROWS]
    with engine.begin() as connection:
        for each in (by_driver, by_sqlalchemy):
            each.create(connection)
        DriverStatement(sa.insert(by_driver)).execute(connection, sets, shared, names=("id", "name"))
        connection.execute(
            sa.insert(by_sqlalchemy), [{"id": row["id"], "name": row["name"], **shared} for row in sets]
        )
        assert stored(connection, "named_driver") == stored(connection, "named_sqlalchemy")
        assert len(stored(connection, "named_driver")) == len(ROWS)


def test_sets_completed_from_their_rows_update_what_merged_sets_update(engine: sa.Engine) -> None:
    """execute_joined: a guarded UPDATE's new values from one mapping and its guard from the row
    as it was read, without merging them, matches and stores exactly what the merged sets do
    through SQLAlchemy — where the guard's values go to the driver as they are (text), and where
    one needs its bind processor (a DateTime's), which takes the merged way."""
    for guarded, column in (("name", "name"), ("at", "at")):
        by_driver, by_sqlalchemy = table(f"joined_{guarded}"), table(f"merged_{guarded}")
        with engine.begin() as connection:
            for each in (by_driver, by_sqlalchemy):
                each.create(connection)
                connection.execute(sa.insert(each), [dict(row, resolved=False) for row in ROWS])
            read = [dict(row) for row in ROWS]
            read[1] = dict(read[1], **{column: read[0][column]})  # changed since it was read
            new = [{"key": row["id"], "new_name": f"sealed {row['id']}"} for row in ROWS]
            matched = []
            for each in (by_driver, by_sqlalchemy):
                update = (
                    sa.update(each)
                    .where(
                        each.c.id == sa.bindparam("key"),
                        each.c[column].is_not_distinct_from(sa.bindparam("was")),
                    )
                    .values(name=sa.bindparam("new_name"))
                )
                if each is by_driver:
                    matched.append(
                        DriverStatement(update).execute_joined(connection, new, read, {"was": column})
                    )
                else:
                    merged = [{**values, "was": row[column]} for values, row in zip(new, read, strict=True)]
                    matched.append(connection.execute(update, merged).rowcount)
            assert matched == [2, 2]
            assert stored(connection, f"joined_{guarded}") == stored(connection, f"merged_{guarded}")
            names = [row[3] for row in stored(connection, f"joined_{guarded}")]
            assert names == ["sealed 1", ROWS[1]["name"], "sealed 3"]


def test_a_blob_column_takes_its_values_as_they_are_on_sqlite(engine: sa.Engine) -> None:
    """On SQLite a LargeBinary value goes to the driver as it is, without SQLAlchemy's
    processor (a memoryview per value): the bytes stored are the same, and a column declared
    BLOB that holds text in SQLite (which allows it) is guarded and written back as that text,
    where the processor would have failed on it."""
    each = table("blobs")
    with engine.begin() as connection:
        each.create(connection)
        statement = upsert(connection, each, ["blob"])
        driver = DriverStatement(statement)
        driver.execute(connection, [{"id": 1, "blob": b"\x00\xff"}, {"id": 2, "blob": "text in a blob"}])
        compiled = driver._compiled_for(connection.dialect, ("id", "blob"), ())
        assert compiled is not None and "blob" not in compiled.processors
        update = (
            sa.update(each)
            .where(each.c.id == sa.bindparam("key"), each.c.blob.is_not_distinct_from(sa.bindparam("was")))
            .values(blob=sa.bindparam("new"))
        )
        matched = DriverStatement(update).execute(
            connection,
            [
                {"key": 1, "was": b"\x00\xff", "new": b"\x01"},
                {"key": 2, "was": "text in a blob", "new": "other text"},
            ],
        )
        assert matched == 2
        blobs = list(connection.exec_driver_sql("SELECT typeof(blob), blob FROM blobs ORDER BY id"))
        assert blobs == [("blob", b"\x01"), ("text", "other text")]


def test_a_missing_parameter_is_an_error_not_a_null(engine: sa.Engine) -> None:
    each = table("strict")
    with engine.begin() as connection:
        each.create(connection)
        connection.execute(sa.insert(each), [dict(row, resolved=False) for row in ROWS])
        update = sa.update(each).where(each.c.id == sa.bindparam("key")).values(name=sa.bindparam("new_name"))
        with pytest.raises(KeyError):
            DriverStatement(update).execute(connection, [{"key": 1, "new_name": "b"}, {"key": 2}])


def test_rows_fetched_by_the_driver_are_what_sqlalchemy_returns(engine: sa.Engine) -> None:
    each = table("read")
    with engine.begin() as connection:
        each.create(connection)
        connection.execute(sa.insert(each), [dict(row, resolved=row["id"] == 2) for row in ROWS])
        query = (
            sa.select(each.c.id, each.c.name, each.c.at, each.c.blob, (each.c.n > 0).label("positive"))
            .add_columns(each.c.resolved.is_(True).label("done"))
            .where(each.c.at < datetime(2030, 1, 1, tzinfo=UTC), each.c.id > sa.literal(0))
            .order_by(each.c.id)
        )
        expected = [dict(row) for row in connection.execute(query).mappings()]
        assert fetch_dicts(connection, query) == expected
        assert [type(value) for value in expected[0].values()] == [
            type(value) for value in fetch_dicts(connection, query)[0].values()
        ]
        assert len(expected) == 2


@pytest.mark.postgresql
def test_postgresql_rows_fetched_by_the_driver_are_what_sqlalchemy_returns(
    empty_postgres_database: str,
) -> None:
    """Types whose result processors depend on the type the cursor describes (a float column
    read as Decimal, say)."""
    engine = create_database_engine(empty_postgres_database)
    each = sa.Table(
        "read_pg",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.Text),
        sa.Column("at", sa.DateTime(timezone=True)),
        sa.Column("blob", sa.LargeBinary),
        sa.Column("exact", sa.Numeric(12, 4)),
        sa.Column("ratio", sa.Float(asdecimal=True)),
        sa.Column("flag", sa.Boolean),
        sa.Column("extra", sa.JSON),
        sa.Column("tags", sa.ARRAY(sa.Text)),
    )
    rows = [
        {
            "id": number,
            "name": None if number % 3 == 0 else f"ü {number}",
            "at": datetime(2026, 1, 2, 3, 4, number % 60, tzinfo=UTC),
            "blob": bytes([number % 256]) * (number % 4),
            "exact": Decimal(number) / 8,
            "ratio": number / 3,
            "flag": number % 2 == 0,
            "extra": {"n": number, "s": [1, "x"]},
            "tags": ["a", str(number)],
        }
        for number in range(1, 8)
    ]
    try:
        with engine.begin() as connection:
            each.create(connection)
            connection.execute(sa.insert(each), rows)
            query = sa.select(each, (each.c.exact > 0).label("positive")).order_by(each.c.id)
            expected = [dict(row) for row in connection.execute(query).mappings()]
            fetched = fetch_dicts(connection, query)
        assert len(expected) == len(rows)
        assert fetched == expected
        assert [[type(value) for value in row.values()] for row in fetched] == [
            [type(value) for value in row.values()] for row in expected
        ]
        assert isinstance(fetched[0]["ratio"], Decimal)
    finally:
        engine.dispose()
