"""The SQLite library this Python links, and the known defect of it that can corrupt a database
the tool works on.

SQLite's "WAL-reset bug" (sqlite.org/wal.html#walresetbug) is in every release from 3.7.0 to
3.51.2 and fixed in 3.51.3 (2026-03-13): when one checkpoint has just copied the whole
write-ahead log back and a second one starts at once, while a third connection's commit resets
the log, the second can record frames as copied that were not, and a later checkpoint then
leaves pages of the database behind. Rare, but a database corrupted that way loses data, and a
migration is many connections committing and checkpointing one database. The tool keeps its own
checkpoints apart from its own commits (engine/sweep_cleaning.py); the application's connections
it cannot, so an affected library is named in the health report, with the way out.
"""

from __future__ import annotations

import sqlite3

# The first release with the bug, and the first without it again.
WAL_RESET_BUG_SINCE = (3, 7, 0)
WAL_RESET_BUG_FIXED = (3, 51, 3)


def linked_version() -> tuple[int, int, int]:
    """The version of the SQLite library the sqlite3 module runs on (not the module's own)."""
    major, minor, patch = sqlite3.sqlite_version_info[:3]
    return major, minor, patch


def version_text(version: tuple[int, int, int]) -> str:
    return ".".join(str(part) for part in version)


def wal_reset_bug_warning(version: tuple[int, int, int]) -> str | None:
    """What an operator should know and do when ``version`` has the WAL-reset bug, else None."""
    if not WAL_RESET_BUG_SINCE <= version < WAL_RESET_BUG_FIXED:
        return None
    return (
        f"SQLite {version_text(version)} here has the WAL-reset bug, which can rarely corrupt a WAL "
        f"database: use SQLite {version_text(WAL_RESET_BUG_FIXED)} or later (README, 'The SQLite library')"
    )
