"""Detached workers: a migration that keeps running when the terminal or SSH session goes away.

The worker is a new ``tui-migrator worker ID`` process in its own session (so the terminal's
hang-up never reaches it), with no stdin and its output in the migration's log file, in the
database's log folder (engine/log_files.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence

from tui_migrator.common.settings import ENV_DB, Settings
from tui_migrator.engine.log_files import log_path, open_private_log


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
