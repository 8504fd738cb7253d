"""The one retry rule of the engine: which database errors are worth another try, how long to
wait between tries, and the plain-words error once the budget is spent.

Batches, claims, the workers' bookkeeping (record, table progress, pause and cancel checks) and
the final state of a migration all retry through :func:`with_retries`, so a restarting server
or a lost connection is survived the same way everywhere.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy.exc import (
    DataError,
    DBAPIError,
    IntegrityError,
    InternalError,
    OperationalError,
    ProgrammingError,
)

from tui_migrator.common.errors import DatabaseUnavailable, OperationFailed

log = logging.getLogger(__name__)

# What carries a migration on once a database problem is fixed.
RESUME = "resume"
# PostgreSQL's sqlstate for a write that found no room on its disk.
_DISK_FULL = "53100"
# Where a full disk needs room, in the words of every error that meets one.
_FREE_SPACE = (
    "Free space where the database keeps its files (SQLite: the file system of the database "
    "file and its -wal file; PostgreSQL: the server's data directory or the table's tablespace)"
)

T = TypeVar("T")


class BatchFailed(OperationFailed):
    """A batch kept failing on database errors past its retry budget."""

    code = "batch_failed"


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff for operational database errors (lost connection, lock timeout)."""

    attempts: int = 6
    first_delay: float = 0.2
    max_delay: float = 5.0

    def delays(self) -> list[float]:
        return [min(self.first_delay * 2**n, self.max_delay) for n in range(self.attempts - 1)]


# Recording the final state waits longer for the database than a batch does: a migration that
# failed because the server went away should still say so once the server is back.
FINAL_STATE_RETRY = RetryPolicy(attempts=24, first_delay=0.5, max_delay=5.0)


def with_retries(policy: RetryPolicy, action: Callable[[], T], *, what: str, again: str = RESUME) -> T:
    """Run ``action``, retrying transient database errors (a lost connection, a restarting
    server) with exponential backoff; past the budget, fail with a plain-words error that tells
    the operator to run ``again`` (the command that carries on) once the cause is fixed."""
    for delay in [*policy.delays(), None]:
        try:
            return action()
        except DBAPIError as error:
            if not is_transient(error) or delay is None:
                raise database_failure(error, what, again=again) from None
            log.warning("database error while %s; retrying in %.1f s", what, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")


def is_transient(error: DBAPIError) -> bool:
    """Errors another try may cure: the server or the connection, not the statement — nor a
    full disk, which the seconds of the retries do not empty."""
    if is_disk_full(error):
        return False
    return isinstance(error, OperationalError) or bool(getattr(error, "connection_invalidated", False))


def is_disk_full(error: DBAPIError) -> bool:
    """The database could not grow its files: SQLite's SQLITE_FULL ("database or disk is full"),
    PostgreSQL's disk_full (53100, "could not extend file … No space left on device")."""
    original = error.orig
    if isinstance(original, sqlite3.Error):
        return getattr(original, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
    return getattr(original, "sqlstate", None) == _DISK_FULL


def is_row_refusal(error: DBAPIError) -> bool:
    """Errors a row's own values or the user's schema cause: a check or unique constraint, a
    value the column's type rejects, a user trigger that raises. Another row may well pass."""
    if is_transient(error):
        return False
    if isinstance(error, (IntegrityError, DataError, InternalError)):
        return True
    # PostgreSQL reports a PL/pgSQL RAISE EXCEPTION (class P0) as a ProgrammingError, the class
    # that otherwise means a fault of the statement itself, which is no row's doing.
    return isinstance(error, ProgrammingError) and str(getattr(error.orig, "sqlstate", "")).startswith("P0")


def refusal_reason(error: DBAPIError) -> str:
    """Why the database refused a row, in its own words but without the row's values: for
    PostgreSQL the primary message only (its DETAIL line quotes the failing row)."""
    diagnostics = getattr(error.orig, "diag", None)
    primary = getattr(diagnostics, "message_primary", None)
    text = str(primary) if primary else _first_line(error)
    return text[:200]


def database_failure(error: DBAPIError, what: str, *, again: str = RESUME) -> BatchFailed:
    """The error that ends a migration (or its rollback) when the database keeps failing
    (retries spent), or fails in a way no retry cures; ``again``: the command that carries on."""
    if is_disk_full(error):
        return BatchFailed(
            f"The database's disk is full: it could not grow its files while {what} "
            f"({_first_line(error)}). "
            "The batch was rolled back; nothing is half-written.",
            hint=f"{_FREE_SPACE}, then run {again}."
            + (
                " The migration's backups, tokens and row metadata take more room than the "
                "plaintext did: estimate shows how much."
                if again == RESUME
                else ""
            ),
        )
    return BatchFailed(
        f"Database error while {what}: {_first_line(error)}. "
        "The batch was rolled back; nothing is half-written.",
        hint=f"Fix the database problem, then run {again}.",
    )


def database_unavailable(error: OperationalError) -> DatabaseUnavailable:
    """A command's database failure no retry covered (the faces' commands are not retried: the
    operator runs them again), in plain words: the database's own first line — an operational
    error's, which names the connection, the server or the disk, never a record's value."""
    if is_disk_full(error):
        return DatabaseUnavailable(
            f"The database's disk is full ({_first_line(error)}).",
            hint=f"{_FREE_SPACE}, then run the command again.",
        )
    return DatabaseUnavailable(
        f"The database failed: {_first_line(error)}.",
        hint="Check that the database server is up and reachable (a restart ends every session), "
        "then run the command again.",
    )


def _first_line(error: DBAPIError) -> str:
    text = str(error.orig) if error.orig is not None else str(error)
    return (text.strip().splitlines() or [type(error).__name__])[0]
