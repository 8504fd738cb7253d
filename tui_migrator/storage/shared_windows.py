"""Windows of keys that any worker of a migration may take (PostgreSQL).

A backup copy's read-back and the verification go over a table a window of keys at a time
(engine/window_steps.py). On PostgreSQL the migration's owner publishes each window here as it
reads the keys, so that a worker that joined the migration can take some of them once it has no
batch left to take. Who does a window is decided by row locks, as for batches:

- The owner takes the next windows in key order with ``FOR UPDATE SKIP LOCKED`` (a window a
  joined worker is doing is locked, so skipped) and marks them taken, in one short transaction.
- A joined worker takes the open window furthest from the owner (the highest number) with
  ``FOR UPDATE SKIP LOCKED`` and keeps its lock while it does the window: what the window came
  to is committed in that same transaction. If
  it fails or dies, the transaction is rolled back and the window is open again.
- The owner takes each window's result in key order; for one a joined worker took, it waits on
  that window's lock (``FOR UPDATE``), then reads what was committed, or, where nothing was
  (the worker failed), takes the window and does it itself.

So every window is done by exactly one worker, and the owner alone adds up the results. The
rows are deleted when their step ends; a step that starts again (a resume) deletes what an
interrupted one left.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from tui_migrator.crypto.codec import decode_key, encode_key
from tui_migrator.storage.database import relax_commit, serialized_write
from tui_migrator.storage.tables import shared_windows_table as windows

Key = tuple[Any, ...]


@dataclass(frozen=True)
class StepName:
    """One pass over one table: ``step`` (engine/window_steps.py names them) of ``table``."""

    migration_id: str
    step: str
    table: str

    def matches(self) -> sa.ColumnElement[bool]:
        return sa.and_(
            windows.c.migration_id == self.migration_id,
            windows.c.step == self.step,
            windows.c.table_name == self.table,
        )


@dataclass(frozen=True)
class TakenWindow:
    """A window a joined worker holds (its lock lives on the connection it was taken on)."""

    name: StepName
    seq: int
    first: Key
    last: Key


def clear(engine: Engine, name: StepName) -> None:
    with serialized_write(engine, durable=False) as connection:
        connection.execute(sa.delete(windows).where(name.matches()))


def publish(engine: Engine, name: StepName, numbered: list[tuple[int, Key, Key]]) -> None:
    """Windows of the step (number, first key, last key), open to any worker; not synced (a
    crash of the server restarts the step, see serialized_write)."""
    with serialized_write(engine, durable=False) as connection:
        connection.execute(
            sa.insert(windows),
            [
                {
                    "migration_id": name.migration_id,
                    "step": name.step,
                    "table_name": name.table,
                    "seq": seq,
                    "first_key": encode_key(first),
                    "last_key": encode_key(last),
                }
                for seq, first, last in numbered
            ],
        )


def take(engine: Engine, name: StepName, first: int, last: int, worker: str) -> set[int]:
    """The owner takes the windows numbered ``first`` to ``last`` that no worker has taken:
    the numbers it now has."""
    in_range = sa.and_(name.matches(), windows.c.seq.between(first, last))
    open_windows = (
        sa.select(windows.c.seq)
        .where(in_range, windows.c.taken_by.is_(None))
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    with serialized_write(engine, durable=False) as connection:
        taken = connection.execute(
            sa.update(windows)
            .where(in_range, windows.c.seq.in_(open_windows))
            .values(taken_by=worker)
            .returning(windows.c.seq)
        )
        return set(taken.scalars())


def result_or_take(engine: Engine, name: StepName, seq: int, worker: str) -> dict[str, Any] | None:
    """What window ``seq`` came to, once the worker that took it has committed (waits for it);
    None if it committed nothing (it failed or died): the owner now has the window to do."""
    with serialized_write(engine, durable=False) as connection:
        row = connection.execute(
            sa.select(windows.c.result, windows.c.taken_by)
            .where(name.matches(), windows.c.seq == seq)
            .with_for_update()
        ).one()
        if row.result is not None:
            return dict(json.loads(row.result))
        if row.taken_by is None:  # rolled back by the worker that had it; locked here now
            connection.execute(
                sa.update(windows).where(name.matches(), windows.c.seq == seq).values(taken_by=worker)
            )
        return None


@contextmanager
def joined_window(
    engine: Engine, migration_id: str, worker: str
) -> Iterator[tuple[Connection, TakenWindow] | None]:
    """For a joined worker: the open window of ``migration_id`` furthest from the owner, locked
    on the yielded connection until the block ends; its writes commit with it, and
    :func:`done` records its result there. None if no window is open. An error rolls everything
    back: the window is open again."""
    with engine.connect() as connection, connection.begin():
        relax_commit(connection)
        row = connection.execute(
            sa.select(windows)
            .where(
                windows.c.migration_id == migration_id,
                windows.c.taken_by.is_(None),
            )
            .order_by(windows.c.seq.desc())
            .limit(1)
            .with_for_update(skip_locked=True)
        ).one_or_none()
        if row is None:
            yield None
            return
        name = StepName(migration_id, row.step, row.table_name)
        connection.execute(
            sa.update(windows).where(name.matches(), windows.c.seq == row.seq).values(taken_by=worker)
        )
        yield connection, TakenWindow(name, row.seq, decode_key(row.first_key), decode_key(row.last_key))


def done(connection: Connection, window: TakenWindow, result: dict[str, Any]) -> None:
    connection.execute(
        sa.update(windows)
        .where(window.name.matches(), windows.c.seq == window.seq)
        .values(result=json.dumps(result))
    )
