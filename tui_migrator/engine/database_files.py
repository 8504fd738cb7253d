"""Where a database keeps the bytes of a table, and reading them raw: what the sweep's proof scans.

SQLite: the database file and its -wal (and a -journal, if one is there). PostgreSQL: every
relation file of each table — the heap, its indexes, its TOAST table and TOAST index, each in
1 GB segments — read directly from the data directory when this process can (the server runs
on this machine and its files are readable here), else through ``pg_read_binary_file`` (which
needs superuser, the pg_read_server_files role or an explicit grant). When neither works the
files are unreachable, and the caller says "not proven" with the reason.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from tui_migrator.common.settings import ENV_PREFIX
from tui_migrator.engine.byte_search import CHUNK_BYTES

SQLITE_COMPANIONS = ("-wal", "-journal")
_LOCAL_HOSTS = ("", "localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class RawFile:
    """One file to scan: a name an operator recognises, and a way to read its bytes in chunks."""

    name: str
    read: Callable[[], Iterator[bytes]]


class FilesUnreachable(Exception):
    """The files exist but this process cannot read them; the message says why and what would."""


def sqlite_files(database: Path) -> list[RawFile]:
    """The database file and whichever of its -wal and -journal exist, each read by a process of
    its own (see raw_chunks)."""
    paths = [database, *(Path(f"{database}{suffix}") for suffix in SQLITE_COMPANIONS)]
    return [RawFile(str(path), partial(raw_chunks, path)) for path in paths if path.exists()]


def raw_chunks(path: Path) -> Iterator[bytes]:
    """The bytes of ``path``, read by a child process and passed on in chunks.

    Never by a file descriptor of this process: closing one releases every POSIX lock the
    process holds on that file, SQLite's own among them, for all its connections
    (sqlite.org/howtocorrupt.html, "Posix advisory locks canceled by a separate thread doing
    close()"). Without the shared lock on the database file, another process's last connection
    to close takes it for the last one anywhere: it checkpoints and deletes the write-ahead log
    and its index under this process's connections, and what others commit afterwards can be
    lost. A child holds no lock to lose. Raises OSError when the file cannot be read."""
    child = subprocess.Popen(
        [sys.executable, "-I", "-S", "-c", _COPY_TO_STDOUT, str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        # It needs none of the tool's settings, a master key or a database password among them.
        env={name: value for name, value in os.environ.items() if not name.startswith(ENV_PREFIX)},
    )
    assert child.stdout is not None and child.stderr is not None
    try:
        while chunk := child.stdout.read(CHUNK_BYTES):
            yield chunk
        problem = child.stderr.read().decode(errors="replace").strip()
        if child.wait() != 0:
            last_line = problem.splitlines()[-1] if problem else f"exit status {child.returncode}"
            raise OSError(f"Could not read {path}: {last_line}")
    finally:
        if child.poll() is None:  # the reader stopped early
            child.kill()
        child.wait()
        child.stdout.close()
        child.stderr.close()


# What the child runs: the file to its standard output, unchanged.
_COPY_TO_STDOUT = (
    "import shutil, sys\n"
    "with open(sys.argv[1], 'rb') as file:\n"
    "    shutil.copyfileobj(file, sys.stdout.buffer, 1 << 20)"
)


@dataclass(frozen=True)
class Relation:
    name: str  # e.g. "demographics", "index demographics_pkey", "TOAST of demographics"
    path: str  # relative to the data directory, as pg_relation_filepath gives it
    size: int


def postgresql_relations(connection: Connection, table: str) -> list[Relation]:
    """The relation files holding ``table``'s rows: heap, indexes, TOAST table and its index."""
    row = connection.execute(
        sa.text(
            "SELECT c.oid, c.reltoastrelid FROM pg_class c "
            "WHERE c.oid = to_regclass(quote_ident(current_schema()) || '.' || quote_ident(:name))"
        ),
        {"name": table},
    ).one_or_none()
    if row is None:
        raise FilesUnreachable(f"The table {table} is not in the current schema.")
    oids = [(row.oid, table)]
    if row.reltoastrelid:
        oids.append((row.reltoastrelid, f"TOAST of {table}"))
    indexes = connection.execute(
        sa.text(
            "SELECT i.indexrelid, i.indrelid, c.relname FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = ANY(:owners) ORDER BY c.relname"
        ),
        {"owners": [oid for oid, _ in oids]},
    ).all()
    for index in indexes:
        is_toast = index.indrelid == row.reltoastrelid
        oids.append((index.indexrelid, f"TOAST index of {table}" if is_toast else f"index {index.relname}"))
    relations = []
    for oid, name in oids:
        located = connection.execute(
            sa.text("SELECT pg_relation_filepath(:oid), pg_relation_size(:oid)"), {"oid": oid}
        ).one()
        if located[0] is None:
            raise FilesUnreachable(f"{name} has no relation file of its own (a partitioned table?).")
        relations.append(Relation(name, str(located[0]), int(located[1])))
    return relations


def postgresql_files(engine: Engine, relations: list[Relation]) -> list[RawFile]:
    """Readers for the relations' files: direct where possible, else through the server.

    Raises :class:`FilesUnreachable` when neither way is open."""
    with engine.connect() as connection:
        data_directory = _data_directory(connection)
        direct_problem = _direct_problem(engine, data_directory, relations)
        if direct_problem is None and data_directory is not None:
            root = Path(data_directory)
            return [
                RawFile(f"{r.name} ({root / r.path})", _segments_reader(root / r.path)) for r in relations
            ]
        server_problem = _server_read_problem(connection)
    if server_problem is None:
        return [
            RawFile(f"{r.name} ({r.path}, read by the server)", _server_reader(engine, r.path))
            for r in relations
        ]
    raise FilesUnreachable(
        f"The relation files cannot be read: {direct_problem}; and {server_problem}. "
        "Run the sweep on the database server as a user who can read the data directory, or "
        "GRANT pg_read_server_files to the tool's database user."
    )


def _data_directory(connection: Connection) -> str | None:
    try:
        with connection.begin_nested():
            return str(connection.exec_driver_sql("SHOW data_directory").scalar_one())
    except DBAPIError:
        return None


def _direct_problem(engine: Engine, data_directory: str | None, relations: list[Relation]) -> str | None:
    """Why this process cannot read the files itself (None: it can, and they are the server's)."""
    if data_directory is None:
        return "the data directory is hidden from this database user (SHOW data_directory needs superuser or pg_read_all_settings)"
    host = engine.url.host or ""
    if host not in _LOCAL_HOSTS and not host.startswith("/"):
        return f"the server runs on {host}, not on this machine"
    for relation in relations:
        path = Path(data_directory) / relation.path
        try:
            size = sum(segment.stat().st_size for segment in _segment_paths(path))
        except OSError as error:
            return f"{path} is not readable here ({error.strerror})"
        if not os.access(path, os.R_OK):
            return f"{path} is not readable by this process"
        # Another cluster's files at the same path (a container, another host) would prove nothing.
        if size != relation.size:
            return f"{path} is not the server's file ({size:,} bytes here, {relation.size:,} on the server)"
    return None


def _segment_paths(path: Path) -> list[Path]:
    """A relation's 1 GB segments: path, path.1, path.2, ..."""
    if not path.exists():
        raise FileNotFoundError(2, "No such file or directory", str(path))
    segments = [path]
    while (following := Path(f"{path}.{len(segments)}")).exists():
        segments.append(following)
    return segments


def _segments_reader(path: Path) -> Callable[[], Iterator[bytes]]:
    # Read here: the server's own processes hold no POSIX lock on its relation files.
    def read() -> Iterator[bytes]:
        for segment in _segment_paths(path):
            with open(segment, "rb") as handle:
                while chunk := handle.read(CHUNK_BYTES):
                    yield chunk

    return read


def _server_read_problem(connection: Connection) -> str | None:
    try:
        with connection.begin_nested():
            connection.exec_driver_sql("SELECT pg_read_binary_file('PG_VERSION')").scalar_one()
    except DBAPIError:
        return "pg_read_binary_file is not allowed for this database user (it needs superuser or the pg_read_server_files role)"
    return None


def _server_reader(engine: Engine, path: str) -> Callable[[], Iterator[bytes]]:
    def read() -> Iterator[bytes]:
        with engine.connect() as connection:
            segment, name = 0, path
            while True:
                offset = 0
                while True:
                    chunk = connection.execute(
                        sa.text("SELECT pg_read_binary_file(:name, :offset, :length, true)"),
                        {"name": name, "offset": offset, "length": CHUNK_BYTES},
                    ).scalar_one()
                    if chunk is None:  # no such segment: the relation ended
                        return
                    if chunk:
                        yield bytes(chunk)
                    if len(chunk) < CHUNK_BYTES:
                        break
                    offset += len(chunk)
                segment += 1
                name = f"{path}.{segment}"

    return read
