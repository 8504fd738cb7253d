"""Removing the old versions of migrated rows from the database's files: the sweep's first half.

An UPDATE leaves the row it replaced behind: SQLite in the free space of its pages and in the
write-ahead log, PostgreSQL as a dead tuple in the heap until the table is rewritten.

SQLite: the tool's connections overwrite deleted content (storage/secure_delete.py);
``wal_checkpoint(TRUNCATE)`` copies the log into the file and empties it; VACUUM rebuilds the
file from the live rows only, through the log, which a second checkpoint empties again. A
connection inside a read transaction keeps the old pages in use and stops the checkpoint: after
a short wait that is said plainly (what, where, how to fix), rather than waited out. The database is never
swapped for a VACUUM INTO copy: other processes keep the old file open, with its locks, and
would go on writing to a file nobody reads any more.

PostgreSQL: VACUUM FULL rewrites each table with its TOAST table and indexes into new files,
holding an ACCESS EXCLUSIVE lock while it runs (hence the confirmation the service asks for).
It keeps row versions that a transaction older than the migration's end may still see, so those
transactions are named first; and it waits for its lock at most LOCK_TIMEOUT_SECONDS, because
while it waits every other query on the table queues behind it. CHECKPOINT then puts the new
files' pages on disk, where the proof reads them.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from tui_migrator.storage import secure_delete
from tui_migrator.storage.database import SQLITE_BUSY_TIMEOUT_MS, writer_turn

# How long a checkpoint waits for readers to finish before the sweep reports them.
CHECKPOINT_WAIT_MS = 2_000
LOCK_TIMEOUT_SECONDS = 5
# sqlstates of the errors worth explaining in words
_LOCK_NOT_AVAILABLE = "55P03"
_INSUFFICIENT_PRIVILEGE = "42501"


@dataclass(frozen=True)
class Step:
    """One cleaning step, whether it did its work, and in words what happened."""

    name: str
    done: bool
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"step": self.name, "done": self.done, "detail": self.detail}


# -- SQLite ----------------------------------------------------------------------------------


def clean_sqlite(engine: Engine, database: Path, meanwhile: Callable[[], None] | None = None) -> list[Step]:
    """secure_delete, checkpoint, VACUUM, checkpoint — stopping at the first step that cannot
    do its work, since the later ones depend on it.

    ``meanwhile`` runs in a thread of its own while VACUUM does (which releases the GIL while
    it works): work that only reads the database, such as taking the proof's sample. It
    starts after the first checkpoint and has ended before the second, which a reader still
    inside a transaction would stop; what it raises is raised here. It does not run where VACUUM
    does not, nor without a write-ahead log (the caller sees that it did not)."""
    raw = engine.raw_connection()
    try:
        connection = raw.driver_connection
        assert isinstance(connection, sqlite3.Connection)  # the engine is a SQLite one
        # Informational: without it (a build that lacks it), VACUUM still removes the old rows.
        steps = [
            Step(
                "secure_delete",
                True,
                "on for the tool's connections: what they delete is overwritten with zeros"
                if secure_delete.is_on(connection)
                else "not available in this SQLite build; VACUUM alone removes the old rows",
            )
        ]
        wal = str(connection.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal"
        # Each checkpoint in this process's writer turn: none of its commits may reset the log
        # while one runs — SQLite's WAL-reset bug (storage/sqlite_library.py).
        if wal:
            with writer_turn(engine):
                steps.append(_checkpoint(connection, database))
            if not steps[-1].done:
                return steps
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sweep-meanwhile") as thread:
            # Only beside a log: without one VACUUM locks readers out (and they it).
            running = thread.submit(meanwhile) if meanwhile is not None and wal else None
            steps.append(_vacuum(connection, database))
            if running is not None:
                running.result()
        if wal and steps[-1].done:
            with writer_turn(engine):
                steps.append(_checkpoint(connection, database))
        return steps
    finally:
        raw.close()


def _checkpoint(connection: sqlite3.Connection, database: Path) -> Step:
    connection.execute(f"PRAGMA busy_timeout = {CHECKPOINT_WAIT_MS}")
    try:
        busy, frames, copied = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    except sqlite3.OperationalError as error:
        return Step("wal_checkpoint", False, f"wal_checkpoint(TRUNCATE) failed on {database}: {error}")
    finally:
        connection.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
    if busy:
        return Step(
            "wal_checkpoint",
            False,
            f"another connection to {database} is inside a transaction (an application, a "
            f"monitoring tool or a sqlite3 shell left in BEGIN), which keeps the pages the "
            f"migration replaced in use: {copied} of {frames} log frames were copied back "
            f"and {database}-wal was not emptied, so VACUUM was not run. End or commit that "
            "transaction (closing the connection also works), then sweep again.",
        )
    return Step("wal_checkpoint", True, f"{database}-wal copied into the database and emptied")


def _vacuum(connection: sqlite3.Connection, database: Path) -> Step:
    size = database.stat().st_size
    # VACUUM writes a temporary copy, then every page again through the log.
    free = shutil.disk_usage(database.parent).free
    if free < 2 * size:
        return Step(
            "vacuum",
            False,
            f"VACUUM needs about twice the database's size free ({2 * size:,} bytes); "
            f"{free:,} bytes are free at {database.parent}. Free some space, then sweep again.",
        )
    # VACUUM's commit would checkpoint the log it filled at once, outside the writer turn (a
    # reading thread may need to write meanwhile: the turn is not held across VACUUM), and right
    # before the sweep's own checkpoint: two checkpoints in a row, the WAL-reset bug's opening.
    # The checkpoint after VACUUM, in the turn, copies the log back instead.
    automatic_pages = int(connection.execute("PRAGMA wal_autocheckpoint").fetchone()[0])
    connection.execute("PRAGMA wal_autocheckpoint = 0")
    try:
        connection.execute("VACUUM")
    except sqlite3.Error as error:
        return Step("vacuum", False, f"VACUUM of {database} failed: {error}")
    finally:
        connection.execute(f"PRAGMA wal_autocheckpoint = {automatic_pages}")
    return Step("vacuum", True, f"{database} rebuilt from its live rows only")


# -- PostgreSQL ------------------------------------------------------------------------------


def old_transactions(connection: Connection, since: datetime | None) -> list[str]:
    """Sessions of this database whose transaction began before ``since`` (the migration's
    end) and is still open, and replication slots holding old rows: VACUUM FULL must keep the
    row versions they may still see. Described by process id, user, application and start —
    never their queries, which may hold values."""
    found = []
    if since is not None:
        sessions = connection.execute(
            sa.text(
                "SELECT pid, usename, application_name, xact_start FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                "AND backend_xmin IS NOT NULL AND xact_start < :since ORDER BY xact_start"
            ),
            {"since": since},
        )
        found += [
            f"session {row.pid} of {row.usename or '?'} ({row.application_name or 'no application name'}), "
            f"in a transaction since {row.xact_start.isoformat(timespec='seconds')}"
            for row in sessions
        ]
    slots = connection.execute(
        sa.text(
            "SELECT slot_name FROM pg_replication_slots "
            "WHERE xmin IS NOT NULL AND (database IS NULL OR database = current_database())"
        )
    )
    found += [f"replication slot {row.slot_name}, which holds old rows for its replica" for row in slots]
    return found


def clean_postgresql(engine: Engine, tables: list[str]) -> list[Step]:
    """VACUUM FULL each table, then CHECKPOINT."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql(f"SET lock_timeout = '{LOCK_TIMEOUT_SECONDS}s'")
        try:
            steps = [_vacuum_full(connection, table) for table in tables]
        finally:
            connection.exec_driver_sql("RESET lock_timeout")
        steps.append(_checkpoint_server(connection))
    return steps


def _vacuum_full(connection: Connection, table: str) -> Step:
    name = f"vacuum_full {table}"
    before = _file_node(connection, table)
    quote = connection.dialect.identifier_preparer.quote
    try:
        connection.exec_driver_sql(f"VACUUM (FULL) {quote(table)}")
    except DBAPIError as error:
        return Step(name, False, _vacuum_failure(table, error))
    if _file_node(connection, table) == before:
        # PostgreSQL only warns, and skips the table, when the user may not vacuum it.
        return Step(
            name,
            False,
            f"VACUUM FULL skipped {table}: the tool's database user does not own it. "
            "Run the sweep as the table's owner (or a superuser).",
        )
    return Step(name, True, f"{table}, its TOAST table and its indexes rewritten into new files")


def _checkpoint_server(connection: Connection) -> Step:
    try:
        connection.exec_driver_sql("CHECKPOINT")
    except DBAPIError as error:
        return Step(
            "checkpoint",
            False,
            f"CHECKPOINT was refused ({_driver_words(error)}): pages still in the server's memory "
            "may not be in the files read. GRANT pg_checkpoint to the tool's database user "
            "(PostgreSQL 15+), or run the sweep as a superuser.",
        )
    return Step("checkpoint", True, "the server wrote every changed page to the files")


def _file_node(connection: Connection, table: str) -> int | None:
    node = connection.execute(
        sa.text(
            "SELECT pg_relation_filenode(to_regclass(quote_ident(current_schema()) || '.' || quote_ident(:name)))"
        ),
        {"name": table},
    ).scalar_one()
    return None if node is None else int(node)


def _vacuum_failure(table: str, error: DBAPIError) -> str:
    state = getattr(error.orig, "sqlstate", None)
    if state == _LOCK_NOT_AVAILABLE:
        return (
            f"VACUUM FULL could not lock {table} within {LOCK_TIMEOUT_SECONDS} s: another session is "
            "using it (waiting longer would stall every query on it). Sweep again when it is quieter."
        )
    if state == _INSUFFICIENT_PRIVILEGE:
        return f"VACUUM FULL of {table} was refused: run the sweep as the table's owner or a superuser."
    return f"VACUUM FULL of {table} failed: {_driver_words(error)}"


def _driver_words(error: DBAPIError) -> str:
    text = str(error.orig) if error.orig is not None else str(error)
    return (text.strip().splitlines() or [type(error).__name__])[0]
