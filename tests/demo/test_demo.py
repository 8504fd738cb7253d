"""The demo dataset: its size, determinism, the variety of its values, its profile, and that
rebuilding it never touches anything but the demo tables."""

from __future__ import annotations

import json
import logging
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tui_migrator import demo
from tui_migrator.common.categories import CATEGORY_NAMES
from tui_migrator.common.errors import BadInput
from tui_migrator.demo import (
    DEMO_PROFILE,
    DEMO_TABLE_NAMES,
    build_demo_database,
    demo_metadata,
    drop_demo_tables,
    generator,
)
from tui_migrator.storage.database import create_database_engine

CATEGORY_TABLES = (
    "demographics",
    "motor_symptoms",
    "non_motor_symptoms",
    "autonomic_symptoms",
    "daily_activities",
    "medication_data",
    "emergency_contacts",
    "safety_incidents",
    "environmental_factors",
)
# Large enough that every sensitive column has NULLs and every kind of value shows up.
SAMPLE = {"patients": 500, "organizations": 5, "seed": 3}

Dump = dict[str, list[tuple[Any, ...]]]
# (table, column) -> every value of that sensitive column
Values = dict[tuple[str, str], list[Any]]


def sqlite_engine(path: Path) -> Engine:
    return create_database_engine(f"sqlite:///{path}")


def dump_demo(engine: Engine) -> Dump:
    """Every row of every demo table in primary-key order, with the Python types read back."""
    with engine.connect() as connection:
        return {
            table.name: [
                tuple(row)
                for row in connection.execute(sa.select(table).order_by(*table.primary_key.columns))
            ]
            for table in demo_metadata.sorted_tables
        }


def build_and_dump(path: Path, **arguments: int) -> Dump:
    engine = sqlite_engine(path)
    try:
        build_demo_database(engine, **arguments)
        return dump_demo(engine)
    finally:
        engine.dispose()


def row_count(engine: Engine, table: str) -> int:
    with engine.connect() as connection:
        return connection.execute(
            sa.select(sa.func.count()).select_from(demo_metadata.tables[table])
        ).scalar_one()


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = sqlite_engine(tmp_path / "demo.db")
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def sample_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """One SAMPLE database shared by the read-only tests of this module."""
    engine = sqlite_engine(tmp_path_factory.mktemp("demo-sample") / "demo.db")
    build_demo_database(engine, **SAMPLE)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def sensitive_values(sample_engine: Engine) -> Values:
    """Every value of every sensitive column in the sample database."""
    values: Values = {}
    with sample_engine.connect() as connection:
        for entry in DEMO_PROFILE:
            table = demo_metadata.tables[entry["name"]]
            columns = [table.c[name] for name in entry["columns"]]
            rows = connection.execute(sa.select(*columns)).all()
            for index, name in enumerate(entry["columns"]):
                values[(entry["name"], name)] = [row[index] for row in rows]
    return values


def all_sensitive(values: Values) -> list[Any]:
    return [value for column in values.values() for value in column]


def present(values: Values, table: str, column: str) -> list[Any]:
    """The column's values without NULLs."""
    return [value for value in values[(table, column)] if value is not None]


# -- size and determinism ------------------------------------------------------------------


def test_default_build_puts_10k_to_20k_records_in_the_nine_category_tables(engine: Engine) -> None:
    summary = build_demo_database(engine)

    assert (summary.patients, summary.organizations) == (2000, 4)
    assert 10_000 <= summary.sensitive_records <= 20_000
    assert summary.sensitive_records == sum(summary.rows_by_table[name] for name in CATEGORY_TABLES)
    assert set(summary.rows_by_table) == set(DEMO_TABLE_NAMES)
    for name in DEMO_TABLE_NAMES:
        assert row_count(engine, name) == summary.rows_by_table[name], name
    assert summary.rows_by_table["demographics"] == 2000
    assert 2000 <= summary.rows_by_table["emergency_contacts"] <= 4000
    assert summary.seconds > 0


def test_the_same_seed_builds_identical_content(tmp_path: Path) -> None:
    first = build_and_dump(tmp_path / "a.db", patients=200, organizations=3, seed=5)
    second = build_and_dump(tmp_path / "b.db", patients=200, organizations=3, seed=5)
    assert first == second
    assert all(first[name] for name in DEMO_TABLE_NAMES)


def test_a_different_seed_builds_different_content(tmp_path: Path) -> None:
    first = build_and_dump(tmp_path / "a.db", patients=200, organizations=3, seed=5)
    second = build_and_dump(tmp_path / "b.db", patients=200, organizations=3, seed=6)
    for name in CATEGORY_TABLES:
        assert first[name] != second[name], name


def test_content_does_not_depend_on_the_chunk_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    whole = build_and_dump(tmp_path / "whole.db", patients=200, organizations=3, seed=5)
    monkeypatch.setattr(generator, "PATIENTS_PER_CHUNK", 37)
    chunked = build_and_dump(tmp_path / "chunked.db", patients=200, organizations=3, seed=5)
    assert chunked == whole


def test_every_organization_has_patients_and_centres_differ_in_size(engine: Engine) -> None:
    build_demo_database(engine, patients=400, organizations=14, seed=2)
    with engine.connect() as connection:
        organizations = connection.execute(
            sa.select(demo.organizations_table.c.id, demo.organizations_table.c.name)
        ).all()
        per_organization = Counter(
            connection.execute(sa.select(demo.patients_table.c.organization_id)).scalars()
        )
    ids = [org_id for org_id, _ in organizations]
    assert len(ids) == 14
    assert ids[:3] == ["org_charite_berlin", "org_karolinska_stockholm", "org_pitie_paris"]
    assert ("org_charite_berlin", "Charité – Universitätsmedizin Berlin") in organizations
    assert {"org_clinic_0012", "org_clinic_0013", "org_clinic_0014"} <= set(ids)
    assert set(per_organization) == set(ids)
    assert min(per_organization.values()) >= 1
    assert max(per_organization.values()) > 2 * min(per_organization.values())


def test_as_many_organizations_as_patients_gives_each_one_patient(engine: Engine) -> None:
    build_demo_database(engine, patients=6, organizations=6)
    with engine.connect() as connection:
        per_organization = Counter(
            connection.execute(sa.select(demo.patients_table.c.organization_id)).scalars()
        )
    assert sorted(per_organization.values()) == [1] * 6


# -- variety of values ---------------------------------------------------------------------


def test_sensitive_columns_hold_every_python_type_the_codec_must_round_trip(
    sensitive_values: Values,
) -> None:
    values = [value for value in all_sensitive(sensitive_values) if value is not None]
    types = {type(value) for value in values}
    assert {str, int, float, Decimal, bool, date, datetime, dict, list} <= types

    booleans = [value for value in values if isinstance(value, bool)]
    assert True in booleans
    assert False in booleans
    floats = [value for value in values if isinstance(value, float)]
    assert any(not value.is_integer() for value in floats)
    timestamps = [value for value in values if isinstance(value, datetime)]
    assert any(value.microsecond for value in timestamps)
    assert any(not value.microsecond for value in timestamps)
    assert all(value.tzinfo is None for value in timestamps)


def test_doses_are_exact_decimals_with_two_places(
    sensitive_values: Values,
) -> None:
    doses = present(sensitive_values, "medication_data", "dose_mg")
    assert all(isinstance(dose, Decimal) and dose.as_tuple().exponent == -2 for dose in doses)
    assert Decimal("62.50") in doses
    assert any(dose < 1 for dose in doses)  # pramipexole-sized doses such as 0.26


def test_every_sensitive_column_has_some_nulls_but_most_values_are_set(
    sensitive_values: Values,
) -> None:
    for column, values in sensitive_values.items():
        assert None in values, f"{column} has no NULL"
    everything = all_sensitive(sensitive_values)
    null_share = sum(value is None for value in everything) / len(everything)
    assert 0.04 <= null_share <= 0.12


def test_text_columns_include_empty_strings(sensitive_values: Values) -> None:
    assert "" in sensitive_values[("demographics", "email")]
    assert "" in sensitive_values[("emergency_contacts", "email")]
    assert "" in sensitive_values[("demographics", "notes")]
    assert "" in sensitive_values[("motor_symptoms", "gait_notes")]


def test_text_includes_non_ascii_scripts_emoji_newlines_quotes_and_backslashes(
    sensitive_values: Values,
) -> None:
    texts = [value for value in all_sensitive(sensitive_values) if isinstance(value, str)]
    text = "\x00".join(texts)
    names_and_places = ("Müller", "Zoë", "Ł", "ś", "Núñez", "Ærøskøbing", "Ø", "Ğ")
    for expected in (*names_and_places, "\n", '"', "'", "\\"):
        assert expected in text, expected
    assert "李" in text or "王" in text
    assert any(ord(char) >= 0x1F300 for char in text), "no emoji"
    assert sum(not value.isascii() for value in texts) > len(texts) // 10


def test_json_columns_hold_nested_dicts_and_lists_with_non_ascii_text(
    sensitive_values: Values,
) -> None:
    measurements = present(sensitive_values, "autonomic_symptoms", "measurements")
    assert all(isinstance(value["supine"], dict) for value in measurements)
    assert all(isinstance(value["heart_rate"], list) for value in measurements)
    diaries = present(sensitive_values, "daily_activities", "diary")
    assert all(isinstance(diary, list) and isinstance(diary[0], dict) for diary in diaries)
    locations = present(sensitive_values, "environmental_factors", "location")
    assert all(isinstance(value["lat"], float) for value in locations)
    assert all(isinstance(value["lon"], float) for value in locations)
    assert any("nearby" in value for value in locations)

    every_json = measurements + diaries + locations
    serialized = json.dumps(every_json, ensure_ascii=False)
    assert not serialized.isascii()


def test_numeric_scores_stay_in_their_clinical_ranges(
    sensitive_values: Values,
) -> None:
    values = sensitive_values
    assert all(0 <= score <= 132 for score in present(values, "motor_symptoms", "updrs_part3"))
    for column in ("tremor_score", "rigidity_score", "bradykinesia_score"):
        assert set(present(values, "motor_symptoms", column)) <= set(range(5)), column
    assert all(0 <= score <= 30 for score in present(values, "non_motor_symptoms", "moca_score"))
    assert set(present(values, "daily_activities", "schwab_england_pct")) <= set(range(0, 101, 10))
    assert set(present(values, "safety_incidents", "severity")) <= set(range(1, 6))


# -- keys ----------------------------------------------------------------------------------


def test_the_composite_key_table_has_unique_patient_and_contact_number_pairs(
    sample_engine: Engine,
) -> None:
    table = demo.emergency_contacts_table
    with sample_engine.connect() as connection:
        pairs = connection.execute(sa.select(table.c.patient_id, table.c.contact_no)).all()
    assert len(pairs) == len(set(pairs))
    assert {contact_no for _, contact_no in pairs} == {1, 2}
    assert [column.name for column in table.primary_key.columns] == ["patient_id", "contact_no"]


def test_the_text_key_table_has_unique_uuid_shaped_text_ids(sample_engine: Engine) -> None:
    with sample_engine.connect() as connection:
        ids = connection.execute(sa.select(demo.safety_incidents_table.c.id)).scalars().all()
    assert ids
    assert all(isinstance(value, str) and uuid.UUID(value).version == 4 for value in ids)
    assert len(ids) == len(set(ids))


# -- profile -------------------------------------------------------------------------------


def test_profile_lists_exactly_the_nine_category_tables_with_nine_distinct_categories() -> None:
    assert [entry["name"] for entry in DEMO_PROFILE] == list(CATEGORY_TABLES)
    assert sorted(entry["category"] for entry in DEMO_PROFILE) == sorted(CATEGORY_NAMES)
    assert all(entry["organization_column"] == "organization_id" for entry in DEMO_PROFILE)
    assert ("organizations", "patients", *CATEGORY_TABLES) == DEMO_TABLE_NAMES


def test_profile_columns_exist_are_nullable_and_outside_the_primary_key(
    sample_engine: Engine,
) -> None:
    inspector = sa.inspect(sample_engine)
    for entry in DEMO_PROFILE:
        columns = {column["name"]: column for column in inspector.get_columns(entry["name"])}
        declared_key = inspector.get_pk_constraint(entry["name"])["constrained_columns"]
        key = entry["primary_key"]
        assert (key if isinstance(key, list) else [key]) == declared_key, entry["name"]
        assert entry["columns"], entry["name"]
        for name in entry["columns"]:
            assert name in columns, f"{entry['name']}.{name} does not exist"
            assert columns[name]["nullable"], f"{entry['name']}.{name} is NOT NULL"
            assert name not in declared_key, f"{entry['name']}.{name} is in the key"
        assert entry["organization_column"] in columns
        assert not columns[entry["organization_column"]]["nullable"]


def test_profile_uses_a_list_only_for_the_composite_key() -> None:
    keys = {entry["name"]: entry["primary_key"] for entry in DEMO_PROFILE}
    assert keys.pop("emergency_contacts") == ["patient_id", "contact_no"]
    assert set(keys.values()) == {"id"}


# -- rebuilding ----------------------------------------------------------------------------


def create_unrelated_table(engine: Engine) -> sa.Table:
    unrelated = sa.Table(
        "clinic_inventory",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("item", sa.Text),
    )
    unrelated.create(engine)
    with engine.begin() as connection:
        connection.execute(unrelated.insert(), [{"id": 1, "item": "Rollator"}])
    return unrelated


def test_rebuilding_drops_and_recreates_only_the_demo_tables(engine: Engine) -> None:
    unrelated = create_unrelated_table(engine)
    build_demo_database(engine, patients=100, organizations=2, seed=1)
    # A migration adds companion columns; a rebuild must still replace the table cleanly.
    with engine.begin() as connection:
        connection.exec_driver_sql("ALTER TABLE demographics ADD COLUMN birth_date__tm_token TEXT")

    summary = build_demo_database(engine, patients=150, organizations=3, seed=2)

    inspector = sa.inspect(engine)
    assert set(inspector.get_table_names()) == {*DEMO_TABLE_NAMES, "clinic_inventory"}
    assert "birth_date__tm_token" not in {c["name"] for c in inspector.get_columns("demographics")}
    assert row_count(engine, "patients") == 150
    assert row_count(engine, "demographics") == summary.rows_by_table["demographics"] == 150
    with engine.connect() as connection:
        assert connection.execute(sa.select(unrelated)).all() == [(1, "Rollator")]


def test_drop_demo_tables_removes_only_the_demo_tables(engine: Engine) -> None:
    create_unrelated_table(engine)
    build_demo_database(engine, patients=20, organizations=2)
    drop_demo_tables(engine)
    assert sa.inspect(engine).get_table_names() == ["clinic_inventory"]
    drop_demo_tables(engine)  # nothing left to drop is not an error


@pytest.mark.parametrize(
    ("patients", "organizations", "named"),
    [
        (0, 4, ["patients", "0", "5,000,000"]),
        (-3, 4, ["patients", "-3"]),
        (5_000_001, 4, ["patients", "5000001", "5,000,000"]),
        ("2000", 4, ["patients", "'2000'"]),
        (True, 4, ["patients", "True"]),
        (100, 0, ["organizations", "0", "1,000"]),
        (100, 1001, ["organizations", "1001", "1,000"]),
        (3, 4, ["3 patients", "4 organizations"]),
    ],
)
def test_bad_arguments_are_refused_naming_the_value_before_anything_is_written(
    engine: Engine, patients: Any, organizations: Any, named: list[str]
) -> None:
    with pytest.raises(BadInput) as raised:
        build_demo_database(engine, patients=patients, organizations=organizations)
    for text in named:
        assert text in raised.value.message
    assert raised.value.hint
    assert sa.inspect(engine).get_table_names() == []


class RecordingHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def demo_log() -> Iterator[list[logging.LogRecord]]:
    """The demo logger's records, captured on the logger itself.

    Not through caplog: an in-process CLI run elsewhere in the suite may have set the package
    logger to WARNING without propagation, which would hide the records from the root logger.
    """
    logger = logging.getLogger(demo.__name__)
    handler = RecordingHandler()
    saved_level, saved_propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield handler.records
    logger.removeHandler(handler)
    logger.setLevel(saved_level)
    logger.propagate = saved_propagate


def test_build_logs_one_info_line_and_prints_nothing(
    engine: Engine, demo_log: list[logging.LogRecord], capsys: pytest.CaptureFixture[str]
) -> None:
    summary = build_demo_database(engine, patients=30, organizations=2)
    assert [record.levelno for record in demo_log] == [logging.INFO]
    assert f"{summary.sensitive_records} sensitive records" in demo_log[0].getMessage()
    assert capsys.readouterr() == ("", "")


# -- scale -----------------------------------------------------------------------------------
# What keeps a large build fast: rows go in as one multi-row INSERT per table and chunk, one
# transaction per chunk, never a statement per row. tests/benchmarks/demo_build.py prints the
# time it takes.


@pytest.mark.slow
def test_patients_build_with_one_insert_per_table_and_chunk(engine: Engine) -> None:
    # Two whole chunks and a part of one: every chunk the way a 100k build takes 20 of them
    # (tests/benchmarks/demo_build.py builds 100,000 and prints the time).
    patients = 2 * generator.PATIENTS_PER_CHUNK + 345
    inserts: list[bool] = []  # whether each INSERT sent many rows at once
    commits: list[None] = []

    def on_execute(*arguments: Any) -> None:
        statement, executemany = arguments[2], arguments[5]
        if statement.lstrip().upper().startswith("INSERT"):
            inserts.append(executemany)

    sa.event.listen(engine, "before_cursor_execute", on_execute)
    sa.event.listen(engine, "commit", lambda _connection: commits.append(None))
    summary = build_demo_database(engine, patients=patients, organizations=8)

    chunks = -(-patients // generator.PATIENTS_PER_CHUNK)
    tables_per_chunk = len(DEMO_TABLE_NAMES) - 1  # organizations go in once, before the chunks
    assert all(inserts), "some rows were inserted one statement at a time"
    assert len(inserts) == 1 + chunks * tables_per_chunk
    # Dropping the old tables, creating the new ones, the organizations, then one per chunk.
    assert len(commits) == 3 + chunks
    assert row_count(engine, "patients") == patients
    assert 8 * patients <= summary.sensitive_records <= 10 * patients
