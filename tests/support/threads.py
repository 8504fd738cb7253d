"""Running one piece of work in several threads at the same moment, as several processes would."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")


def run_at_once(
    work: Callable[[T], object], arguments: Sequence[T], *, timeout: float = 60
) -> list[BaseException]:
    """``work`` once per argument, each in a thread of its own, all let go together (a barrier);
    what they raised, in no particular order, once every thread has ended (or ``timeout``)."""
    together = threading.Barrier(len(arguments), timeout=timeout)
    errors: list[BaseException] = []

    def run(argument: T) -> None:
        try:
            together.wait()
            work(argument)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(argument,)) for argument in arguments]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    return errors
