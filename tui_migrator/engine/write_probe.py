"""What each byte a SQLite run writes costs beyond the calibration's writes, measured on a probe.

The calibration (engine/estimate.py) times a batch's writes into temporary shadow tables, which
live in SQLite's temporary store, inside a transaction it rolls back. A run writes the same rows
into the database itself: its pages go through the write-ahead log when the page cache fills and
at each commit, and the log's checkpoints copy them into the file. Per byte that is little (2-7
ns here): a few per cent of a run of rows of ordinary size, but rows of hundreds of KB write a
gigabyte for 2,000 rows, a second or two of a run that the stages do not show (2026-12-07,
tests/benchmarks/MEASUREMENTS.md).

So a probe file, in the database's own directory (the same disk) and removed at once, takes
values of the size the sample wrote, twice: into a temporary table, as the calibration writes,
and into a table of the file in write-ahead-log mode, committed (not synced, as a batch's
commit is not) and checkpointed, as a run writes. The difference, per byte, is the cost.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path

# At most this many values, and bytes of them, go into each pass of the probe: enough for rows
# of any size to be written as a run writes them (through the log, past a full page cache of 2
# MiB), little enough for the probe to take a few tens of milliseconds (20-90 here).
PROBE_VALUES = 4_000
PROBE_BYTES = 8 << 20
# Each pass is taken this many times; the fastest counts.
PROBE_PASSES = 2


def seconds_per_byte(directory: Path, values: int, value_bytes: int) -> float:
    """The seconds each byte costs written into a database file in ``directory`` rather than
    a temporary table, for ``values`` values of ``value_bytes`` bytes in all (at most
    PROBE_VALUES and PROBE_BYTES of them are written); 0.0 where nothing was written or no probe can be made
    there nor in the temporary directory."""
    if values <= 0 or value_bytes <= 0:
        return 0.0
    size = max(1, value_bytes // values)
    count = max(1, min(values, PROBE_VALUES, PROBE_BYTES // size))
    payload = [os.urandom(size) for _ in range(min(count, 64))]
    rows = [(payload[number % len(payload)],) for number in range(count)]
    for place in (directory, Path(tempfile.gettempdir())):
        try:
            return _measured(place, rows, count * size)
        except (OSError, sqlite3.Error):
            continue
    return 0.0


def _measured(directory: Path, rows: list[tuple[bytes]], written: int) -> float:
    folder = Path(tempfile.mkdtemp(prefix=".tm-write-probe-", dir=directory))
    try:
        connection = sqlite3.connect(folder / "probe.db", isolation_level=None)
        try:
            connection.execute("PRAGMA journal_mode = WAL")
            connection.execute("PRAGMA synchronous = NORMAL")
            connection.execute("CREATE TABLE probe (value BLOB)")
            connection.execute("CREATE TEMPORARY TABLE probe_shadow (value BLOB)")
            shadow = min(_pass(connection, "probe_shadow", rows, commit=False) for _ in range(PROBE_PASSES))
            file = min(_pass(connection, "probe", rows, commit=True) for _ in range(PROBE_PASSES))
        finally:
            connection.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return max(0.0, file - shadow) / written


def _pass(connection: sqlite3.Connection, table: str, rows: list[tuple[bytes]], *, commit: bool) -> float:
    """The seconds to write ``rows`` into ``table``: committed and checkpointed (``commit``), or
    rolled back as the calibration's writes are; the table emptied again afterwards."""
    started = time.perf_counter()
    connection.execute("BEGIN")
    connection.executemany(f"INSERT INTO {table} (value) VALUES (?)", rows)
    if commit:
        connection.execute("COMMIT")
        connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
    seconds = time.perf_counter() - started
    if commit:
        connection.execute(f"DELETE FROM {table}")
    else:
        connection.execute("ROLLBACK")
    return seconds
