"""The server a run's worker processes are forked from (engine/cpu_pool.py), and starting it.

Apart from the pool, so that the program can start the server as its very first step, before
its own imports (engine/cpu_pool.py imports most of the tool): this module imports nothing but
``multiprocessing`` and a few small modules of the standard library.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.forkserver
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

# What a worker imports before its first batch: the batch functions and all they use, and the
# PostgreSQL driver, which SQLAlchemy imports only when an engine first connects (50 ms of CPU in
# each worker otherwise; where it is not installed the server goes on without it). The fork
# server imports them once; each worker is forked from it ready to work.
BATCH_MODULES = [
    "tui_migrator.engine.batches",
    "tui_migrator.engine.verification",
    "psycopg",
]


# What a terminal sends to every process of its foreground group: Ctrl-C, and the hang-up when
# it or the SSH connection goes away (no SIGHUP on Windows). The program's own process decides
# what they mean (cli/stop_signals.py); every helper process ignores them.
TERMINAL_SIGNALS = (signal.SIGINT, *((signal.SIGHUP,) if hasattr(signal, "SIGHUP") else ()))


def process_context() -> multiprocessing.context.BaseContext:
    """How worker processes start: forked from a fresh interpreter's fork server where the
    platform has one (``forkserver``), else ``spawn`` (see engine/cpu_pool.py)."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    # Replaces the default ['__main__']: the server never imports the program's main module.
    context.set_forkserver_preload(BATCH_MODULES)
    return context


def start() -> None:
    """Start the fork server now, unless it runs already; it imports BATCH_MODULES (half a
    second of one core) while the caller goes on. Without a fork server (``spawn``), nothing."""
    if process_context().get_start_method() == "forkserver":
        with _terminal_signals_ignored():
            multiprocessing.forkserver.ensure_running()


@contextmanager
def _terminal_signals_ignored() -> Iterator[None]:
    """Ctrl-C (SIGINT) and a hang-up (SIGHUP) ignored while the server starts.

    A terminal sends both to every process of its foreground group: the program's, which
    decides what they mean (cli/stop_signals.py: the batches in flight finish), but also the
    server, the resource tracker it starts, and the workers forked from it. Those died of them:
    a worker still in its first moments, before it set them aside itself (engine/cpu_pool.py),
    and the tracker, with a traceback on the terminal. A signal ignored stays ignored in a
    forked and in an executed process (unlike a blocked one), so started now they never see
    them. Signals are the main thread's to change: from another thread the server starts as it
    is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {number: signal.signal(number, signal.SIG_IGN) for number in TERMINAL_SIGNALS}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
