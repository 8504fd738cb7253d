"""Detached workers: a migration that keeps running when the terminal or SSH session goes away.

The worker is a new ``tui-migrator worker ID`` process in its own session (so the terminal's
hang-up never reaches it), with no stdin and its output in a log file in the data dir.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tui_migrator.common.settings import ENV_DB, Settings


def log_path(settings: Settings, migration_id: str) -> Path:
    return settings.data_dir / "logs" / f"{migration_id}.log"


def spawn(settings: Settings, migration_id: str) -> int:
    """Start a detached worker for ``migration_id`` and return its process id."""
    arguments = [
        sys.executable,
        "-m",
        "tui_migrator",
        "worker",
        migration_id,
        "--data-dir",
        str(settings.data_dir),
    ]
    if settings.schema_path is not None:
        arguments += ["--schema", str(settings.schema_path)]
    if settings.master_key_file is not None:
        arguments += ["--master-key-file", str(settings.master_key_file)]
    log = log_path(settings, migration_id)
    log.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
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
    with open(log, "ab") as output:
        process = subprocess.Popen(
            arguments,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=environment,
            close_fds=True,
        )
    return process.pid
