"""PostgreSQL's one-statement-per-batch writes: the batch's UPDATE and its backups find each row by
the version it was read at and leave alone a row changed since, looking each up by its place
whatever the table's size; a batch's text arrays and the row metadata carry any text exactly."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.row_metadata_items import recorded_items
from tui_migrator.engine import backup
from tui_migrator.storage import database as database_module
from tui_migrator.storage import row_metadata
from tui_migrator.storage.column_storage import (
    ROW_VERSION,
    TableAccess,
    batch_parameters,
    reflect,
)
from tui_migrator.storage.database import create_database_engine, text_array, text_rows, text_rows_parameters
from tui_migrator.storage.mapping import parse_mapping, resolve_mapping
from tui_migrator.storage.tables import metadata as tool_metadata
from tui_migrator.storage.tables import row_metadata_table
from tui_migrator.storage.text_arrays import text_array_literal, text_array_text

pytestmark = pytest.mark.postgresql

MAPPING = {
    "tables": [
        {
            "name": "patients",
            "category": "DEMOGRAPHICS",
            "primary_key": "id",
            "organization_column": "org",
            "columns": ["name", "born"],
        }
    ]
}
ROWS = [
    (1, "org_1", "Ada", "1815-12-10"),
    (2, "org_1", "Grace", "1906-12-09"),
    (3, "org_2", "Edsger", "1930-05-11"),
]


@pytest.fixture
def engine(empty_postgres_database: str) -> Iterator[sa.Engine]:
    engine = create_database_engine(empty_postgres_database)
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "CREATE TABLE patients (id integer PRIMARY KEY, org text, name text, born date, "
            "born__tm_token text)"
        )
        connection.exec_driver_sql(
            "INSERT INTO patients (id, org, name, born) VALUES "
            + ", ".join(f"({id_}, '{org}', '{name}', '{born}')" for id_, org, name, born in ROWS)
        )
    yield engine
    engine.dispose()


def table_access(engine: sa.Engine) -> TableAccess:
    mapping = resolve_mapping(parse_mapping(MAPPING, source="test"), engine, source="test")
    with engine.connect() as connection:
        return reflect(connection, mapping.tables[0])


def read_with_versions(connection: sa.Connection, access: TableAccess) -> list[dict[str, Any]]:
    query = access.select_rows().add_columns(*access.row_version_columns())
    return [dict(row) for row in connection.execute(query).mappings()]


def stored(engine: sa.Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as connection:
        return list(
            connection.exec_driver_sql(
                "SELECT id, name, born::text, born__tm_token FROM patients ORDER BY id"
            )
        )


def test_a_batch_update_puts_each_token_where_sealing_puts_it_and_nothing_else(engine: sa.Engine) -> None:
    access = table_access(engine)
    statement = access.update_by_row_version()
    assert statement is not None
    with engine.begin() as connection:
        rows = read_with_versions(connection, access)
        sealed = [
            (rows[0], {"name": "tmenc:v1:a", "born": "tmenc:v1:b"}),
            (rows[2], {"name": "tmenc:v1:c"}),
        ]
        updated = connection.execute(statement, batch_parameters(access, sealed)).rowcount
    assert updated == 2
    assert stored(engine) == [
        # Text in place; a date's token in its companion, the date set to NULL.
        (1, "tmenc:v1:a", None, "tmenc:v1:b"),
        # Not in the batch: untouched.
        (2, "Grace", "1906-12-09", None),
        # Only its name sealed: the date stays as it was.
        (3, "tmenc:v1:c", "1930-05-11", None),
    ]


def test_a_row_changed_since_it_was_read_is_not_written(engine: sa.Engine) -> None:
    access = table_access(engine)
    statement = access.update_by_row_version()
    assert statement is not None
    with engine.connect() as batch, batch.begin():
        rows = read_with_versions(batch, access)
        # The application writes row 2 between the batch's read and its write.
        with engine.begin() as application:
            application.exec_driver_sql("UPDATE patients SET name = 'Grace H.' WHERE id = 2")
        sealed = [(row, {"name": f"tmenc:v1:{row['id']}"}) for row in rows]
        updated = batch.execute(statement, batch_parameters(access, sealed)).rowcount
    # The engine sees 2 of 3 and reads the batch again (batches.RowsChanged).
    assert updated == 2
    assert [row[1] for row in stored(engine)] == ["tmenc:v1:1", "Grace H.", "tmenc:v1:3"]


def backups(engine: sa.Engine, table: sa.Table) -> list[tuple[Any, ...]]:
    with engine.connect() as connection:
        return [
            (key, bytes(sealed)) for key, sealed in connection.execute(sa.select(table).order_by(table.c.id))
        ]


def written_backups(rows: list[dict[str, Any]], marker: int) -> list[dict[str, Any]]:
    """A batch's sealed rows as write_in holds them: each row as read, with a stand-in backup of
    bytes no text encoding would keep."""
    return [
        {
            "row": row,
            "backup": {"id": row["id"], backup.SEALED_COLUMN: bytes([marker, row["id"] % 256, 0, 255, 10])},
        }
        for row in rows
    ]


def test_a_batchs_backups_go_in_by_one_statement_with_each_key_from_its_row(engine: sa.Engine) -> None:
    access = table_access(engine)
    with engine.begin() as connection:
        table = backup.create_backup_table(connection, access, "tm_bk_test_patients")
        rows = read_with_versions(connection, access)
        assert all(row[ROW_VERSION[0]] and row[ROW_VERSION[1]] for row in rows)
        written = written_backups(rows, 1)
        statement = backup.insert_by_row_version(access, table)
        assert statement.execute(connection, backup.batch_by_row_version(written)) == len(rows)
    assert backups(engine, table) == [
        (item["row"]["id"], item["backup"][backup.SEALED_COLUMN]) for item in written
    ]


def test_a_batch_meeting_rows_backed_up_before_replaces_their_backups(engine: sa.Engine) -> None:
    """A batch's backups go in by a plain INSERT; where some of its rows have a backup already
    (one the application's write made out of date, see seal_batch) that fails inside its
    savepoint and the batch is made again with ON CONFLICT: the fresh backups replace them,
    the others are added, and the transaction commits."""
    access = table_access(engine)
    statement = None
    with engine.begin() as connection:
        table = backup.create_backup_table(connection, access, "tm_bk_test_patients")
        statement = backup.insert_by_row_version(access, table)
        rows = read_with_versions(connection, access)
        assert statement.execute(connection, backup.batch_by_row_version(written_backups(rows[:1], 1))) == 1
    with engine.begin() as connection:
        assert statement.execute(connection, backup.batch_by_row_version(written_backups(rows, 2))) == 3
    assert backups(engine, table) == [(row["id"], bytes([2, row["id"], 0, 255, 10])) for row in rows]


def test_a_row_changed_since_it_was_read_gets_no_backup_from_the_batch(engine: sa.Engine) -> None:
    """Its version is gone: the statement inserts fewer rows than the batch holds, which the
    batch takes as rows changed (it is read again)."""
    access = table_access(engine)
    with engine.begin() as connection:
        table = backup.create_backup_table(connection, access, "tm_bk_test_patients")
    with engine.connect() as connection:
        rows = read_with_versions(connection, access)
    with engine.begin() as application:
        application.exec_driver_sql("UPDATE patients SET name = 'Edsger W.' WHERE id = 3")
    with engine.begin() as connection:
        statement = backup.insert_by_row_version(access, table)
        assert statement.execute(connection, backup.batch_by_row_version(written_backups(rows, 1))) == 2
    assert [key for key, _sealed in backups(engine, table)] == [1, 2]


# Any text PostgreSQL can hold (no NUL, no lone surrogate): quotes, backslashes, braces, commas,
# spaces and the word NULL among it, all of which an array's text form must keep as they are.
ANY_TEXT = (
    st.text(st.characters(exclude_characters="\x00", exclude_categories=["Cs"]), max_size=40)
    | st.sampled_from(["NULL", "null", "", " ", "{}", '"', "\\", '\\"', "a,b", "{a}", " x "])
    # The split form's delimiter and NULL marker (storage.text_arrays), and values that hold them.
    | st.text(st.sampled_from(["\x1f", "\x1e", "\x1d", "\x01", "\x7f", "a", "{"]), max_size=5)
)
# Every control character a split form could cut at: values holding all of them take the literal.
ALL_CONTROL_CHARACTERS = "".join(chr(code) for code in (*range(1, 0x20), 0x7F))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(items=recorded_items(ANY_TEXT))
def test_row_metadata_stores_any_text_exactly(engine: sa.Engine, items: list[dict[str, Any]]) -> None:
    with engine.begin() as connection:
        tool_metadata.create_all(connection, tables=[row_metadata_table])
        connection.execute(sa.delete(row_metadata_table))
        at = datetime(2026, 12, 3, 14, 0, tzinfo=UTC)
        # Recorded twice: the second replaces the first.
        row_metadata.record(connection, "m1", "patients", [dict(item, digest="old") for item in items], at)
        row_metadata.record(connection, "m1", "patients", items, at)
        found = row_metadata.sealed_rows(connection, "m1", "patients", [item["row_key"] for item in items])
    assert found == {
        item["row_key"]: (item["digest"], item["sealed_columns"], item["tokens_digest"], item["key_id"])
        for item in items
    }


def test_a_batch_meeting_rows_recorded_before_replaces_them_and_keeps_its_transaction(
    engine: sa.Engine,
) -> None:
    """A batch is recorded by a plain INSERT; where some of its rows were recorded before (sealed
    again in a later pass) that fails as a whole, inside its savepoint, and the batch is recorded
    as the upsert: the new rows added, the earlier ones replaced, and the transaction around it
    goes on to commit everything."""

    def item(number: int, digest: str) -> dict[str, Any]:
        return {
            "row_key": f"[{number}]",
            "key_id": "k1",
            "digest": digest,
            "sealed_columns": '{"name":"n"}',
            "tokens_digest": None,
        }

    at = datetime(2026, 12, 5, 14, 0, tzinfo=UTC)
    with engine.begin() as connection:
        tool_metadata.create_all(connection, tables=[row_metadata_table])
        connection.execute(sa.delete(row_metadata_table))
        row_metadata.record(connection, "m1", "patients", [item(1, "first"), item(2, "first")], at)
    with engine.begin() as connection:
        row_metadata.record(connection, "m1", "patients", [item(2, "again"), item(3, "new")], at)
        # The same transaction, after the failed INSERT: still usable, and it commits.
        row_metadata.record(connection, "m1", "patients", [item(4, "after")], at)
    with engine.connect() as connection:
        digests = dict(
            connection.execute(sa.select(row_metadata_table.c.row_key, row_metadata_table.c.digest)).all()
        )
    assert digests == {"[1]": "first", "[2]": "again", "[3]": "new", "[4]": "after"}


def test_a_batch_failing_for_another_reason_is_not_recorded_as_an_upsert(engine: sa.Engine) -> None:
    """Only a duplicate key sends the batch to the upsert: any other refusal (here a NULL in a
    column that takes none) is raised as it is, and no upsert is tried."""
    at = datetime(2026, 12, 5, 14, 0, tzinfo=UTC)
    with engine.begin() as connection:
        tool_metadata.create_all(connection, tables=[row_metadata_table])
        connection.execute(sa.delete(row_metadata_table))
    statements: list[str] = []

    def seen(_connection: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        statements.append(statement)

    broken = {"row_key": "[1]", "key_id": None, "digest": "d", "sealed_columns": None, "tokens_digest": None}
    sa.event.listen(engine, "before_cursor_execute", seen)
    try:
        with pytest.raises(sa.exc.IntegrityError) as refused, engine.begin() as connection:
            row_metadata.record(connection, "m1", "patients", [broken], at)
    finally:
        sa.event.remove(engine, "before_cursor_execute", seen)
    assert getattr(refused.value.orig, "sqlstate", None) == "23502"
    inserts = [statement for statement in statements if statement.startswith("INSERT INTO tm_row_metadata")]
    assert len(inserts) == 1
    assert "ON CONFLICT" not in inserts[0]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(st.none() | ANY_TEXT, max_size=12))
def test_a_text_array_comes_back_exactly(engine: sa.Engine, values: list[str | None]) -> None:
    """Any text, NULLs, a list of only NULLs and an empty one, through the parameter's split
    form (or the literal, where no control characters are free) and through the literal."""
    with engine.connect() as connection:
        for parameter in (text_array_text(values), text_array_literal(values)):
            back = connection.execute(sa.select(text_array("values")), {"values": parameter}).scalar()
            assert back == values


def test_values_holding_every_control_character_come_back_through_the_literal(engine: sa.Engine) -> None:
    values = [ALL_CONTROL_CHARACTERS, None, "", "NULL", ALL_CONTROL_CHARACTERS + '"\\']
    parameter = text_array_text(values)
    assert parameter.startswith("{")
    with engine.connect() as connection:
        back = connection.execute(sa.select(text_array("values")), {"values": parameter}).scalar()
    assert back == values


def test_a_batchs_split_form_is_what_the_server_cuts_apart(engine: sa.Engine) -> None:
    """Tokens and NULLs take the split form, and the server's reading of it gives them back, one
    empty value and a lone NULL included."""
    for values in (["tmenc:v1:k:AAAA", None, "tmenc:v1:k:BBBB"], [""], [None], ["\x1f", None, "\x1e"]):
        parameter = text_array_text(values)
        assert not parameter.startswith("{")
        with engine.connect() as connection:
            back = connection.execute(sa.select(text_array("values")), {"values": parameter}).scalar()
        assert back == values


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(st.none() | ANY_TEXT, st.none() | ANY_TEXT), max_size=12))
def test_a_batchs_text_rows_come_back_exactly_and_together(
    engine: sa.Engine, rows: list[tuple[str | None, str | None]]
) -> None:
    """Each row's values side by side, as sent: one array per column, read as one table."""
    batch = text_rows("tm_batch", ["first", "second"])
    parameters = text_rows_parameters(
        "tm_batch", {"first": [first for first, _ in rows], "second": [second for _, second in rows]}
    )
    with engine.connect() as connection:
        back = connection.execute(sa.select(batch.c.first, batch.c.second), parameters).all()
    assert Counter(tuple(row) for row in back) == Counter(rows)


@pytest.fixture
def small_table(empty_postgres_database: str) -> Iterator[sa.Engine]:
    """A table small enough that the planner, told a batch holds 1,000 rows, would rather
    scan all of it for every batch and hash the batch than look each row up by its place."""
    engine = create_database_engine(empty_postgres_database)
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "CREATE TABLE patients (id integer PRIMARY KEY, org text, name text, born date, born__tm_token text)"
        )
        connection.exec_driver_sql(
            "INSERT INTO patients (id, org, name, born) "
            "SELECT n, 'org_1', repeat('x', 30), DATE '2000-01-01' FROM generate_series(1, 20000) n"
        )
        connection.exec_driver_sql("ANALYZE patients")
    yield engine
    engine.dispose()


def _scans(connection: sa.Connection, statement: Any, parameters: dict[str, Any]) -> set[str]:
    compiled = statement.compile(dialect=connection.dialect)
    plan = connection.exec_driver_sql(
        "EXPLAIN (FORMAT JSON) " + str(compiled), {**compiled.params, **parameters}
    ).scalar_one()
    found: set[str] = set()

    def walk(node: dict[str, Any]) -> None:
        if node.get("Relation Name") == "patients" and node["Node Type"].endswith("Scan"):
            found.add(node["Node Type"])
        for child in node.get("Plans", []):
            walk(child)

    walk(plan[0]["Plan"])
    return found


def test_a_batchs_writes_find_each_row_by_its_place_whatever_the_tables_size(small_table: sa.Engine) -> None:
    """A batch's rows are told by their versions; with the true count of a batch's rows the
    planner would read the whole table for every batch of a small one (a hash join over a
    sequential scan, below about 3,000 pages): the arrays are bound behind a scalar subquery,
    whose length it cannot see, so each row is fetched by its ctid (a TID scan)."""
    access = table_access(small_table)
    update = access.update_by_row_version()
    assert update is not None
    with small_table.begin() as connection:
        rows = read_with_versions(connection, access)[:1000]
        sealed = [(row, {"name": f"tmenc:v1:{row['id']}"}) for row in rows]
        assert _scans(connection, update, batch_parameters(access, sealed)) == {"Tid Scan"}
        table = backup.create_backup_table(connection, access, "tm_bk_test_patients")
        insert = backup.insert_by_row_version(access, table)
        parameters = backup.batch_by_row_version(written_backups(rows, 1))
        for statement in (insert.plain, insert.on_conflict):
            assert _scans(connection, statement, parameters) == {"Tid Scan"}


def test_a_database_that_reads_null_in_arrays_as_text_still_keeps_the_cells_a_batch_leaves(
    empty_postgres_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``array_nulls`` off (set for the database, as a DBA may), a bare NULL in an array's
    literal is the word 'NULL': a cell a batch sent in the literal form (a column holding every
    control character) leaves as it is would have been overwritten by it. Every session of the
    tool sets it back on. The batch is sent as literals here, as for such a column."""
    monkeypatch.setattr(database_module, "text_array_text", text_array_literal)
    database = sa.engine.make_url(empty_postgres_database).database
    setup = create_database_engine(empty_postgres_database)
    with setup.connect() as connection:
        connection.exec_driver_sql(f'ALTER DATABASE "{database}" SET array_nulls = off')
        connection.commit()
    setup.dispose()
    engine = create_database_engine(empty_postgres_database)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql(
                "CREATE TABLE patients (id integer PRIMARY KEY, org text, name text, born date, "
                "born__tm_token text)"
            )
            connection.exec_driver_sql("INSERT INTO patients VALUES (1, 'org_1', 'Ada', '1815-12-10', NULL)")
        with engine.connect() as connection:
            back = connection.execute(
                sa.select(text_array("values")), {"values": text_array_literal([None, "NULL"])}
            )
            assert back.scalar() == [None, "NULL"]
        access = table_access(engine)
        statement = access.update_by_row_version()
        assert statement is not None
        with engine.begin() as connection:
            rows = read_with_versions(connection, access)
            updated = connection.execute(
                statement, batch_parameters(access, [(rows[0], {"name": "tmenc:v1:a"})])
            )
        assert updated.rowcount == 1
        assert stored(engine) == [(1, "tmenc:v1:a", "1815-12-10", None)]
        with engine.connect() as connection:
            assert connection.exec_driver_sql("SHOW array_nulls").scalar() == "on"
    finally:
        engine.dispose()
