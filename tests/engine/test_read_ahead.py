"""read_ahead (engine/read_ahead.py): items in order, read in a thread of their own at most a
couple ahead; the reading's errors raised at the consumer; a consumer that stops early stops the
reading, and the source is closed (its connection given back) before read_ahead returns."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import closing

import pytest

from tui_migrator.engine.read_ahead import read_ahead


class Source:
    """A source that records what was read, in which thread, and whether it was closed."""

    def __init__(self, count: int, fail_at: int | None = None) -> None:
        self.count = count
        self.fail_at = fail_at
        self.read: list[int] = []
        self.threads: set[str] = set()
        self.closed = threading.Event()
        self.read_one = threading.Condition()

    def items(self) -> Iterator[int]:
        try:
            for number in range(self.count):
                if number == self.fail_at:
                    raise LookupError(f"row {number} could not be read")
                self.threads.add(threading.current_thread().name)
                with self.read_one:
                    self.read.append(number)
                    self.read_one.notify_all()
                yield number
        finally:
            self.closed.set()

    def wait_for(self, count: int) -> None:
        with self.read_one:
            assert self.read_one.wait_for(lambda: len(self.read) >= count, timeout=30)


def test_items_come_in_order_read_in_a_thread_of_their_own() -> None:
    source = Source(50)
    assert list(read_ahead(source.items(), name="test-reader")) == list(range(50))
    assert source.threads == {"test-reader"}
    assert source.closed.is_set()
    assert "test-reader" not in {thread.name for thread in threading.enumerate()}


def test_it_reads_ahead_but_never_more_than_two_items() -> None:
    source = Source(50)
    with closing(read_ahead(source.items(), name="test-reader")) as ahead:
        for number in ahead:
            if number == 10:
                # One item waits in the hand-over while the reader holds the next one.
                source.wait_for(12)
            assert len(source.read) <= number + 3  # this one, one handed over, one in hand
    assert source.read == list(range(50))


def test_an_error_while_reading_is_raised_at_the_consumer_after_the_items_before_it() -> None:
    source = Source(50, fail_at=7)
    received = []
    with pytest.raises(LookupError, match="row 7 could not be read"):
        for number in read_ahead(source.items()):
            received.append(number)
    assert received == list(range(7))
    assert source.closed.is_set()


def test_a_consumer_that_stops_early_stops_the_reading_and_closes_the_source() -> None:
    source = Source(1000)
    with (
        pytest.raises(RuntimeError, match="the consumer failed"),
        closing(read_ahead(source.items(), name="test-reader")) as ahead,
    ):
        for number in ahead:
            if number == 3:
                raise RuntimeError("the consumer failed")
    assert source.closed.is_set()
    assert len(source.read) <= 6
    assert "test-reader" not in {thread.name for thread in threading.enumerate()}
