"""Reading a SQLite database's files raw (engine/database_files.py) leaves this process's SQLite
locks as they were.

Closing any descriptor of a file releases every POSIX lock the process holds on it, SQLite's
included. A process that read its own database file that way lost the shared lock its
connections hold; another process closing its last connection then took itself for the last
one anywhere, checkpointed and deleted the write-ahead log and its index under this process's
connections, and a row a third process committed afterwards was lost (reproduced with the
reader of before; a CI run once read "database disk image is malformed" right after a detached
process ended, in a test process whose sweep had read the file so).
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tui_migrator.common.settings import ENV_DB, ENV_MASTER_KEY
from tui_migrator.engine import database_files


def _another_process_commits(database: Path, value: int) -> None:
    """A process of its own opens the database, commits one row and closes: its last
    connection, as an application's that stops would."""
    script = (
        "import sqlite3, sys\n"
        "connection = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "connection.execute('INSERT INTO t VALUES (?)', (int(sys.argv[2]),))\n"
        "connection.close()\n"
    )
    subprocess.run([sys.executable, "-c", script, str(database), str(value)], check=True)


def test_reading_the_files_raw_keeps_this_processs_locks_and_no_commit_is_lost(tmp_path: Path) -> None:
    database = tmp_path / "records.db"
    here = sqlite3.connect(database, isolation_level=None)
    try:
        here.execute("PRAGMA journal_mode = WAL")
        here.execute("CREATE TABLE t (x INTEGER)")
        here.execute("INSERT INTO t VALUES (1)")
        files = database_files.sqlite_files(database)
        read = {raw.name: b"".join(raw.read()) for raw in files}
        # (Its size by stat: reading it here, as this test once did, released the lock itself.)
        assert len(read[str(database)]) == database.stat().st_size > 0

        _another_process_commits(database, 2)
        # Still open here: the other process was not the last, so the log stays.
        assert Path(f"{database}-wal").exists() and Path(f"{database}-shm").exists()
        here.execute("INSERT INTO t VALUES (3)")
        _another_process_commits(database, 4)
        here.execute("INSERT INTO t VALUES (5)")
    finally:
        here.close()
    with sqlite3.connect(database) as after:
        assert [x for (x,) in after.execute("SELECT x FROM t ORDER BY x")] == [1, 2, 3, 4, 5]
        assert after.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_the_bytes_come_whole_and_a_file_that_cannot_be_read_says_which(tmp_path: Path) -> None:
    data = bytes(range(256)) * 20_000  # over one chunk
    path = tmp_path / "file"
    path.write_bytes(data)
    assert b"".join(database_files.raw_chunks(path)) == data
    missing = tmp_path / "gone"
    with pytest.raises(OSError, match=f"Could not read {missing}: .*No such file"):
        b"".join(database_files.raw_chunks(missing))


def test_a_reader_stopped_early_leaves_no_process_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "file"
    path.write_bytes(b"x" * (3 * 1024 * 1024))
    started: list[subprocess.Popen[bytes]] = []
    real_popen = subprocess.Popen

    def recorded(*arguments: Any, **keywords: Any) -> subprocess.Popen[bytes]:
        started.append(real_popen(*arguments, **keywords))
        return started[-1]

    monkeypatch.setattr(database_files.subprocess, "Popen", recorded)
    chunks = database_files.raw_chunks(path)
    assert next(chunks)
    chunks.close()  # the consumer stopped: its child is ended and waited for
    [child] = started
    assert child.returncode is not None and child.stdout is not None and child.stdout.closed


def test_the_reading_process_gets_none_of_the_tools_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "key-" + os.urandom(8).hex()
    monkeypatch.setenv(ENV_MASTER_KEY, secret)
    monkeypatch.setenv(ENV_DB, f"postgresql+psycopg://operator:{secret}@db/hospital")
    path = tmp_path / "file"
    path.write_bytes(b"x")
    environments: list[dict[str, str]] = []
    real_popen = subprocess.Popen

    def recorded(*arguments: Any, **keywords: Any) -> subprocess.Popen[bytes]:
        environments.append(keywords["env"])
        return real_popen(*arguments, **keywords)

    monkeypatch.setattr(database_files.subprocess, "Popen", recorded)
    assert b"".join(database_files.raw_chunks(path)) == b"x"
    [environment] = environments
    assert secret not in repr(environment) and "PATH" in environment
