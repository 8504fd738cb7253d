"""A SQLite file's bytes for a test to compare, read the way the tool reads them
(engine/database_files.raw_chunks): by a child process. Read by a descriptor of the test's own
process and closed, the file would lose the SQLite locks of every connection the test holds
(tests/engine/test_database_files.py)."""

from __future__ import annotations

from pathlib import Path

from tui_migrator.engine.database_files import raw_chunks


def file_bytes(path: Path) -> bytes:
    return b"".join(raw_chunks(path))
