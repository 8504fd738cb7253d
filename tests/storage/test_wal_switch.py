"""Processes opening a brand-new SQLite database at once all end up in WAL mode.

Switching a file to WAL needs it to itself; when several connections try at the same moment,
SQLite answers some of them "database is locked" at once, without waiting out the busy timeout.
Opening a connection must wait and look again, as a write would, not fail the whole command.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.support.threads import run_at_once
from tui_migrator.storage import database
from tui_migrator.storage.database import create_database_engine

OPENERS = 6
NEW_FILES = 25


def test_connections_opening_a_new_file_together_all_get_wal(tmp_path: Path) -> None:
    # Without the retry about one new file in five failed here; 25 files make a pass by luck
    # vanishingly unlikely.
    for number in range(NEW_FILES):
        errors, modes = _open_together(tmp_path / f"new-{number}.db")
        assert errors == [], f"file {number}"
        assert modes == ["wal"] * OPENERS


def _open_together(path: Path) -> tuple[list[BaseException], list[str]]:
    """Open ``path`` from OPENERS engines at the same moment; their errors and journal modes."""
    engines = [create_database_engine(f"sqlite:///{path}") for _ in range(OPENERS)]
    modes: list[str] = []

    def open_one(engine: sa.Engine) -> None:
        with engine.connect() as connection:
            modes.append(str(connection.exec_driver_sql("PRAGMA journal_mode").scalar_one()))

    errors = run_at_once(open_one, engines)
    for engine in engines:
        engine.dispose()
    return errors, modes


class _LockedCursor:
    """A cursor whose switch to WAL is refused as locked a given number of times."""

    def __init__(self, refusals: int, message: str = "database is locked") -> None:
        self.refusals = refusals
        self.message = message
        self.mode = "delete"
        self.attempts = 0

    def execute(self, statement: str) -> _LockedCursor:
        self.last = statement
        if statement == "PRAGMA journal_mode = WAL":
            self.attempts += 1
            if self.attempts <= self.refusals:
                raise sqlite3.OperationalError(self.message)
            self.mode = "wal"
        return self

    def fetchone(self) -> tuple[str]:
        return (self.mode,)


def test_a_refused_switch_is_tried_again_until_it_succeeds() -> None:
    cursor = _LockedCursor(refusals=3)
    database._switch_to_wal(cursor)  # type: ignore[arg-type]
    assert (cursor.attempts, cursor.mode) == (4, "wal")


def test_a_file_already_in_wal_is_not_switched_again() -> None:
    cursor = _LockedCursor(refusals=1)
    cursor.mode = "wal"
    database._switch_to_wal(cursor)  # type: ignore[arg-type]
    assert cursor.attempts == 0


def test_other_errors_are_not_retried() -> None:
    cursor = _LockedCursor(refusals=1, message="disk I/O error")
    with pytest.raises(sqlite3.OperationalError, match="disk I/O error"):
        database._switch_to_wal(cursor)  # type: ignore[arg-type]
    assert cursor.attempts == 1


def test_a_lock_held_past_the_busy_timeout_fails_as_a_write_would(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(database, "SQLITE_BUSY_TIMEOUT_MS", 50)
    cursor = _LockedCursor(refusals=10**9)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        database._switch_to_wal(cursor)  # type: ignore[arg-type]
    assert cursor.attempts > 1
