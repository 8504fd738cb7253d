"""The turns of engine/first_batch.py: the first batch through a gate goes alone, the others
wait for it to end (however it ends), and from then on every batch goes at once."""

from __future__ import annotations

import threading

import pytest

from tui_migrator.engine import first_batch
from tui_migrator.engine.first_batch import FirstBatchAlone, FirstTimes


def test_the_batches_after_the_first_wait_until_it_ends_then_go_together() -> None:
    gate = FirstBatchAlone()
    first_inside, first_may_end = threading.Event(), threading.Event()
    inside: list[str] = []

    def first() -> None:
        with gate.turn():
            inside.append("first")
            first_inside.set()
            first_may_end.wait(5)
            inside.append("first ends")

    def later(name: str) -> None:
        with gate.turn():
            inside.append(name)

    runner = threading.Thread(target=first)
    runner.start()
    assert first_inside.wait(5)
    waiting = [threading.Thread(target=later, args=(name,)) for name in ("second", "third")]
    for thread in waiting:
        thread.start()
    for thread in waiting:
        thread.join(0.2)
        assert thread.is_alive(), "a batch went through while the first was still inside"
    assert inside == ["first"]
    first_may_end.set()
    for thread in [runner, *waiting]:
        thread.join(5)
    assert inside[:2] == ["first", "first ends"] and set(inside[2:]) == {"second", "third"}
    # From then on nothing waits: two turns held at once by one thread.
    with gate.turn(), gate.turn():
        pass


def test_a_first_batch_that_fails_lets_the_others_through() -> None:
    gate = FirstBatchAlone()
    with pytest.raises(RuntimeError), gate.turn():
        raise RuntimeError("the first batch failed")
    done = threading.Event()

    def later() -> None:
        with gate.turn():
            done.set()

    thread = threading.Thread(target=later)
    thread.start()
    thread.join(5)
    assert done.is_set()


def test_each_path_has_a_turn_of_its_own() -> None:
    """One batch inside a path's first turn keeps the batches of that path waiting, not of another."""
    times = FirstTimes()
    inside, may_end = threading.Event(), threading.Event()

    def first_refusal() -> None:
        with times.turn("rows one at a time"):
            inside.set()
            may_end.wait(5)

    holder = threading.Thread(target=first_refusal)
    holder.start()
    assert inside.wait(5)
    with times.turn("failed rows"):
        pass  # another path's first turn: not held up

    def second_refusal() -> None:
        with times.turn("rows one at a time"):
            pass

    blocked = threading.Thread(target=second_refusal)
    blocked.start()
    blocked.join(0.2)
    assert blocked.is_alive()
    may_end.set()
    for thread in (holder, blocked):
        thread.join(5)
        assert not thread.is_alive()


def test_no_batch_waits_for_ever_for_the_first(monkeypatch: pytest.MonkeyPatch) -> None:
    """A first batch that is itself waiting (for rows a waiting batch holds, say) keeps the
    others only FIRST_TURN_WAIT_SECONDS: then they go on beside it."""
    monkeypatch.setattr(first_batch, "FIRST_TURN_WAIT_SECONDS", 0.2)
    gate = FirstBatchAlone()
    inside, may_end = threading.Event(), threading.Event()
    went_on = threading.Event()

    def first() -> None:
        with gate.turn():
            inside.set()
            may_end.wait(30)

    def later() -> None:
        with gate.turn():
            went_on.set()

    holder = threading.Thread(target=first)
    holder.start()
    assert inside.wait(5)
    waiting = threading.Thread(target=later)
    waiting.start()
    waiting.join(30)
    assert went_on.is_set() and holder.is_alive(), "the later batch did not go on beside the first"
    may_end.set()
    holder.join(5)
