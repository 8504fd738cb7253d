"""Where a database's logs live: a folder of its own under the data dir's ``logs``.

One data dir serves every database the operator opens, and migration ids are numbered per
database (``migration_20261202_001`` exists in each one that migrated that day), so logs named
by migration id alone would mix two databases' workers in one file. Each database's folder is
named for people (the SQLite file's stem or the PostgreSQL database's name) and made unique by
a digest of where the database is, e.g. ``logs/parkml-3f9c2a1b7d40/migration_20261202_001.log``.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import BinaryIO

from sqlalchemy.engine import URL

from tui_migrator.common.settings import Settings
from tui_migrator.storage.database import parse_url

LOGS_DIRECTORY = "logs"
ANCHORS_DIRECTORY = "audit-anchors"
# The unexpected errors the app met, each with its traceback (service/logs.py writes them).
ERROR_LOG_NAME = "errors.log"
# 48 bits: no two databases one operator opens will ever share a folder.
DIGEST_CHARACTERS = 12
LABEL_CHARACTERS = 32
_UNSAFE_IN_A_NAME = re.compile(r"[^A-Za-z0-9_.-]+")
# Logs may hold record values (a driver's error message can quote them): the operator's only.
PRIVATE_FOLDER = 0o700
PRIVATE_FILE = 0o600


def database_log_dir(settings: Settings) -> Path:
    """The folder of the configured database's logs (not created here)."""
    return settings.data_dir / LOGS_DIRECTORY / database_folder_name(settings)


def audit_anchor_path(settings: Settings) -> Path:
    """The anchor of the configured database's audit trail (storage/audit_anchor.py): named like
    its logs' folder, kept apart from them so that pruning logs never cuts an anchor."""
    return settings.data_dir / ANCHORS_DIRECTORY / f"{database_folder_name(settings)}.anchor"


def database_folder_name(settings: Settings) -> str:
    """The configured database's name for files in the data dir: ``parkml-3f9c2a1b7d40``."""
    url = parse_url(settings.effective_database_url)
    digest = hashlib.sha256(_identity(url).encode()).hexdigest()[:DIGEST_CHARACTERS]
    return f"{_label(url)}-{digest}"


def log_path(settings: Settings, migration_id: str) -> Path:
    """The log of the detached workers of one migration of the configured database."""
    return database_log_dir(settings) / f"{migration_id}.log"


def error_log_path(settings: Settings) -> Path:
    return database_log_dir(settings) / ERROR_LOG_NAME


def open_private_log(path: Path) -> BinaryIO:
    """Open ``path`` to append to, creating it (and its folder) readable by this user only."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=PRIVATE_FOLDER)
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, PRIVATE_FILE)
    return os.fdopen(descriptor, "ab")


def _identity(url: URL) -> str:
    """Where the database is, the same however the operator named it."""
    backend = url.get_backend_name()
    if backend == "sqlite":
        database = url.database or ""
        # A relative path names the same file as its absolute form.
        where = str(Path(database).resolve()) if database not in ("", ":memory:") else database
        return f"sqlite:{where}"
    # Without the password (a rotated one must not move the logs, and a digest of it would let
    # anyone who sees the folder name test guesses) or the user (every operator's role reads
    # the same database's logs), and with the backend rather than the driver.
    server = URL.create(backend, host=url.host, port=url.port, database=url.database, query=url.query)
    return server.render_as_string(hide_password=False)


def _label(url: URL) -> str:
    database = url.database or ""
    name = Path(database).stem if url.get_backend_name() == "sqlite" else database
    safe = _UNSAFE_IN_A_NAME.sub("_", name).strip("._-")[:LABEL_CHARACTERS]
    return safe or url.get_backend_name()
