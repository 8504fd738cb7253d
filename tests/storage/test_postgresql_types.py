"""PostgreSQL's own column types — integer, numeric, date, timestamptz, boolean, jsonb, bytea and
more — are migrated and rolled back exactly: the same values, the same Python types (Decimal
scale, time zone, bytes, dict) and the same column types (pg_typeof) as before."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
import sqlalchemy as sa

from tests.support.databases import opened_on_mapping
from tests.support.migration_helpers import assert_fully_encrypted, raw_dump
from tui_migrator.service.facade import MigratorService
from tui_migrator.storage.migration_status import Status

pytestmark = pytest.mark.postgresql

# Every sensitive column but the in-place text one needs a companion column.
SENSITIVE = {
    "score": "integer",
    "big": "bigint",
    "dose": "numeric",
    "ratio": "numeric(6, 3)",
    "seen_on": "date",
    "seen_at": "timestamptz",
    "logged_at": "timestamp",
    "flag": "boolean",
    "profile": "jsonb",
    "raw_json": "json",
    "scan": "bytea",
    "weight": "real",
    "height": "double precision",
    "code": "varchar(8)",
    "ref": "uuid",
    "notes": "text",
}

MAPPING = f"""
[[tables]]
name = "typed_visits"
category = "MOTOR_SYMPTOMS"
primary_key = ["patient", "visit"]
organization_column = "site"
default_organization = "org_fallback"
columns = {list(SENSITIVE)!r}
""".replace("'", '"')

BERLIN = ZoneInfo("Europe/Berlin")
ROWS = 180


def row_values(n: int) -> dict[str, Any]:
    """Row n: edge values in turn, and NULL in every column now and then."""
    values: dict[str, Any] = {
        "score": [0, -2147483648, 2147483647, 42][n % 4],
        "big": [9223372036854775807, -1, 0][n % 3],
        "dose": [
            Decimal("1.10"),
            Decimal("-0.000"),
            Decimal("12345678901234567890.123456789"),
            Decimal("NaN"),
            Decimal("7"),
        ][n % 5],
        "ratio": [Decimal("1.250"), Decimal("-999.999"), Decimal("0.000")][n % 3],
        "seen_on": [date(1900, 1, 1), date(2024, 2, 29), date(9999, 12, 31)][n % 3],
        # Aware, with microseconds, on both sides of a DST change, in zones other than the session's.
        "seen_at": [
            datetime(2024, 3, 31, 0, 59, 59, 999999, tzinfo=UTC),
            datetime(2024, 10, 27, 2, 30, tzinfo=BERLIN),
            datetime(1999, 12, 31, 23, 0, 0, 1, tzinfo=timezone(timedelta(hours=-3, minutes=-30))),
        ][n % 3],
        "logged_at": datetime(2020, 1, 1, 12, 0, 0, n),
        "flag": n % 2 == 0,
        # Given as text: jsonb numbers are exact decimals, so 1.10 and 0.1000000000000000000001
        # are stored as written, which a Python float would round.
        "profile": [
            '{"a": 1.10, "tiny": 0.1000000000000000000001, "nested": {"list": [1, "zwei", null, true]}, "ü": "ß 🧠"}',
            "[]",
            "{}",
            '"just a string"',
            "null",  # the JSON literal null, which is not SQL NULL
        ][n % 5],
        # json keeps its text as written: odd spacing, key order and a duplicate key stay.
        "raw_json": '{"b":1,  "a" : [1.10, 2e3], "b": 2}',
        "scan": [b"", b"\x00\xff\x00", bytes(range(256)) * 3][n % 3],
        "weight": [1.1, -0.0, 3.4028234663852886e38, float("nan")][n % 4],
        "height": [0.1, -0.0, 1e308, float("inf"), 5e-324][n % 5],
        "code": f"C{n}",
        "ref": uuid.UUID(int=n * 7919),
        "notes": [f'Visit {n}: Ærøskøbing, "quoted"\nline two 🧠 \\ back', ""][n % 2],
    }
    if n % 11 == 5:
        values = dict.fromkeys(values)
    elif n % 7 == 3:
        values["profile"] = values["scan"] = values["dose"] = None
    return values


def insert_rows(connection: psycopg.Connection[Any]) -> None:
    columns = ["patient", "visit", "site", *SENSITIVE]
    rows = [
        (f"p-{n % 23}", n, ["org_x", "org_y", None, ""][n % 4], *(row_values(n)[c] for c in SENSITIVE))
        for n in range(ROWS)
    ]
    placeholders = ", ".join(["%s"] * len(columns))
    with connection.cursor() as cursor:
        cursor.executemany(f"INSERT INTO typed_visits ({', '.join(columns)}) VALUES ({placeholders})", rows)


@pytest.fixture
def typed_clinic(empty_postgres_database: str, tmp_path: Path) -> Iterator[MigratorService]:
    url = empty_postgres_database
    plain = sa.make_url(url)
    with psycopg.connect(
        host=plain.host, port=plain.port, user=plain.username, dbname=plain.database, autocommit=True
    ) as connection:
        # Sessions of this database see timestamptz values in a zone with DST, not in UTC.
        connection.execute(f"ALTER DATABASE \"{plain.database}\" SET timezone TO 'America/New_York'")
    with psycopg.connect(
        host=plain.host, port=plain.port, user=plain.username, dbname=plain.database
    ) as connection:
        declared = ", ".join(f"{name} {sql_type}" for name, sql_type in SENSITIVE.items())
        connection.execute(
            f"CREATE TABLE typed_visits (patient text, visit integer, site text, {declared}, "
            "untouched text DEFAULT 'not mapped', PRIMARY KEY (patient, visit))"
        )
        insert_rows(connection)
    with opened_on_mapping(tmp_path, url, MAPPING) as service:
        yield service


def typed_rows(engine: sa.Engine) -> list[dict[str, Any]]:
    """The rows as an application reads them through SQLAlchemy's reflected column types."""
    table = sa.Table("typed_visits", sa.MetaData(), autoload_with=engine)
    with engine.connect() as connection:
        query = sa.select(*(table.c[name] for name in ["patient", "visit", *SENSITIVE]))
        return [
            dict(row) for row in connection.execute(query.order_by(table.c.patient, table.c.visit)).mappings()
        ]


def assert_identical(before: Any, after: Any, where: str) -> None:
    assert type(after) is type(before), where
    if isinstance(before, (float, Decimal)) and before != before:  # NaN
        assert after != after, where
        assert str(after) == str(before), where
        return
    assert after == before, where
    if isinstance(before, Decimal):
        assert after.as_tuple() == before.as_tuple(), where  # the scale too: 1.10 stays 1.10
    if isinstance(before, float):
        assert str(after) == str(before), where  # -0.0 stays -0.0
    if isinstance(before, datetime):
        assert (after.tzinfo is None) == (before.tzinfo is None), where
        assert after.utcoffset() == before.utcoffset(), where


def test_typed_columns_migrate_and_roll_back_exactly(typed_clinic: MigratorService) -> None:
    service = typed_clinic
    before = raw_dump(service.engine)
    typed_before = typed_rows(service.engine)
    assert any(isinstance(row["profile"], dict) for row in typed_before)
    assert any(isinstance(row["seen_at"], datetime) for row in typed_before)

    record = service.start({"batch_size": 25, "max_concurrency": 3})
    assert record.status is Status.COMPLETED, record.error_message
    assert record.failed_records == 0
    assert record.encrypted_records == record.total_records == ROWS - len(range(5, ROWS, 11))
    assert record.verification and record.verification["passed"]
    assert assert_fully_encrypted(service, service.mapping(), before) == ROWS

    with service.engine.connect() as connection:
        stored_types = dict(
            connection.exec_driver_sql(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_name = 'typed_visits'"
            ).all()
        )
        # Tokens of non-text columns sit in text companions; the typed column itself is NULL.
        for name in SENSITIVE:
            if name == "notes":
                assert f"{name}__tm_token" not in stored_types
            else:
                assert stored_types[f"{name}__tm_token"] == "text", name
                assert (
                    connection.exec_driver_sql(
                        f"SELECT count(*) FROM typed_visits WHERE {name} IS NOT NULL"
                    ).scalar_one()
                    == 0
                ), name
        assert stored_types["profile"] == "jsonb" and stored_types["scan"] == "bytea"

    service.rollback(record.id, confirm=True)
    # Byte for byte: every value's text, its pg_typeof and the columns' declarations.
    assert raw_dump(service.engine) == before
    typed_after = typed_rows(service.engine)
    assert len(typed_after) == len(typed_before) == ROWS
    for old, new in zip(typed_before, typed_after, strict=True):
        for name in SENSITIVE:
            assert_identical(old[name], new[name], f"{old['patient']}/{old['visit']}.{name}")


def test_typed_columns_dry_run_changes_nothing(typed_clinic: MigratorService) -> None:
    before = raw_dump(typed_clinic.engine)
    record = typed_clinic.start({"batch_size": 40, "dry_run": True})
    assert record.status is Status.COMPLETED and record.failed_records == 0
    assert record.encrypted_records == record.total_records
    assert raw_dump(typed_clinic.engine) == before
