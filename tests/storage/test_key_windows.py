"""Windows of keys, what a reader in another process is given instead of rows: they cover every
key in order, never overlap, and a query that does not move past the last key fails instead of
handing out the same window for ever."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tui_migrator.storage.database import KeysQuery, create_database_engine, key_windows


@pytest.fixture
def engine(tmp_path: Path) -> Any:
    engine = create_database_engine(f"sqlite:///{tmp_path / 'keys.db'}")
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE pairs (a INTEGER, b TEXT, PRIMARY KEY (a, b))")
        connection.exec_driver_sql(
            "INSERT INTO pairs VALUES " + ", ".join(f"({n // 3}, 'k{n % 3}')" for n in range(25))
        )
    yield engine
    engine.dispose()


PAIRS = sa.table("pairs", sa.column("a"), sa.column("b"))


def next_seven(after: tuple[Any, ...] | None) -> KeysQuery:
    query = sa.select(PAIRS.c.a, PAIRS.c.b).order_by(PAIRS.c.a, PAIRS.c.b).limit(7)
    if after is None:
        return query, None
    # As the run's own are: a statement built once, the key given as parameters.
    key = sa.tuple_(sa.bindparam("after_a"), sa.bindparam("after_b"))
    return query.where(sa.tuple_(PAIRS.c.a, PAIRS.c.b) > key), {"after_a": after[0], "after_b": after[1]}


def test_windows_cover_every_key_in_order_without_overlapping(engine: sa.Engine) -> None:
    reads = []

    def reading(read: Any) -> Any:
        reads.append(read)
        return read()

    windows = list(key_windows(engine, next_seven, reading))

    keys = [(n // 3, f"k{n % 3}") for n in range(25)]
    assert windows == [(keys[i], keys[min(i + 6, 24)]) for i in range(0, 25, 7)]
    assert len(reads) == len(windows) + 1  # the last read finds no key


def test_a_query_that_does_not_move_past_the_last_key_fails_instead_of_looping(engine: sa.Engine) -> None:
    def always_the_first(_after: tuple[Any, ...] | None) -> KeysQuery:
        return next_seven(None)

    windows = key_windows(engine, always_the_first)
    assert next(windows) == ((0, "k0"), (2, "k0"))
    with pytest.raises(RuntimeError, match="did not start after the last one"):
        next(windows)


def test_a_window_starting_at_the_last_key_again_fails(engine: sa.Engine) -> None:
    # As a key bound in a type that rounds it would: "after 1.1" finds the stored 1.1 again.
    def at_or_after(after: tuple[Any, ...] | None) -> KeysQuery:
        query = sa.select(PAIRS.c.a, PAIRS.c.b).order_by(PAIRS.c.a, PAIRS.c.b).limit(7)
        return query if after is None else query.where(
            sa.tuple_(PAIRS.c.a, PAIRS.c.b) >= sa.tuple_(*after)
        ), None

    windows = key_windows(engine, at_or_after)
    assert next(windows) == ((0, "k0"), (2, "k0"))
    with pytest.raises(RuntimeError, match="did not start after the last one"):
        next(windows)
