"""Nonces drawn in bulk: every byte handed out once — within a thread, between threads and across
a fork — and the operating system asked once per REFILL_BYTES, not once per value."""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable, Iterator

import pytest

from tui_migrator.crypto import nonces
from tui_migrator.crypto.ciphers import RowContext, RowSealer, ValueCipher
from tui_migrator.crypto.data_keys import ThrowawayKeys
from tui_migrator.crypto.keys import MasterKey
from tui_migrator.crypto.tokens import NONCE_BYTES


@pytest.fixture
def counted_source(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """The module's os.urandom replaced by a source that never repeats a block (a counter), so any byte the
    buffer handed out twice shows as a repeated nonce; yields the sizes asked of it."""
    counter = itertools.count()
    lock = threading.Lock()
    asked: list[int] = []

    def source(count: int) -> bytes:
        with lock:
            asked.append(count)
            return b"".join(next(counter).to_bytes(8, "big") for _ in range(-(-count // 8)))[:count]

    monkeypatch.setattr(nonces, "urandom", source)
    nonces._BUFFER.forget()
    yield asked
    nonces._BUFFER.forget()


def test_draws_in_one_thread_never_overlap_and_the_system_is_asked_in_bulk(counted_source: list[int]) -> None:
    drawn = [nonces.random_bytes(NONCE_BYTES) for _ in range(3000)]
    assert len(set(drawn)) == len(drawn)
    per_refill = nonces.REFILL_BYTES // NONCE_BYTES
    assert counted_source == [nonces.REFILL_BYTES] * -(-3000 // per_refill)


def test_a_draw_larger_than_a_refill_is_drawn_whole(counted_source: list[int]) -> None:
    big = nonces.random_bytes(nonces.REFILL_BYTES + 5)
    assert len(big) == nonces.REFILL_BYTES + 5
    assert counted_source == [nonces.REFILL_BYTES + 5]


def test_threads_never_receive_the_same_bytes(counted_source: list[int]) -> None:
    drawn: list[list[bytes]] = [[] for _ in range(8)]
    start = threading.Barrier(len(drawn))

    def draw(into: list[bytes]) -> None:
        start.wait()
        into.extend(nonces.random_bytes(NONCE_BYTES) for _ in range(2000))

    threads = [threading.Thread(target=draw, args=(into,)) for into in drawn]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [nonce for into in drawn for nonce in into]
    assert len(every) == 16_000
    assert len(set(every)) == len(every)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX")
@pytest.mark.parametrize("pid_seen", [True, False], ids=["as-is", "the-fork-hook-alone"])
def test_a_forked_child_does_not_draw_what_the_parent_will(
    monkeypatch: pytest.MonkeyPatch, pid_seen: bool
) -> None:
    """With the buffer carried over, the child's next nonce would be the parent's next, byte for
    byte; forgotten, the child draws its own. Also with the process id hidden (the same in
    both), where only the fork hook forgets it."""
    if not pid_seen:
        monkeypatch.setattr(nonces, "getpid", lambda: 1)
    nonces._BUFFER.forget()
    nonces.random_bytes(NONCE_BYTES)  # the buffer filled before the fork
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child's side
        try:
            os.write(write, nonces.random_bytes(NONCE_BYTES))
        finally:
            os._exit(0)
    os.close(write)
    childs = os.read(read, NONCE_BYTES)
    os.close(read)
    os.waitpid(child, 0)
    parents = nonces.random_bytes(NONCE_BYTES)
    assert len(childs) == NONCE_BYTES
    assert childs != parents


def test_a_buffer_filled_under_another_process_id_is_dropped(
    counted_source: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Should a process be made without the fork hook running, the process id tells."""
    first = nonces.random_bytes(NONCE_BYTES)
    monkeypatch.setattr(nonces, "getpid", lambda: -1)
    second = nonces.random_bytes(NONCE_BYTES)
    assert counted_source == [nonces.REFILL_BYTES, nonces.REFILL_BYTES]
    assert second != first


def _sealing(kind: str) -> Callable[[int], None]:
    master = MasterKey(os.urandom(32), "test")
    if kind == "values":
        cipher = ValueCipher(ThrowawayKeys(), master, actor="tester")

        def seal_values(row: int) -> None:
            cipher.seal_cells(
                RowContext("patients", "name", (row,), "org_1"), [("name", "Ada"), ("born", "1815")]
            )

        return seal_values
    sealer = RowSealer(master, "m1")

    def seal_backup(row: int) -> None:
        sealer.seal("patients", (row,), ["Ada", 1815])

    return seal_backup


@pytest.mark.parametrize("kind", ["values", "backups"])
def test_sealing_draws_its_nonces_in_bulk_and_never_twice(counted_source: list[int], kind: str) -> None:
    seal = _sealing(kind)
    handed: list[bytes] = []
    draw = nonces.random_bytes

    def spy(count: int) -> bytes:
        handed.append(drawn := draw(count))
        return drawn

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("tui_migrator.crypto.ciphers.random_bytes", spy)
        for row in range(1000):
            seal(row)
    assert len(handed) == 1000
    assert len(set(handed)) == 1000
    assert len(counted_source) == -(-sum(map(len, handed)) // nonces.REFILL_BYTES)
