"""Exact on any PostgreSQL data: the server's column types in every role.

PostgreSQL keeps each value in its column's own type, and the driver hands it over as a typed
Python value: ``numeric`` as a Decimal that keeps its scale (``1.10``), ``timestamptz`` as an
aware datetime in the session's time zone, ``json`` as parsed objects, arrays as lists. Hypothesis
builds tables whose key, composite key, organization and sensitive columns take these types,
fills them with values at the types' edges (NaN and infinities, ``-0.0``, unicode, NULL array
elements, several session time zones), and migrates, verifies and rolls each one back: the table
must come back exactly — each value, its ``pg_typeof`` and its text in its own type. A row the
tool cannot seal must be a recorded failed row with a reason, never an error for the whole run.
"""

from __future__ import annotations

import json
import tempfile
from contextlib import AbstractContextManager
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

import psycopg
import psycopg.types.string
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.support.databases import fresh_postgres_database, opened_on_mapping
from tests.support.migration_helpers import raw_dump, rotate_every_key
from tests.support.postgres_cluster import PostgresCluster
from tui_migrator.crypto.codec import encode_key
from tui_migrator.crypto.tokens import TOKEN_PREFIX
from tui_migrator.service.facade import MigratorService
from tui_migrator.storage.column_storage import reflect
from tui_migrator.storage.migration_records import MigrationRecord
from tui_migrator.storage.migration_status import Status

pytestmark = [pytest.mark.backends("postgresql"), pytest.mark.postgresql]

COLUMNS = ("k1", "k2", "org", "s1", "s2")
SENSITIVE = ("s1", "s2")

# -- values, as the parameters of ``%s::<type>``: text in the type's input syntax (so 1.10, NaN
# and -0 arrive exactly as written), bytes for bytea, lists for arrays -----------------------

# PostgreSQL text cannot hold NUL; anything else goes, unicode and lone-surrogate-free.
texts = st.one_of(
    st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=12),
    st.sampled_from(("", " ", "ünïcødé", "🧠 Ærø", "1.10", "2024-01-05", "null", '{"a": 1}', "a\\b\"c'")),
    # Control characters, among them those a batch's text is split at on its way to the server
    # (storage/text_arrays.py), and all of them at once. Values and keys reach those texts only
    # sealed or encoded, but they must come back exactly whatever they hold.
    st.sampled_from(("\x1f", "a\x1eb", "".join(map(chr, (*range(1, 0x20), 0x7F))))),
)


def _sized_text(size: int) -> st.SearchStrategy[str]:
    return texts.map(lambda text: text[:size])


def _float_text(value: float) -> str:
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    return repr(value)


def _integers(bits: int) -> st.SearchStrategy[str]:
    return st.integers(-(2 ** (bits - 1)), 2 ** (bits - 1) - 1).map(str)


numeric_12_4 = st.one_of(
    st.decimals(min_value=-(10**8) + 1, max_value=10**8 - 1, places=4).map(str),
    st.sampled_from(("1.10", "-0.000", "0", "NaN", "99999999.9999", "-1e-4")),
)
numeric_any = st.one_of(
    st.decimals(allow_nan=False, allow_infinity=False, min_value=-(10**30), max_value=10**30).map(str),
    st.sampled_from(
        (
            "1.10",
            "-0.000",
            "0.0000000000",
            "NaN",
            "Infinity",
            "-Infinity",
            "0.1000000000000000000001",
            "1e-40",
            "12345678901234567890.123456789",
        )
    ),
)
reals = st.one_of(
    st.floats(width=32, allow_nan=False, allow_infinity=False).map(_float_text),
    st.sampled_from(("NaN", "Infinity", "-Infinity", "-0", "0", "1.1", "3.4028235e38", "1e-45")),
)
doubles = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False).map(_float_text),
    st.sampled_from(("NaN", "Infinity", "-Infinity", "-0", "0.1", "1e308", "5e-324")),
)
# Years 2–9998: a timestamptz shown in a session zone, or a date, outside years 1–9999 is a
# value psycopg cannot load (BC and infinite values are covered by the plain tests below).
datetimes = st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31))
offsets = st.integers(-15 * 60 + 1, 15 * 60 - 1).map(lambda minutes: timezone(timedelta(minutes=minutes)))
aware_datetimes = st.one_of(
    st.builds(lambda moment, zone: moment.replace(tzinfo=zone).isoformat(), datetimes, offsets),
    # Both sides of DST changes, and a wall-clock time that happens twice.
    st.sampled_from(
        (
            "2024-03-31 00:59:59.999999+00",
            "2024-03-31 01:00:00+00",
            "2024-10-27 00:30:00+00",
            "2024-10-27 01:30:00+00",
            "2024-11-03 05:30:00+00",
            "2024-11-03 06:30:00+00",
        )
    ),
)
times = st.one_of(st.times().map(time.isoformat), st.sampled_from(("00:00:00", "23:59:59.999999")))
aware_times = st.builds(lambda moment, zone: moment.replace(tzinfo=zone).isoformat(), st.times(), offsets)

json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**70), 2**70),
        st.floats(allow_nan=False, allow_infinity=False),
        texts,
    ),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(texts, children, max_size=3),
    max_leaves=6,
)
# Valid JSON only, written with and without spacing; json keeps the text as written.
json_texts = st.one_of(
    st.builds(
        lambda value, spaced: json.dumps(
            value, separators=(", ", ": ") if spaced else (",", ":"), ensure_ascii=not spaced
        ),
        json_values,
        st.booleans(),
    ),
    st.sampled_from(
        (
            '{"b":1,  "a" : [1.10, 2e3], "b": 2}',
            '{"a": 1.10, "tiny": 0.1000000000000000000001, "nested": {"list": [1, "zwei", null, true]}}',
            "1e400",
            "-0",
            "1.10",
            '"\\u00e9 \\ud83e\\udde0 ß"',
            "null",
            "[]",
            "{}",
            " [ 1 , 2 ] ",
        )
    ),
)
text_arrays = st.one_of(
    st.lists(st.one_of(st.none(), texts), max_size=4),
    st.sampled_from(('{{"a","b"},{NULL,"é"}}', '{"NULL",NULL,""}', "{}")),
)
integer_arrays = st.one_of(
    st.lists(st.one_of(st.none(), st.integers(-(2**31), 2**31 - 1)), max_size=4),
    st.sampled_from(("{{1,2},{3,NULL}}", "{NULL}", "{}")),
)
uuids = st.uuids().map(str)

# Every type with its values. ``key``: it has a btree equality, so it can be (part of) a primary key.
TYPES: dict[str, tuple[st.SearchStrategy[Any], bool]] = {
    "text": (texts, True),
    "varchar": (texts, True),
    "varchar(8)": (_sized_text(8), True),
    "char(6)": (_sized_text(6), True),
    "smallint": (_integers(16), True),
    "integer": (_integers(32), True),
    "bigint": (_integers(64), True),
    "numeric(12,4)": (numeric_12_4, True),
    "numeric": (numeric_any, True),
    "real": (reals, True),
    "double precision": (doubles, True),
    "boolean": (st.sampled_from(("true", "false")), True),
    "date": (
        st.dates(min_value=date(2, 1, 1), max_value=date(9998, 12, 31)).map(str),
        True,
    ),
    "timestamp": (datetimes.map(datetime.isoformat), True),
    "timestamptz": (aware_datetimes, True),
    "time": (times, True),
    "timetz": (aware_times, True),
    "uuid": (uuids, True),
    "bytea": (st.binary(max_size=10), True),
    # json keeps the escape \u0000, which jsonb refuses.
    "json": (json_texts | st.just('{"a": "x\\u0000y"}'), False),
    "jsonb": (json_texts, True),
    "text[]": (text_arrays, True),
    "integer[]": (integer_arrays, True),
}
KEY_TYPES = tuple(name for name, (_values, keyable) in TYPES.items() if keyable)

# Organization columns: text or integers, whose value may also be NULL or blank (the table's
# default_organization then owns the row).
ORGANIZATION_TYPES: dict[str, st.SearchStrategy[Any]] = {
    "text": st.sampled_from((None, "", "  ", "org_a", "org_b", "2")),
    "varchar(10)": st.sampled_from((None, "", " ", "org_a", "Örg-ü")),
    "integer": st.sampled_from((None, "0", "1", "-7")),
    "bigint": st.sampled_from((None, "3", "9223372036854775807")),
}
SESSION_ZONES = ("UTC", "Europe/Madrid", "America/New_York", "Asia/Kathmandu", "Pacific/Chatham")


@st.composite
def tables(draw: st.DrawFn) -> dict[str, Any]:
    composite = draw(st.booleans())
    types = {
        "k1": draw(st.sampled_from(KEY_TYPES)),
        "k2": draw(st.sampled_from(KEY_TYPES)),
        "org": draw(st.sampled_from(tuple(ORGANIZATION_TYPES))),
        "s1": draw(st.sampled_from(tuple(TYPES))),
        "s2": draw(st.sampled_from(tuple(TYPES))),
    }
    values = {
        "k1": TYPES[types["k1"]][0],
        "k2": TYPES[types["k2"]][0],
        "org": ORGANIZATION_TYPES[types["org"]],
        "s1": st.one_of(st.none(), TYPES[types["s1"]][0]),
        "s2": st.one_of(st.none(), TYPES[types["s2"]][0]),
    }
    rows = draw(st.lists(st.fixed_dictionaries(values), min_size=1, max_size=8))
    return {
        "keys": ["k1", "k2"] if composite else ["k1"],
        "types": types,
        "rows": rows,
        "zone": draw(st.sampled_from(SESSION_ZONES)),
    }


def _create(url: str, spec: dict[str, Any]) -> None:
    """Create the table in the database at ``url`` and fill it."""
    types = spec["types"]
    columns = ", ".join(f'"{name}" {types[name]}' for name in COLUMNS)
    keys = ", ".join(f'"{name}"' for name in spec["keys"])
    casts = ", ".join(f"%s::{types[name]}" for name in COLUMNS)
    engine = sa.create_engine(url)
    try:
        with engine.begin() as connection:
            database = connection.dialect.identifier_preparer.quote(sa.make_url(url).database or "")
            # Every later session of this database (the tool's included) sees timestamptz and
            # timetz values in this zone.
            connection.exec_driver_sql(f"ALTER DATABASE {database} SET TimeZone TO '{spec['zone']}'")
            connection.exec_driver_sql(f"CREATE TABLE records ({columns}, PRIMARY KEY ({keys}))")
            for row in spec["rows"]:
                # Keys equal to an earlier row's in their type (1.10 and 1.1, 'a' and 'a ' in
                # char(6), one instant in two zones) are skipped, as the table would refuse them.
                connection.exec_driver_sql(
                    f"INSERT INTO records VALUES ({casts}) ON CONFLICT DO NOTHING",
                    tuple(row[name] for name in COLUMNS),
                )
    finally:
        engine.dispose()


def _mapping(keys: list[str], columns: tuple[str, ...]) -> str:
    listed = ", ".join(f'"{name}"' for name in keys)
    sensitive = ", ".join(f'"{name}"' for name in columns)
    return (
        '[[tables]]\nname = "records"\ncategory = "MOTOR_SYMPTOMS"\n'
        f'primary_key = [{listed}]\norganization_column = "org"\ndefault_organization = "org_default"\n'
        f"columns = [{sensitive}]\n"
    )


def _open(
    url: str, root: Path, keys: list[str], columns: tuple[str, ...]
) -> AbstractContextManager[MigratorService]:
    return opened_on_mapping(root, url, _mapping(keys, columns))


def _migrate(service: MigratorService) -> tuple[MigrationRecord, list[dict[str, Any]]]:
    """Migrate in batches of 3: it must complete, verified, with every value that is still
    plaintext afterwards in a row listed as failed, with a reason. Gives the failed rows."""
    record = service.start({"batch_size": 3})
    assert record.status is Status.COMPLETED, record.error_message
    assert record.verification is not None and record.verification["passed"], record.verification
    failed = service.failed_records(record.id)
    assert all(item["reason"] for item in failed), failed
    failed_keys = {item["row_key"] for item in failed}
    unsealed = [shown for key, shown in _rows_holding_plaintext(service) if key not in failed_keys]
    assert not unsealed, f"rows still holding plaintext but not listed as failed: {unsealed}"
    return record, failed


def _rows_holding_plaintext(service: MigratorService) -> list[tuple[str, str]]:
    """(encoded key, key as shown) of each row with a non-NULL mapped value not in token form.
    Only the keys are loaded (as the tool reads them): a failed row's value may be one the
    driver cannot load."""
    mapped = service.mapping().table("records")
    with service.engine.connect() as connection:
        access = reflect(connection, mapped)
        plaintext = []
        for column in mapped.columns:
            stored = access.table.c[column.name]
            if column.companion is None:
                # A text column holds its token in place: anything else in it is plaintext.
                plaintext.append(
                    sa.and_(stored.is_not(None), sa.func.left(stored, len(TOKEN_PREFIX)) != TOKEN_PREFIX)
                )
            else:
                # The token is in the companion; a value beside it is plaintext.
                plaintext.append(stored.is_not(None))
        query = sa.select(*(access.value(name) for name in mapped.primary_key)).where(sa.or_(*plaintext))
        keys = [tuple(row) for row in connection.execute(query)]
    return [(encode_key(key), ", ".join(map(str, key))) for key in keys]


def _rows_holding_tokens(service: MigratorService) -> set[str]:
    """The ``k1`` (as text) of each row that holds a token in a mapped column."""
    holds = []
    for column in service.mapping().table("records").columns:
        if column.companion:
            holds.append(f'"{column.companion}" IS NOT NULL')
        else:
            holds.append(f"left(\"{column.name}\", {len(TOKEN_PREFIX)}) = '{TOKEN_PREFIX}'")
    with service.engine.connect() as connection:
        return {
            str(key)
            for (key,) in connection.exec_driver_sql(
                f"SELECT k1::text FROM records WHERE {' OR '.join(holds)}"
            )
        }


def _one_row_keyed_by(sql_type: str, key: Any) -> dict[str, Any]:
    types = dict.fromkeys(COLUMNS, "text") | {"k1": sql_type}
    row = {"k1": key, "k2": "b", "org": "org_a", "s1": "sensitive", "s2": None}
    return {"keys": ["k1"], "types": types, "rows": [row], "zone": "UTC"}


@settings(
    max_examples=25,
    deadline=None,
    # ``backend`` is a constant string and the cluster is the session's: nothing to reset per
    # example (each example makes its own database and data dir).
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(spec=tables())
# Found by the search, kept as explicit cases: keys whose type is not the one their value takes
# on the way back — jsonb (moved as text), real (the driver's float is float4's shortest text,
# not its exact value) and integer[] (small elements go as smallint[]).
@example(spec=_one_row_keyed_by("jsonb", '{"a": 1}'))
@example(spec=_one_row_keyed_by("real", "1.1"))
@example(spec=_one_row_keyed_by("integer[]", [1]))
def test_any_postgresql_type_in_any_role_migrates_and_rolls_back_exactly(
    backend: str, postgres_cluster: PostgresCluster, spec: dict[str, Any]
) -> None:
    with tempfile.TemporaryDirectory() as directory, fresh_postgres_database(postgres_cluster) as url:
        _create(url, spec)
        with _open(url, Path(directory), spec["keys"], SENSITIVE) as service:
            before = raw_dump(service.engine)
            record, _failed = _migrate(service)
            rotate_every_key(service)
            service.rollback(record.id, confirm=True)
            assert raw_dump(service.engine) == before


# -- values without an exact encoding: failed rows with a reason, never a failed run ----------


def _plain_table(url: str, sensitive: dict[str, str], rows: list[tuple[Any, ...]]) -> None:
    """``records (k1 integer key, org text, <sensitive columns>, note text)``, ``rows`` holding
    SQL literals (None for NULL) for the sensitive columns and the note."""
    declared = ", ".join(f"{name} {sql_type}" for name, sql_type in sensitive.items())
    casts = ", ".join(f"%s::{sql_type}" for sql_type in [*sensitive.values(), "text"])
    engine = sa.create_engine(url)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql(
                f"CREATE TABLE records (k1 integer PRIMARY KEY, org text, {declared}, note text)"
            )
            for number, values in enumerate(rows, start=1):
                connection.exec_driver_sql(
                    f"INSERT INTO records VALUES (%s, %s, {casts})", (number, "org_a", *values)
                )
    finally:
        engine.dispose()


def test_interval_and_inet_values_are_failed_rows_naming_their_type(
    backend: str, empty_postgres_database: str, tmp_path: Path
) -> None:
    # interval and inet have no exact encoding (the driver gives a timedelta, which cannot hold
    # months, and an ipaddress object).
    rows = [
        ("1 mon 2 days", None, "a"),  # 1
        (None, "10.0.0.1/8", "b"),  # 2
        (None, None, "c"),  # 3
        ("-01:00:00.5", "::1", "d"),  # 4
        (None, None, None),  # 5
        ("0", None, None),  # 6
        (None, None, "e"),  # 7
        (None, "192.168.0.1", "f"),  # 8
    ]
    _plain_table(empty_postgres_database, {"iv": "interval", "ip": "inet"}, rows)
    with _open(empty_postgres_database, tmp_path, ["k1"], ("iv", "ip", "note")) as service:
        before = raw_dump(service.engine)
        record, failed = _migrate(service)
        reasons = {item["key_display"]: item["reason"] for item in failed}
        assert set(reasons) == {"1", "2", "4", "6", "8"}, reasons
        for key in ("1", "6"):
            assert "interval" in reasons[key] or "timedelta" in reasons[key], reasons[key]
        for key in ("2", "8"):
            assert "inet" in reasons[key] or "IPv4" in reasons[key], reasons[key]
        # Rows with only supported values are sealed.
        assert _rows_holding_tokens(service) == {"3", "7"}
        service.rollback(record.id, confirm=True)
        assert raw_dump(service.engine) == before


# Values PostgreSQL stores that the driver cannot even load (no Python date holds infinity or
# a BC year; no Python time holds 24:00), and an array whose lower bound a Python list loses.
UNREPRESENTABLE = {
    "date infinity": ("date", ["infinity", "-infinity"], "2024-01-05"),
    "date BC": ("date", ["0044-03-15 BC"], "2024-01-05"),
    "timestamp infinity": ("timestamp", ["infinity"], "2024-01-05 10:00:00.5"),
    "timestamptz infinity": ("timestamptz", ["-infinity"], "2024-01-05 10:00:00+01"),
    "time 24:00": ("time", ["24:00:00"], "23:59:59.999999"),
    "array lower bound": ("integer[]", ["[0:1]={1,2}"], "{1,2}"),
}


def _text_loading_engine(url: str) -> sa.Engine:
    """An engine whose connections load date, time and timestamp values as their text, so that
    a dump can show values (infinity, BC years, 24:00) that Python's types cannot hold."""
    engine = sa.create_engine(url)

    @sa.event.listens_for(engine, "connect")
    def _load_as_text(connection: Any, _record: Any) -> None:
        for name in ("date", "time", "timestamp", "timestamptz"):
            connection.adapters.register_loader(name, psycopg.types.string.TextLoader)

    return engine


@pytest.mark.parametrize("case", list(UNREPRESENTABLE))
def test_a_value_without_a_python_form_migrates_as_its_text_exactly(
    backend: str, empty_postgres_database: str, tmp_path: Path, case: str
) -> None:
    # psycopg cannot load these (infinity, BC, 24:00) or loses part of them (an array's
    # bounds); the tool moves them as their text, so they are sealed like any value and come
    # back exactly, never failing the batch they are in.
    sql_type, odd_values, ordinary = UNREPRESENTABLE[case]
    # Odd values between ordinary ones, so batches of 3 mix them.
    rows: list[tuple[Any, ...]] = []
    for odd in odd_values:
        rows += [(ordinary, "before"), (odd, "odd"), (None, "plain"), (ordinary, None)]
    _plain_table(empty_postgres_database, {"s1": sql_type}, rows)
    dump_engine = _text_loading_engine(empty_postgres_database)
    try:
        with _open(empty_postgres_database, tmp_path, ["k1"], ("s1", "note")) as service:
            before = raw_dump(dump_engine)
            record, failed = _migrate(service)
            assert failed == []
            assert _rows_holding_tokens(service) == {str(n) for n in range(1, len(rows) + 1)}
            service.rollback(record.id, confirm=True)
            assert raw_dump(dump_engine) == before
    finally:
        dump_engine.dispose()
