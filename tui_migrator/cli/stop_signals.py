"""What the signals that ask a process to stop mean while a command changes data.

Ctrl-C (SIGINT), a shutdown or ``kill PID`` (SIGTERM) and a terminal or SSH connection that
goes away (SIGHUP) all mean "stop": by default Python stops at once on SIGINT only where it
happens to be, and dies on the other two without a word in the record. While a migration runs,
the first of them asks it to stop safely — the batches in flight finish, the migration is
cancelled with the signal as its reason, and ``resume`` carries on — and a second one stops at
once, leaving an interrupted migration that ``resume`` or ``rollback`` finishes. A rollback,
whose batches are each one transaction, stops at once on the first, as on Ctrl-C: the batch in
hand is undone, every one committed stays restored, and it records that it stopped. A worker
that joined another's migration (PostgreSQL) leaves it after the batch in hand: the migration
is not its to cancel.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from tui_migrator.service.facade import MigratorService

# Each signal's reason, as the cancelled migration records it and the log shows it.
REASONS = {
    signal.SIGINT: "Interrupted by the operator (Ctrl-C)",
    signal.SIGTERM: "Stopped by SIGTERM (a shutdown, or kill)",
}
if hasattr(signal, "SIGHUP"):  # not on Windows
    REASONS[signal.SIGHUP] = "The terminal or SSH connection went away (SIGHUP)"


@contextmanager
def stops_cancel(service: MigratorService) -> Iterator[Callable[[str], None]]:
    """While the block runs, the first stop signal cancels the migration whose id was passed to
    the function this yields (in-flight batches finish); a second one, or one before any id is
    known (nothing has been written yet), raises KeyboardInterrupt."""
    current: dict[str, str] = {}
    stopping = threading.Event()

    def remember(migration_id: str) -> None:
        current.setdefault("id", migration_id)

    def on_stop(number: int, _frame: Any) -> None:
        if stopping.is_set() or "id" not in current:
            raise KeyboardInterrupt
        stopping.set()
        again = "Ctrl-C again" if number == signal.SIGINT else "a second signal"
        _say(f"\nStopping after the in-flight batches ({again} to stop at once)...\n")
        threading.Thread(
            target=service.cancel,
            args=(current["id"], REASONS[signal.Signals(number)]),
            kwargs={"wait_seconds": 0},
            daemon=True,
        ).start()

    with _handling(on_stop):
        yield remember


@contextmanager
def stops_leave() -> Iterator[threading.Event]:
    """While the block runs, the first stop signal sets the event this yields — a joined
    worker's request to leave after the batch in hand (the migration runs on with its owner);
    a second one raises KeyboardInterrupt."""
    leave = threading.Event()

    def on_stop(_number: int, _frame: Any) -> None:
        if leave.is_set():
            raise KeyboardInterrupt
        leave.set()
        _say("\nLeaving after the batch in hand; the migration runs on (a second signal stops at once)...\n")

    with _handling(on_stop):
        yield leave


@contextmanager
def stops_interrupt() -> Iterator[None]:
    """While the block runs, every stop signal raises KeyboardInterrupt, as Ctrl-C does."""

    def on_stop(_number: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    with _handling(on_stop):
        yield


@contextmanager
def _handling(handler: Callable[[int, Any], None]) -> Iterator[None]:
    with ExitStack() as restore:
        for number in REASONS:
            previous = signal.signal(number, handler)
            restore.callback(signal.signal, number, previous)
        yield


def _say(words: str) -> None:
    # After a hang-up the terminal is gone and writing to it fails: the stop goes on regardless.
    try:
        sys.stderr.write(words)
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
