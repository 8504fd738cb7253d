"""SQLite's ``secure_delete`` on every connection the tool opens.

With it on, SQLite overwrites the content it deletes — the old version of a row an UPDATE
replaced, a dropped backup table's pages — with zeros instead of leaving it in free space, so
less plaintext lingers in the file between a migration and its sweep. Most SQLite builds leave
it off. It is a per-connection setting: applications' own connections keep theirs.
"""

from __future__ import annotations

import sqlite3

from sqlalchemy import event
from sqlalchemy.engine import Engine


def overwrite_deleted_content(engine: Engine) -> None:
    """Turn ``secure_delete`` on for every connection ``engine`` opens from now on.

    Call it before the engine's first connection: connections already in its pool keep the
    setting they were opened with. Does nothing for other databases."""
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        dbapi_connection.execute("PRAGMA secure_delete = ON").close()


def is_on(dbapi_connection: sqlite3.Connection) -> bool:
    row = dbapi_connection.execute("PRAGMA secure_delete").fetchone()
    return bool(row and row[0])
