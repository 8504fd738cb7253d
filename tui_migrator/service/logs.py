"""The logs an operator reads to learn why something failed: a migration's worker log and the
error log, where the full details of unexpected errors are kept. Both live in the database's
log folder (engine/log_files.py).

Their details may quote record values (a driver's error message can), so they stay in files
only this user can read, and are shown only to an operator with a role who asks for them.
"""

from __future__ import annotations

import os
import traceback
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from tui_migrator.engine.log_files import error_log_path, log_path, open_private_log
from tui_migrator.service.access import authorize
from tui_migrator.service.session import Session
from tui_migrator.storage import migration_records as migrations
from tui_migrator.storage.operators import Action

# The lines shown of a log: a worker log grows with every run of its migration.
TAIL_LINES = 500
_BLOCK_BYTES = 64 * 1024


@dataclass(frozen=True)
class LogTail:
    """The last lines of one log file."""

    path: Path
    lines: list[str] = field(default_factory=list)
    # Why nothing was read (no such file yet, no permission), in words; None when it was.
    problem: str | None = None
    # Whether older lines were left out.
    truncated: bool = False
    # Whether the file is not there (yet): then ``problem`` says so.
    missing: bool = False


def worker_log(session: Session, migration_id: str, *, lines: int = TAIL_LINES) -> LogTail:
    authorize(session, Action.READ, "log")
    # An unknown id is an error, not a missing file (and never becomes part of a path).
    migrations.get(session.engine, migration_id)
    return read_tail(log_path(session.settings, migration_id), lines)


def error_log(session: Session, *, lines: int = TAIL_LINES) -> LogTail:
    authorize(session, Action.READ, "log")
    return read_tail(error_log_path(session.settings), lines)


def record_error(session: Session, operation: str, error: BaseException) -> Path:
    """Append ``error`` with its traceback to the error log, under a line naming the operation
    that failed and who ran it; return the log's path. Raises OSError if it cannot be written."""
    path = error_log_path(session.settings)
    moment = datetime.now(UTC).isoformat(timespec="seconds")
    heading = f"{moment} {operation} failed (user {session.user}, process {os.getpid()})\n"
    text = heading + "".join(traceback.format_exception(error)) + "\n"
    with open_private_log(path) as log:
        log.write(text.encode("utf-8", errors="replace"))
    return path


def read_tail(path: Path, limit: int) -> LogTail:
    """The last ``limit`` lines of ``path``, read from its end so a long log costs no more."""
    try:
        with path.open("rb") as file:
            position = file.seek(0, os.SEEK_END)
            data = b""
            # One line more than asked for, so the first kept line is whole.
            while position > 0 and data.count(b"\n") <= limit:
                step = min(_BLOCK_BYTES, position)
                position -= step
                file.seek(position)
                data = file.read(step) + data
    except FileNotFoundError:
        return LogTail(path, problem="There is no log here yet.", missing=True)
    except OSError as error:
        # strerror only ("Permission denied"): the words of the system, never file contents.
        return LogTail(path, problem=f"The log cannot be read: {error.strerror or type(error).__name__}.")
    lines = data.decode("utf-8", errors="replace").splitlines()
    return LogTail(path, lines[max(0, len(lines) - limit) :], truncated=position > 0 or len(lines) > limit)
