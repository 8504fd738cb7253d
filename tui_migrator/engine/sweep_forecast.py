"""How long SQLite's sweep after a migration will take, told before the migration starts.

The sweep (engine/sweep.py) runs by itself when a SQLite migration completes (or, put off, when
the operator runs it: MigrationConfig.sweep_later), and its VACUUM
holds the database's write lock while it rebuilds the whole file: the application's writes
wait that long (readers go on). Its cost grows with the file, every table of it, not with the
rows migrated — a small table in a large database has a short migration and a long sweep. So
the estimate says it apart, from the file's size after the migration and a rate measured on
this machine: a probe file, in the database's own directory (the same disk), holding rows
shaped like a migrated table's (six tokens, their row metadata with its text key, a sealed
backup), is cleaned by the sweep's own steps (sweep_cleaning.clean_sqlite: checkpoint, VACUUM,
checkpoint) and searched by its byte search for as many values as its proof samples, then
removed. PostgreSQL's sweep is a VACUUM FULL asked for by the operator, never automatic.
"""

from __future__ import annotations

import base64
import os
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from tui_migrator.common.cores import usable_cores
from tui_migrator.engine import byte_search, sweep_cleaning
from tui_migrator.engine.database_files import sqlite_files
from tui_migrator.storage.database import create_database_engine

# Rows of the probe: with each row's six tokens, metadata and backup, about 4.4 MB of file.
PROBE_ROWS = 3_000
# Values its search looks for: as many as the proof's sample of 200 rows of six text columns.
PROBE_NEEDLES = 1_000
# Past this size the rate a probe of a few MB measures runs ahead of the real sweep: VACUUM
# writes about three times the file (its temporary copy, the log, the file), which beyond a
# few hundred MB outgrows what the operating system's cache absorbs and waits for the disk. A
# sweep of 1,000,000 rows' 1.6 GB file took 21.4 s for a forecast of 12.4 s (2026-12-07);
# 100,000 rows' 160 MB, a median 10 % over it. So a larger file's forecast is said as a floor.
LARGE_FILE_BYTES = 512 << 20
# Each measurement is taken this many times; the fastest counts (a pass that met a slow spell
# of the CPU, or another process's burst of I/O, says little about the machine).
PROBE_PASSES = 3


@dataclass(frozen=True)
class SweepRate:
    """How fast this machine sweeps a SQLite file, measured on a probe (probe_sweep_rate):
    what the cleaning costs whatever the file's size (two checkpoints, the connection), then
    the bytes a second its VACUUM rebuilds and one thread of its search reads."""

    fixed_seconds: float
    vacuum_bytes_per_second: float
    search_bytes_per_second: float

    def seconds(self, file_bytes: int, threads: int) -> float:
        """The sweep of a file of ``file_bytes``: its search runs on ``threads`` threads, one
        chunk of the file each at a time (byte_search), so a file of fewer chunks uses fewer."""
        searching = max(1, min(threads, -(-file_bytes // byte_search.CHUNK_BYTES)))
        return (
            self.fixed_seconds
            + file_bytes / self.vacuum_bytes_per_second
            + file_bytes / (self.search_bytes_per_second * searching)
        )


@dataclass(frozen=True)
class SweepForecast:
    """What the estimate says of the sweep after the migration: ``summary`` in a line (what
    both faces show), ``note`` in full (the JSON's)."""

    automatic: bool
    # SQLite, started to be swept later (MigrationConfig.sweep_later): the operator's `sweep ID`.
    put_off: bool
    # The database file's size once the migration has written (None: not a file, or unknown).
    database_bytes_after: int | None
    # About how long the sweep takes (None where it was not measured or does not apply).
    seconds: float | None
    # What VACUUM needs free beside the file while it runs (SQLite), and whether it is.
    free_bytes_needed: int | None
    enough_free_disk: bool
    # How long, in words ("about 1.5 s"), and the whole forecast in a line and in full.
    duration: str | None
    summary: str
    note: str

    def to_json(self) -> dict[str, object]:
        return {
            "automatic": self.automatic,
            "putOff": self.put_off,
            "databaseBytesAfter": self.database_bytes_after,
            "estimatedSeconds": None if self.seconds is None else round(self.seconds, 1),
            "freeBytesNeeded": self.free_bytes_needed,
            "enoughFreeDisk": self.enough_free_disk,
            "summary": self.summary,
            "note": self.note,
        }


def sqlite_forecast(
    database_bytes: int | None,
    added_bytes: int,
    free_bytes: int,
    rate: SweepRate | None,
    *,
    put_off: bool = False,
) -> SweepForecast:
    """The sweep after a SQLite migration that adds about ``added_bytes`` to a file of
    ``database_bytes`` (None: an in-memory database), on a disk with ``free_bytes`` free, at
    the ``rate`` probe_sweep_rate measured (None: not measured); ``put_off``: left to the
    operator's ``sweep ID`` (MigrationConfig.sweep_later), when it takes as long."""
    if database_bytes is None:
        words = "none: an in-memory database has no files to sweep"
        return SweepForecast(
            False, False, None, None, None, True, None, words, words[0].upper() + words[1:] + "."
        )
    after = database_bytes + max(0, added_bytes)
    seconds = None if rate is None else rate.seconds(after, usable_cores())
    needed = 2 * after
    if seconds is None:
        held = "for a time not measured here"
    elif seconds < 1:
        held = "under 1 s"
    elif after > LARGE_FILE_BYTES:
        held = f"{seconds:.0f} s or more"
    else:
        held = f"about {seconds:.1f} s" if seconds < 10 else f"about {seconds:.0f} s"
    vacuum = (
        "VACUUM rebuilds the whole file, every table of it, and holds the write lock meanwhile "
        f"({held} on this machine, measured on a probe file): the application's writes wait (one "
        "whose busy timeout is shorter gets 'database is locked'), its reads go on."
    )
    if put_off:
        summary = f"put off: `sweep ID` when you choose, {held} (writes wait)"
        note = (
            "Put off (sweep later): nothing runs when the migration completes, and the old "
            "plaintext stays in the file's free space until `sweep ID` runs. Then " + vacuum
        )
    else:
        summary = f"automatic at the end, {held} (writes wait)"
        note = "Runs by itself when the migration completes: " + vacuum
    if seconds is not None and after > LARGE_FILE_BYTES:
        note += (
            " A file this large sweeps slower than the probe: VACUUM writes about three times "
            "its size, more than the disk's cache absorbs."
        )
    enough = free_bytes >= needed
    if not enough:
        summary += "; NOT ENOUGH FREE DISK for its VACUUM"
        note += (
            f" VACUUM needs about {needed:,} bytes free beside the file and {free_bytes:,} are: "
            "the sweep would stop at that step (the migration itself is not affected). Free some "
            "space before the sweep runs, then sweep with `sweep ID` if it did not."
        )
    return SweepForecast(not put_off, put_off, after, seconds, needed, enough, held, summary, note)


def postgresql_forecast() -> SweepForecast:
    return SweepForecast(
        False,
        False,
        None,
        None,
        None,
        True,
        None,
        "on request: `sweep ID --yes` (VACUUM FULL locks each table while it rewrites it)",
        "Not automatic: `sweep ID --yes` runs VACUUM FULL of each migrated table, which locks "
        "the table, reads too, while it rewrites it.",
    )


def probe_sweep_rate(directory: Path) -> SweepRate | None:
    """How fast this machine sweeps a SQLite file (see the module's docstring); None where no
    probe file can be made in ``directory`` nor in the temporary directory."""
    for place in (directory, Path(tempfile.gettempdir())):
        try:
            with _probe_file(place) as (empty, probe):
                return _measured(empty, probe)
        except (OSError, sqlite3.Error, SQLAlchemyError):
            continue
    return None


@contextmanager
def _probe_file(directory: Path) -> Iterator[tuple[Path, Path]]:
    """An empty probe file and a full one, in a folder of their own removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix=".tm-sweep-probe-", dir=directory))
    try:
        empty, probe = folder / "empty.db", folder / "probe.db"
        _fill(empty, rows=0)
        _fill(probe, rows=PROBE_ROWS)
        yield empty, probe
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _fill(probe: Path, *, rows: int) -> None:
    """Rows shaped like a migrated table's: six tokens of values of some 30 characters (random
    base64url, as tokens are), the row metadata with its text key, and a sealed backup."""
    random = os.urandom(rows * (6 * 54 + 6 + 32 + 128 + 32 + 300))
    taken = 0

    def take(size: int) -> bytes:
        nonlocal taken
        taken += size
        return random[taken - size : taken]

    def token() -> str:
        return "tmenc:v1:dek_0000000000000000:" + base64.urlsafe_b64encode(take(54)).decode()

    connection = sqlite3.connect(probe, isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute(
            "CREATE TABLE records (id INTEGER PRIMARY KEY, organization_id TEXT, "
            "a TEXT, b TEXT, c TEXT, d TEXT, e TEXT, f TEXT)"
        )
        connection.execute(
            "CREATE TABLE metadata (migration_id TEXT, table_name TEXT, row_key TEXT, key_id TEXT, "
            "algorithm TEXT, encrypted_at TEXT, digest TEXT, sealed_columns TEXT, tokens_digest TEXT, "
            "PRIMARY KEY (migration_id, table_name, row_key))"
        )
        connection.execute("CREATE TABLE backups (id INTEGER PRIMARY KEY, sealed BLOB NOT NULL)")
        connection.execute("BEGIN")
        connection.executemany(
            "INSERT INTO records VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(number, "org", *(token() for _ in range(6))) for number in range(rows)],
        )
        connection.executemany(
            "INSERT INTO metadata VALUES ('migration_probe', 'records', ?, 'dek_0000000000000000', "
            "'AES-256-GCM', '2026-01-01 00:00:00.000000', ?, ?, ?)",
            [
                (
                    base64.b64encode(take(6)).decode(),
                    take(32).hex(),
                    base64.b64encode(take(128)).decode(),
                    take(32).hex(),
                )
                for _ in range(rows)
            ],
        )
        connection.executemany("INSERT INTO backups VALUES (?, ?)", [(n, take(300)) for n in range(rows)])
        connection.execute("COMMIT")
    finally:
        connection.close()


def _measured(empty: Path, probe: Path) -> SweepRate:
    """The fastest of PROBE_PASSES cleanings and searches (one thread) of each file: the full
    file's less the empty one's is what its bytes cost, the empty one's what any file does."""
    needles = byte_search.Needles()
    for _ in range(PROBE_NEEDLES):
        needles.add(base64.b64encode(os.urandom(24)))
    needles.automaton()  # the sweep builds it while its VACUUM runs
    fixed = min(_cleaning_seconds(empty) for _ in range(PROBE_PASSES))
    cleaning = min(_cleaning_seconds(probe) for _ in range(PROBE_PASSES))
    size = probe.stat().st_size
    # A file is read by a process of its own (database_files.raw_chunks): starting it is some
    # 20 ms whatever the file's size, as much as searching the whole probe. Searching the empty
    # probe measures that part, a fixed one, apart from what each byte costs.
    reading_fixed = min(_search_seconds(needles, empty) for _ in range(PROBE_PASSES))
    searching = min(_search_seconds(needles, probe) for _ in range(PROBE_PASSES)) - reading_fixed
    # A floor for each time: a measurement at the clock's resolution says nothing of the rate.
    return SweepRate(fixed + reading_fixed, size / max(cleaning - fixed, 1e-4), size / max(searching, 1e-4))


def _cleaning_seconds(database: Path) -> float:
    engine = create_database_engine(f"sqlite:///{database}")
    try:
        started = time.perf_counter()
        steps = sweep_cleaning.clean_sqlite(engine, database)
        seconds = time.perf_counter() - started
    finally:
        engine.dispose()
    if not all(step.done for step in steps):
        raise sqlite3.OperationalError(f"the probe {database} could not be swept")
    return seconds


def _search_seconds(needles: byte_search.Needles, database: Path) -> float:
    started = time.perf_counter()
    for raw in sqlite_files(database):
        byte_search.search(needles, raw.read(), threads=1)
    return time.perf_counter() - started
