"""How many rows one read may bring into memory, whatever the size of their values.

A batch, a window of verification or of the backups' read-back and a rollback's batch each hold
their rows whole — in the run's process and in the worker process that seals or opens them,
several of them at once. Read 1,000 rows at a time, a table whose rows hold large values (a
scanned document in a text column, say) would fill the machine's memory: rows of 200 KB took a
run of 2,000 of them to 3 GiB over its processes (2026-12-07, tests/benchmarks/MEASUREMENTS.md).
So each of those reads of a table takes at most the rows that hold READ_BYTES of stored values,
going by the largest row of a sample read (sizes only) when the table's phase begins: its first
and its last rows in key order, the newest being where rows grow. A row larger than READ_BYTES
is read alone. Rows of ordinary size are far below it: their reads keep their usual size.

The sample sees the ends of the table only. A table's batches (BatchRows) also follow the rows
they read: where rows grow in the middle of the key range, the batch after the first that meets
them takes fewer, and where they shrink again, more (up to what the sample allows). A batch's
rows are judged by the largest of the batch before: where sizes vary from row to row, a batch
may hold more than READ_BYTES by as much as its rows outgrow those.

A window of verification or of the backups' read-back is read in the worker process that
checks it, which sees its rows and not the sample: it reads the window a piece at a time
(:func:`pieces`), its first read of PROBE_ROWS rows, each next one sized by the largest row of
the read before, so that a window of a thousand rows grown large in the middle of the table is
not held whole either.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.engine import Engine

from tui_migrator.storage.column_storage import TableAccess

log = logging.getLogger(__name__)

# The stored values one read may hold: a few of them are in flight at once, each held as read,
# as sealed or opened, and on its way to and from a worker process (several copies in all).
# Measured (2026-12-07, tests/benchmarks/large_rows.py, alternated): 2,000 rows of 200 KB took
# the run's processes to 863-888 MiB at 16 MiB a read, 615-666 at 8 and 492-494 at 4, and went
# no slower for it (20.0-20.4 s, 16.5-17.2 and 16.7-17.6: smaller messages to and from the
# worker processes cost less to copy); 20,000 rows of 10 KB took as long at each. At 8 MiB a
# row of up to 8 KB keeps a batch of 1,000.
READ_BYTES = 8 * 1024 * 1024
# Rows sampled at each end of the table.
SAMPLE_ROWS = 1000
# Of a batch read, at most this many rows are measured, spread over it (in Python, as the
# run's process holds them: a few microseconds each).
MEASURED_ROWS = 128
# What a value that is neither text nor bytes counts for (a number, a date).
SMALL_VALUE_BYTES = 16
# The rows of a window's first read (see pieces): few enough to hold whatever their size, enough
# to size the next read by. A window of rows of ordinary size is read by two statements instead
# of one, its thousand rows fetched and checked all the same.
PROBE_ROWS = 4

Row = TypeVar("Row")


def rows_per_read(engine: Engine, access: TableAccess, wanted: int, *, copies: int = 1) -> int:
    """``wanted``, or fewer where that many of the table's rows would hold more than
    READ_BYTES; at least one. ``copies``: how many times over a read holds each row (a
    rollback's reads each row with its backup)."""
    return rows_for_largest(engine, access, largest_row_bytes(engine, access), wanted, copies=copies)


def rows_for_largest(
    engine: Engine, access: TableAccess, largest: int, wanted: int, *, copies: int = 1
) -> int:
    """:func:`rows_per_read` where the table's largest row (largest_row_bytes) is measured
    already."""
    rows = rows_within(largest * copies, wanted)
    if rows < wanted:
        _tell(engine, access.mapped.name, largest, rows)
    return rows


def rows_within(largest: int, most: int) -> int:
    """How many rows of ``largest`` bytes fit READ_BYTES: at least one, at most ``most``."""
    return max(1, min(most, READ_BYTES // largest)) if largest else most


# The tables told of already (by database), so that each phase of the run does not say it again.
_told: set[tuple[str, str]] = set()
_told_lock = threading.Lock()


def _tell(engine: Engine, table: str, largest: int, rows: int) -> None:
    """Warn, once a table in this process: its batches (and other reads) are smaller than the
    operator asked for, which its speed shows."""
    told = (engine.url.render_as_string(hide_password=True), table)
    with _told_lock:
        if told in _told:
            return
        _told.add(told)
    log.warning(
        "rows of %s hold up to %s KiB: it is read %d rows at a time at most (%s MiB of values a "
        "read), fewer than the batch size asked for",
        table,
        f"{largest // 1024:,}",
        rows,
        f"{READ_BYTES / 2**20:g}",
    )


def largest_row_bytes(engine: Engine, access: TableAccess) -> int:
    """The stored size of the largest of the table's first and last SAMPLE_ROWS rows (0 for an
    empty table), measured on the database server."""
    with engine.connect() as connection:
        return max(
            (
                int(size)
                for last in (False, True)
                for (size,) in connection.execute(access.select_row_sizes(limit=SAMPLE_ROWS, last=last))
            ),
            default=0,
        )


@dataclass
class BatchRows:
    """The most rows a table's next batch may take (``rows``): what the sample at the phase's
    start allows (:func:`rows_per_read`: ``sampled``), and no more than the largest row of the
    batch read last allows, so that rows growing where the sample did not look are caught."""

    rows: int
    sampled: int
    # The columns whose values count (the mapped columns and their companions).
    names: Sequence[str]

    @classmethod
    def measured(
        cls, engine: Engine, access: TableAccess, wanted: int, *, copies: int = 1, also: Sequence[str] = ()
    ) -> BatchRows:
        """Sampled now (``copies`` as in :func:`rows_per_read`); ``also``: other columns a
        batch reads beside the table's own (a rollback's: each row's backup)."""
        sampled = rows_per_read(engine, access, wanted, copies=copies)
        return cls(sampled, sampled, [*access.value_names, *also])

    def follow(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """After a batch of ``rows`` was read: the next batch's most rows, from its largest row."""
        names = self.names
        self.rows = rows_within(_largest(rows, lambda row: row_bytes(row, names)), self.sampled)


def row_bytes(row: Mapping[str, Any], names: Sequence[str]) -> int:
    """What the values of ``row`` under ``names`` hold, as read (text by its characters)."""
    total = 0
    for name in names:
        value = row.get(name)
        if isinstance(value, (str, bytes, bytearray, memoryview)):
            total += len(value)
        elif value is not None:
            total += SMALL_VALUE_BYTES
    return total


def _largest(rows: Sequence[Row], size: Callable[[Row], int]) -> int:
    """The size of the largest of ``rows``, of at most MEASURED_ROWS of them spread over them
    (measured in Python, as a process holds them: a few microseconds each)."""
    step = max(1, len(rows) // MEASURED_ROWS)
    return max((size(row) for row in rows[::step]), default=0)


def pieces(
    read: Callable[[tuple[Any, ...] | None, int], list[Row]],
    key: Callable[[Row], tuple[Any, ...]],
    size: Callable[[Row], int],
    last: Sequence[Any],
    most: int,
) -> Iterator[list[Row]]:
    """The rows of a window of keys, a piece at a time. ``read(after, limit)``: the window's
    next ``limit`` rows in key order after the key ``after`` (None: from its first); ``key`` and
    ``size``: a row's key and stored size; ``last``: the window's last key; ``most``: the most
    rows a read takes. The first read takes PROBE_ROWS rows, each next one at most the rows that
    fit READ_BYTES going by the largest row of the read before. The first read's rows come with
    the second's, as one piece: a window of ordinary rows is read in two statements but checked
    as one piece (one lookup of its row metadata, not two)."""
    probe: list[Row] = []
    after, limit, last_key = None, min(PROBE_ROWS, most), tuple(last)
    while True:
        rows = read(after, limit)
        ended = len(rows) < limit or key(rows[-1]) == last_key
        if after is None and not ended:
            probe = rows
        elif probe or rows:
            yield probe + rows
            probe = []
        if ended:
            return
        after = key(rows[-1])
        limit = rows_within(_largest(rows, size), most)
