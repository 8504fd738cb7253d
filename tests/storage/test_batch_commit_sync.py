"""A batch's commit on SQLite is not synced to disk (synchronous NORMAL in WAL mode); every other
write, and the connection once the batch is done, keeps the level it had (FULL by default)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa

from tui_migrator.storage.database import after_commit, create_database_engine, serialized_write

FULL, NORMAL = 2, 1


def synchronous(connection: sa.Connection) -> int:
    return int(connection.exec_driver_sql("PRAGMA synchronous").scalar_one())


@pytest.fixture
def engine(tmp_path: Path) -> sa.Engine:
    engine = create_database_engine(f"sqlite:///{tmp_path / 'records.db'}")
    with serialized_write(engine) as connection:
        connection.exec_driver_sql("CREATE TABLE t (x INTEGER)")
    return engine


def test_a_batch_write_is_not_synced_and_the_level_comes_back(engine: sa.Engine) -> None:
    with serialized_write(engine, durable=False) as connection:
        assert synchronous(connection) == NORMAL
        connection.exec_driver_sql("INSERT INTO t VALUES (1)")
    with serialized_write(engine) as connection:
        assert synchronous(connection) == FULL
        assert connection.exec_driver_sql("SELECT count(*) FROM t").scalar_one() == 1


def test_the_level_comes_back_after_a_failed_batch(engine: sa.Engine) -> None:
    with pytest.raises(RuntimeError), serialized_write(engine, durable=False) as connection:
        connection.exec_driver_sql("INSERT INTO t VALUES (1)")
        raise RuntimeError("the batch failed")
    with serialized_write(engine) as connection:
        assert synchronous(connection) == FULL
        assert connection.exec_driver_sql("SELECT count(*) FROM t").scalar_one() == 0


def test_nothing_outside_the_database_follows_a_batch_commit(engine: sa.Engine) -> None:
    """An audit anchor line must never name an entry a power loss could undo."""
    with pytest.raises(RuntimeError, match="durable"), serialized_write(engine, durable=False) as connection:
        after_commit(connection, lambda: None)


def test_without_wal_nothing_is_relaxed() -> None:
    engine = create_database_engine("sqlite://")
    with serialized_write(engine, durable=False) as connection:
        assert synchronous(connection) == FULL


def test_a_connection_that_cannot_be_set_back_is_dropped(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Never a durable write on a connection left unsynced."""
    from tui_migrator.storage import database

    real = database._set_synchronous
    calls: list[int] = []

    def failing_restore(connection: sa.Connection, level: int) -> None:
        calls.append(level)
        if level != NORMAL:
            raise sqlite3.OperationalError("disk I/O error")
        real(connection, level)

    monkeypatch.setattr(database, "_set_synchronous", failing_restore)
    with serialized_write(engine, durable=False) as connection:
        driver = connection.connection.driver_connection
        connection.exec_driver_sql("INSERT INTO t VALUES (1)")
    assert calls == [NORMAL, FULL]
    monkeypatch.setattr(database, "_set_synchronous", real)
    with serialized_write(engine) as connection:
        assert connection.connection.driver_connection is not driver
        assert synchronous(connection) == FULL
