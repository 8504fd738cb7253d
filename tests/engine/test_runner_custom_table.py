"""A database that is not the demo: its own mapping, composite and text keys, typed columns and
mixed SQLite storage classes — migrated completely and rolled back byte for byte."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.support.databases import opened_on_mapping
from tests.support.migration_helpers import assert_fully_encrypted, raw_dump
from tui_migrator.service.facade import MigratorService
from tui_migrator.storage.migration_status import Status

MAPPING = """
[[tables]]
name = "visits"
category = "MOTOR_SYMPTOMS"
primary_key = ["patient", "encounter", "code"]
organization_column = "site"
default_organization = "org_fallback"
columns = ["summary", "score", "seen_on", "payload", "blob", "ratio", "flag", "short_code"]

[[tables]]
name = "contacts"
category = "EMERGENCY_CONTACTS"
primary_key = "ref"
columns = ["name", "phone"]
"""


@pytest.fixture
def clinic(tmp_path: Path) -> Iterator[MigratorService]:
    url = f"sqlite:///{tmp_path / 'clinic.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "CREATE TABLE visits (patient TEXT, encounter INTEGER, code TEXT, site TEXT, summary TEXT, "
            "score INTEGER, seen_on DATE, payload JSON, blob BLOB, ratio NUMERIC(6, 3), flag BOOLEAN, "
            "short_code VARCHAR(8), untouched TEXT, PRIMARY KEY (patient, encounter, code))"
        )
        connection.exec_driver_sql("CREATE TABLE contacts (ref TEXT PRIMARY KEY, name TEXT, phone TEXT)")
        visits = []
        for n in range(300):
            visits.append(
                (
                    f"p-{n % 37}",
                    n,
                    "ABC"[n % 3],
                    ["org_x", "org_y", None, ""][n % 4],
                    f'Visit {n}: Ærøskøbing, "quoted"\nline two 🧠' if n % 5 else None,
                    n % 133 if n % 7 else None,
                    f"2024-{1 + n % 12}-{1 + n % 28}",
                    '{"a": [1, 2.5]}',
                    bytes([n % 256]) * (n % 5),
                    [1.25, 100, "7.500", -0.0][n % 4],
                    n % 2,
                    f"C{n}",
                    "not mapped",
                )
            )
        connection.exec_driver_sql("INSERT INTO visits VALUES (" + ", ".join("?" * 13) + ")", visits)
        connection.exec_driver_sql(
            "INSERT INTO contacts VALUES (?, ?, ?)",
            [(f"ref-{n:04d}", f"Łucja {n}", f"+48 600 {n:03d} 000") for n in range(120)],
        )
    engine.dispose()
    with opened_on_mapping(tmp_path, url, MAPPING) as service:
        yield service


def test_own_mapping_migrates_completely_and_rolls_back_byte_for_byte(clinic: MigratorService) -> None:
    before = raw_dump(clinic.engine)
    record = clinic.start({"batch_size": 25, "max_concurrency": 3})
    assert record.status is Status.COMPLETED, record.error_message
    assert record.failed_records == 0
    assert record.encrypted_records == 420
    assert assert_fully_encrypted(clinic, clinic.mapping(), before) == 420
    with clinic.engine.connect() as connection:
        columns = {c["name"] for c in sa.inspect(connection).get_columns("visits")}
        assert {"score__tm_token", "seen_on__tm_token", "short_code__tm_token"} <= columns
        assert (
            connection.exec_driver_sql(
                "SELECT count(*) FROM visits WHERE untouched = 'not mapped'"
            ).scalar_one()
            == 300
        )
    # Rows with an empty or NULL site were sealed under the mapping's default organization.
    keys = {k.organization_id for k in clinic.data_keys()}
    assert keys == {"org_x", "org_y", "org_fallback", "default"}

    clinic.rollback(record.id, confirm=True)
    assert raw_dump(clinic.engine) == before


def test_own_mapping_dry_run_changes_nothing(clinic: MigratorService) -> None:
    before = raw_dump(clinic.engine)
    record = clinic.start({"batch_size": 50, "dry_run": True})
    assert record.status is Status.COMPLETED and record.encrypted_records == 420
    assert raw_dump(clinic.engine) == before
