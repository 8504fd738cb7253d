"""storage.database.savepoint: part of a transaction undone where it raises, the rest kept; and
where the database ended the whole transaction itself (SQLite on a full disk), the error that
ended it is the one raised, not the savepoint's "no such savepoint"."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from tui_migrator.storage.database import create_database_engine, savepoint


@pytest.fixture
def engine(tmp_path: Path) -> sa.Engine:
    engine = create_database_engine(f"sqlite:///{tmp_path / 'savepoint.db'}")
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE t (x INTEGER)")
    return engine


def stored(engine: sa.Engine) -> list[int]:
    with engine.connect() as connection:
        return [x for (x,) in connection.exec_driver_sql("SELECT x FROM t ORDER BY x")]


def test_what_raises_inside_is_undone_and_the_rest_of_the_transaction_kept(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        connection.exec_driver_sql("INSERT INTO t VALUES (1)")
        with pytest.raises(ValueError), savepoint(connection):
            connection.exec_driver_sql("INSERT INTO t VALUES (2)")
            raise ValueError("refused")
        with savepoint(connection):
            connection.exec_driver_sql("INSERT INTO t VALUES (3)")
    assert stored(engine) == [1, 3]


def test_a_full_disk_is_said_as_such_not_as_a_lost_savepoint(engine: sa.Engine) -> None:
    with engine.connect() as connection:
        pages = connection.exec_driver_sql("PRAGMA page_count").scalar_one()
        connection.exec_driver_sql(f"PRAGMA max_page_count = {pages}")  # this connection's only
        connection.commit()
        filling = (
            "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 100000) "
            "INSERT INTO t SELECT x FROM n"
        )
        with (
            pytest.raises(sa.exc.OperationalError, match="database or disk is full"),
            connection.begin(),
            savepoint(connection),
        ):
            connection.exec_driver_sql(filling)
    assert stored(engine) == []
