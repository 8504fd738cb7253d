"""This process's writers to a SQLite database take turns on a lock of their own: a writer that
asks while another thread writes waits for that lock and goes in as soon as it is free, instead
of being put to sleep by SQLite's busy handler (which, with no wait allowed, refuses at once)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tui_migrator.storage import database
from tui_migrator.storage.database import create_database_engine, serialized_write


@pytest.fixture
def engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[sa.Engine]:
    """A SQLite database whose connections do not wait at all for another writer: one that
    reached SQLite's lock while another holds it would be refused at once."""
    monkeypatch.setattr(database, "SQLITE_BUSY_TIMEOUT_MS", 0)
    engine = create_database_engine(f"sqlite:///{tmp_path / 'turns.db'}")
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE written (writer TEXT)")
    yield engine
    engine.dispose()


def test_a_second_writer_of_this_process_waits_for_its_turn_not_for_sqlite(engine: sa.Engine) -> None:
    first_writing, second_asking = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def second() -> None:
        first_writing.wait()
        second_asking.set()
        try:
            with serialized_write(engine) as connection:
                connection.exec_driver_sql("INSERT INTO written VALUES ('second')")
        except BaseException as error:  # reported below
            errors.append(error)

    thread = threading.Thread(target=second)
    thread.start()
    with serialized_write(engine) as connection:
        connection.exec_driver_sql("INSERT INTO written VALUES ('first')")
        first_writing.set()
        second_asking.wait()
        # The second writer is asking now (or about to): were it let through to SQLite it would
        # be refused at once, with this transaction still open.
        thread.join(timeout=0.2)
    thread.join()

    assert errors == []
    with engine.connect() as connection:
        rows = [row[0] for row in connection.execute(sa.text("SELECT writer FROM written ORDER BY rowid"))]
    assert rows == ["first", "second"]


def test_a_writer_writing_again_from_inside_its_own_transaction_meets_sqlites_refusal_not_a_deadlock(
    engine: sa.Engine,
) -> None:
    with serialized_write(engine) as connection:
        connection.exec_driver_sql("INSERT INTO written VALUES ('outer')")
        with pytest.raises(sa.exc.OperationalError, match="locked"), serialized_write(engine) as inner:
            inner.exec_driver_sql("INSERT INTO written VALUES ('inner')")
