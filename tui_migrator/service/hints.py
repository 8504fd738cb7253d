"""Commands the tool suggests (in hints, warnings, logs) reach the database they were made for.

Migration ids restart in every database (``migration_20261202_001`` exists in each), and
without ``--db`` and ``--schema`` a suggested command opens the default database, where the
migration either does not exist or is another one. So every face passes what it shows an
operator through :func:`addressed`, which adds the options in use to each suggested command.
"""

from __future__ import annotations

import re

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from tui_migrator.common.settings import Settings

# The commands a suggestion may name that act on the configured database. (init names its
# database itself; `tui-migrator on Linux` is not a command.)
_ADDRESSED_COMMANDS = (
    "audit",
    "cancel",
    "continue",
    "estimate",
    "failed",
    "health",
    "keys",
    "list",
    "operators",
    "pause",
    "purge-backups",
    "report",
    "resume",
    "rollback",
    "start",
    "status",
    "sweep",
    "tokens",
    "worker",
)
_SUGGESTED = re.compile(r"\btui-migrator (?=(?:" + "|".join(map(re.escape, _ADDRESSED_COMMANDS)) + r")\b)")


def database_flags(settings: Settings) -> str:
    """The options that make a suggested command reach this database and mapping again (with a
    leading space; empty for the defaults). A URL holding a password is not repeated; the
    operator gives it as before."""
    flags = ""
    if settings.database_url is not None:
        try:
            shown = settings.database_url if make_url(settings.database_url).password is None else None
        except (ArgumentError, ValueError):
            shown = None  # not a URL at all: the error says so; the hint need not repeat it
        flags += f" --db {shown}" if shown is not None else " --db <the same URL>"
    if settings.schema_path is not None:
        flags += f" --schema {settings.schema_path}"
    return flags


def addressed(text: str, settings: Settings | None) -> str:
    """``text`` with the database options added to every command it suggests."""
    flags = "" if settings is None else database_flags(settings)
    if not flags or "tui-migrator " not in text:
        return text
    return _SUGGESTED.sub(f"tui-migrator{flags} ", text)
