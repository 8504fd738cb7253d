"""SQLite's row metadata lookup: the driver runs it, as many keys per statement as the build
allows parameters; what it returns is exactly what was recorded, for any text."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.row_metadata_items import recorded_items
from tui_migrator.storage import row_metadata
from tui_migrator.storage.database import create_database_engine
from tui_migrator.storage.tables import metadata as tool_metadata
from tui_migrator.storage.tables import row_metadata_table

AT = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
# Any text SQLite can hold (no lone surrogate: Python's driver cannot encode one).
ANY_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)


@pytest.fixture
def engine(tmp_path: Path) -> sa.Engine:
    engine = create_database_engine(f"sqlite:///{tmp_path / 'metadata.db'}")
    with engine.begin() as connection:
        tool_metadata.create_all(connection, tables=[row_metadata_table])
    return engine


def item(row_key: str, **values: Any) -> dict[str, Any]:
    return {
        "row_key": row_key,
        "key_id": values.get("key_id", "dek_1"),
        "digest": values.get("digest", f"digest of {row_key}"),
        "sealed_columns": values.get("sealed_columns", '{"name": "nonce"}'),
        "tokens_digest": values.get("tokens_digest"),
    }


def recorded(items: list[dict[str, Any]]) -> dict[str, tuple[Any, ...]]:
    return {
        entry["row_key"]: (entry["digest"], entry["sealed_columns"], entry["tokens_digest"], entry["key_id"])
        for entry in items
    }


def test_more_keys_than_one_statement_may_bind_are_looked_up_in_several(engine: sa.Engine) -> None:
    items = [item(f'["{number}"]', tokens_digest=None if number % 3 else "t") for number in range(40)]
    with engine.begin() as connection:
        row_metadata.record(connection, "m1", "patients", items, AT)
        row_metadata.record(connection, "m2", "patients", [item('["0"]', digest="other migration")], AT)
        driver = connection.connection.driver_connection
        assert isinstance(driver, sqlite3.Connection)
        before = driver.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 9)  # 7 keys a statement
        try:
            wanted = [entry["row_key"] for entry in items] + ['["not recorded"]']
            found = row_metadata.sealed_rows(connection, "m1", "patients", wanted)
            nothing = row_metadata.sealed_rows(connection, "m1", "patients", [])
        finally:
            driver.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, before)
    assert found == recorded(items)
    assert nothing == {}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(items=recorded_items(ANY_TEXT))
def test_row_metadata_reads_back_any_text_exactly(engine: sa.Engine, items: list[dict[str, Any]]) -> None:
    with engine.begin() as connection:
        connection.execute(sa.delete(row_metadata_table))
        row_metadata.record(connection, "m1", "patients", items, AT)
        found = row_metadata.sealed_rows(connection, "m1", "patients", [entry["row_key"] for entry in items])
    assert found == recorded(items)
