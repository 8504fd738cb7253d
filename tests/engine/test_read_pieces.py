"""A window read a piece at a time (read_sizes.pieces) yields every row of the window once, in
key order, whatever the rows' sizes and however the window's end was found: the read-back and
verification count on it to check every row."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tui_migrator.engine import read_sizes

BUDGET = 1_000

# A table: unique keys in order, each row's stored size (from tiny to several budgets).
tables = st.lists(
    st.tuples(st.integers(-50, 50), st.integers(0, 3 * BUDGET)), max_size=60, unique_by=lambda row: row[0]
).map(sorted)


@pytest.fixture(autouse=True)
def budget() -> Iterator[None]:
    """READ_BYTES as BUDGET for every example (a module-wide setting, put back after)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(read_sizes, "READ_BYTES", BUDGET)
        yield


class Table:
    """Rows (key, size) in key order, read as the window's statements read them."""

    def __init__(self, rows: list[tuple[int, int]]) -> None:
        self.rows = rows
        self.reads: list[tuple[int, list[tuple[int, int]]]] = []  # each read's limit and rows

    def window(self, first: int, last: int) -> Any:
        def read(after: tuple[Any, ...] | None, limit: int) -> list[tuple[int, int]]:
            lower = (lambda key: key >= first) if after is None else (lambda key: key > after[0])
            rows = [row for row in self.rows if lower(row[0]) and row[0] <= last][:limit]
            self.reads.append((limit, rows))
            return rows

        return read


@settings(max_examples=300, deadline=None)
@given(rows=tables, first=st.integers(-60, 60), span=st.integers(0, 120), most=st.integers(1, 40))
def test_every_row_of_the_window_once_in_order(
    rows: list[tuple[int, int]], first: int, span: int, most: int
) -> None:
    last = first + span  # a key the table may not hold (its row deleted since the keys were read)
    table = Table(rows)
    pieces = list(
        read_sizes.pieces(table.window(first, last), lambda row: (row[0],), lambda row: row[1], (last,), most)
    )
    assert [row for piece in pieces for row in piece] == [row for row in rows if first <= row[0] <= last]
    assert all(pieces), "no empty piece"
    # The pieces are the reads, the first two as one: the probe's, then each read no more rows
    # than fit the budget by the largest row of the one before (none over ``most``).
    reads = [rows for _limit, rows in table.reads]
    assert [row for piece in pieces[1:] for row in piece] == [row for read in reads[2:] for row in read]
    assert table.reads[0][0] == min(read_sizes.PROBE_ROWS, most)
    for (_limit, before), (limit, _rows) in itertools.pairwise(table.reads):
        largest = max(size for _key, size in before)
        assert limit == (min(most, max(1, BUDGET // largest)) if largest else most)
    # Reads stop at the window's end: at most one read that finds nothing, none where a read
    # ended on the window's last key.
    assert all(reads[:-1]) and len(reads) <= len(pieces) + 2


def test_a_key_never_equal_to_itself_ends_the_window_by_an_empty_read() -> None:
    """NaN as the window's last key (a real-valued key column may hold one, and each read gives
    a NaN of its own, equal to nothing): the full piece that ends on it is not known to be the
    last, and one more read, finding nothing, ends the window."""
    in_the_row, as_the_last_key = float("nan"), float("nan")
    rows = [(1.0, 10), (in_the_row, 10)]
    reads: list[Any] = []

    def read(after: tuple[Any, ...] | None, limit: int) -> list[tuple[float, int]]:
        reads.append(after)
        start = 0 if after is None else next(i for i, row in enumerate(rows) if row[0] is after[0]) + 1
        return rows[start : start + limit]

    pieces = list(read_sizes.pieces(read, lambda row: (row[0],), lambda row: row[1], (as_the_last_key,), 2))
    assert pieces == [rows]
    assert reads == [None, (in_the_row,)]  # the probe, then a read that finds nothing
