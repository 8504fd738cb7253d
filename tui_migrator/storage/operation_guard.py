"""One undoing or cleaning operation at a time per migration, across processes.

Rollback, purge-backups and sweep each change or read a finished migration's tables for a
while; run together they would trip over each other (a sweep proving no plaintext is left while
a rollback writes it back). Each holds this guard while it runs, and a second one is refused
within a second rather than left waiting behind a long rollback. Not at once: a monitor's look
(:func:`busy`) takes the guard for a moment to see whether it is free, and a detached rollback
that met such a look was refused while the migration stayed marked as rolling back (a test
polling the status every 0.2 s over HTTP hung there, 2026-12-07). An operation that finds the
guard taken tries again for GUARD_GRACE_SECONDS; a look lasts a round trip, an operation minutes.
On PostgreSQL a look now reads the server's lock table instead and takes nothing; SQLite's look
still tries the lock file's byte (Python offers no portable way to ask whether another process
holds a record lock without trying it).

PostgreSQL: a session advisory lock, released by the server when the holder's connection ends,
so a killed process never leaves it held. SQLite: a POSIX record lock on a lock file beside the
database (never on the database file itself: closing any descriptor of a file drops every POSIX
lock the process holds on it, SQLite's own included), released by the kernel when the process
ends; threads of one process are told apart by a lock table in memory, because POSIX record
locks do not exclude each other within a process.
"""

from __future__ import annotations

import fcntl  # POSIX: the tool runs on the database operator's Linux or macOS hosts
import logging
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, NoReturn

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from tui_migrator.common.errors import StateConflict
from tui_migrator.storage.database import database_file

log = logging.getLogger(__name__)

_NAMESPACE = "tui_migrator_operation"
# PostgreSQL: the migration's advisory lock (parameters namespace and id), tried and given back.
_TRY_LOCK = sa.text("SELECT pg_try_advisory_lock(hashtext(:namespace), hashtext(:id))")
_UNLOCK = sa.text("SELECT pg_advisory_unlock(hashtext(:namespace), hashtext(:id))")
# PostgreSQL: whether a session holds that lock, read from pg_locks (which anyone may read), so
# that a monitor's look takes nothing at all (a lock of two int4 keys is shown as classid, objid,
# objsubid 2; each key as an unsigned oid). Another database's lock of the same keys is not it.
_LOCK_GRANTED = sa.text(
    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted "
    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
    "AND classid = hashtext(:namespace)::oid AND objid = hashtext(:id)::oid AND objsubid = 2)"
)
# How long an operation that finds the guard taken tries again before it is refused, and how
# often (see the module's docstring).
GUARD_GRACE_SECONDS = 1.0
RETRY_SECONDS = 0.02
_held: set[tuple[str, str]] = set()
_held_lock = threading.Lock()
_lock_files: dict[Path, BinaryIO] = {}


@contextmanager
def exclusive(engine: Engine, migration_id: str, operation: str) -> Iterator[None]:
    """Hold the migration's guard while the block runs; refuse (BadInput) if another holds it."""
    place = (engine.url.render_as_string(hide_password=True), migration_id)
    with _held_lock:
        if place in _held:
            refuse(migration_id, operation)
        _held.add(place)
    try:
        if engine.dialect.name == "postgresql":
            with _advisory_lock(engine, migration_id, operation):
                yield
        else:
            with _file_lock(database_file(engine), migration_id, operation):
                yield
    finally:
        with _held_lock:
            _held.discard(place)


def busy(engine: Engine, migration_id: str) -> bool:
    """Whether a rollback, purge-backups or sweep of the migration holds its guard now, in this
    process or another (for a monitor to say so). On PostgreSQL it takes nothing (pg_locks); on
    SQLite it tries the lock file's byte and gives it back at once."""
    place = (engine.url.render_as_string(hide_password=True), migration_id)
    with _held_lock:
        # Checked, and the lock tried, under _held_lock: a thread of this process that holds the
        # guard is in _held, and no thread can take it meanwhile (a POSIX unlock below would
        # otherwise release that thread's lock, since record locks are per process).
        if place in _held:
            return True
        if engine.dialect.name == "postgresql":
            return _advisory_lock_taken(engine, migration_id)
        database = database_file(engine)
        if database is None:
            return False
        handle = _lock_file_unlocked(Path(f"{database}-tm-lock"))
        offset = zlib.crc32(migration_id.encode())
        try:
            fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, offset)
        except OSError:
            return True
        fcntl.lockf(handle, fcntl.LOCK_UN, 1, offset)
        return False


def _again_within_grace(attempt: Callable[[], bool]) -> bool:
    """``attempt`` (a try to take the guard), tried again until it succeeds or
    GUARD_GRACE_SECONDS have passed; whether it succeeded."""
    deadline = time.monotonic() + GUARD_GRACE_SECONDS
    while not attempt():
        if time.monotonic() >= deadline:
            return False
        _pause()
    return True


def _pause() -> None:
    time.sleep(RETRY_SECONDS)


def _advisory_lock_taken(engine: Engine, migration_id: str) -> bool:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        return bool(
            connection.execute(_LOCK_GRANTED, {"namespace": _NAMESPACE, "id": migration_id}).scalar_one()
        )


@contextmanager
def _advisory_lock(engine: Engine, migration_id: str, operation: str) -> Iterator[None]:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        keys = {"namespace": _NAMESPACE, "id": migration_id}
        if not _again_within_grace(lambda: bool(connection.execute(_TRY_LOCK, keys).scalar_one())):
            refuse(migration_id, operation)
        try:
            yield
        finally:
            try:
                connection.execute(_UNLOCK, keys)
            except DBAPIError as error:
                # The session ended under the operation (a server restart, a lost connection),
                # and the server released its lock with it: nothing is left to give back. The
                # operation itself is fenced by its claim (storage.migration_claims), not by this.
                if not error.connection_invalidated:
                    raise
                log.warning("the guard of %s's %s ended with its database session", migration_id, operation)


@contextmanager
def _file_lock(database: Path | None, migration_id: str, operation: str) -> Iterator[None]:
    if database is None:
        yield
        return
    handle = _lock_file(Path(f"{database}-tm-lock"))
    # One byte per migration in one file (left in place, like SQLite's -shm).
    offset = zlib.crc32(migration_id.encode())

    def try_lock() -> bool:
        try:
            fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, offset)
        except OSError:
            return False
        return True

    if not _again_within_grace(try_lock):
        refuse(migration_id, operation)
    try:
        yield
    finally:
        fcntl.lockf(handle, fcntl.LOCK_UN, 1, offset)


def _lock_file(path: Path) -> BinaryIO:
    """The lock file, opened once per process and kept open: closing any descriptor of a file
    would drop every POSIX lock the process holds on it, other threads' included."""
    with _held_lock:
        return _lock_file_unlocked(path)


def _lock_file_unlocked(path: Path) -> BinaryIO:
    """_lock_file for a caller that already holds _held_lock."""
    handle = _lock_files.get(path)
    if handle is None:
        handle = _lock_files[path] = open(path, "ab")  # noqa: SIM115 (kept open on purpose)
    return handle


def refuse(migration_id: str, operation: str) -> NoReturn:
    raise StateConflict(
        f"Another rollback, purge-backups or sweep of {migration_id} is running, so '{operation}' "
        "was refused; nothing was changed.",
        hint=f"Wait for it to finish (tui-migrator status {migration_id}), then try again.",
    )
