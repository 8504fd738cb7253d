"""Detached workers: a migration that keeps running when the terminal or SSH session goes away.

The worker is a new ``tui-migrator worker ID`` process in its own session (so the terminal's
hang-up never reaches it), with no stdin and its output in the migration's log file, in the
database's log folder (engine/log_files.py).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence

from tui_migrator.common.errors import OperationFailed
from tui_migrator.common.settings import ENV_DB, Settings
from tui_migrator.engine.log_files import log_path, open_private_log

log = logging.getLogger(__name__)

# How long the process that spawned one waits for it to begin (imports and opening the database
# take about a second; a loaded host may take many), and how often it looks.
BEGIN_SECONDS = 60.0
BEGIN_POLL_SECONDS = 0.05


def spawn(
    settings: Settings, migration_id: str, command: Sequence[str] | None = None
) -> subprocess.Popen[bytes]:
    """Start a detached process for ``migration_id`` and return it: its worker
    (``worker ID``) unless ``command`` names another long operation (``rollback ID --confirm``);
    the output goes to the migration's log either way."""
    arguments = [
        sys.executable,
        "-m",
        "tui_migrator",
        *(command or ("worker", migration_id)),
        "--data-dir",
        str(settings.data_dir),
    ]
    if settings.schema_path is not None:
        arguments += ["--schema", str(settings.schema_path)]
    if settings.master_key_file is not None:
        arguments += ["--master-key-file", str(settings.master_key_file)]
    environment = dict(os.environ)
    # The database URL may hold a password: it goes through the environment too, never the
    # command line. Set or removed, so the worker uses exactly this process's database.
    environment.pop(ENV_DB, None)
    if settings.database_url is not None:
        environment[ENV_DB] = settings.database_url
    if settings.master_key is not None:
        # Handed over the way it came in, through the environment, never on the command line
        # (where any user could read it with ps).
        environment["TUI_MIGRATOR_MASTER_KEY"] = settings.master_key.get_secret_value()
    with open_private_log(log_path(settings, migration_id)) as output:
        process = subprocess.Popen(
            arguments,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=environment,
            close_fds=True,
        )
    return process


def await_begun(process: subprocess.Popen[bytes], begun: Callable[[], bool], *, what: str) -> int | None:
    """Wait until the detached ``process`` has begun its work (``begun()``, a look at what it
    writes in the database) and return None; or, where it exited before, its exit code, for the
    caller to say so and name its log. Whatever the operator does next finds the operation
    running (or its refusal recorded), not still about to be. ``begun`` is asked once more after
    the process exits: it may have begun, and even finished, between two looks. One merely slow
    to come up (a loaded host) is left to it after BEGIN_SECONDS, with a warning naming ``what``."""
    deadline = time.monotonic() + BEGIN_SECONDS
    while not begun():
        exit_code = process.poll()
        if exit_code is not None:
            return None if begun() else exit_code
        if time.monotonic() > deadline:
            log.warning("%s has not begun after %.0f s; it goes on starting", what, BEGIN_SECONDS)
            return None
        time.sleep(BEGIN_POLL_SECONDS)
    return None


def not_begun(
    settings: Settings, migration_id: str, *, what: str, exit_code: int, undone: str, again: str
) -> OperationFailed:
    """The error of a detached process (``what``) that exited before it began: its exit code,
    what was therefore not done, where its log is and the command that runs it again."""
    return OperationFailed(
        f"{what} exited (code {exit_code}) before it began; {undone}.",
        hint=see_log(settings, migration_id, again),
    )


def see_log(settings: Settings, migration_id: str, again: str) -> str:
    """The hint of a detached process's failure: where its log is, and ``again``, the command
    that runs it again."""
    return f"See why in {log_path(settings, migration_id)}, then run it again: {again}"


def begin(
    settings: Settings,
    migration_id: str,
    begun: Callable[[], bool],
    *,
    what: str,
    undone: str,
    again: str,
    command: Sequence[str] | None = None,
) -> None:
    """:func:`spawn` the process, then :func:`await_begun` it; one that exited before it began
    raises :func:`not_begun` (``what``, ``undone`` and ``again`` as there)."""
    process = spawn(settings, migration_id, command)
    exit_code = await_begun(process, begun, what=what)
    if exit_code is not None:
        raise not_begun(settings, migration_id, what=what, exit_code=exit_code, undone=undone, again=again)
