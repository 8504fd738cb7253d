"""The server a run's worker processes are forked from (engine/cpu_pool.py), and starting it.

Apart from the pool, so that the program can start the server as its very first step, before
its own imports (engine/cpu_pool.py imports most of the tool): this module imports nothing but
``multiprocessing``.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.forkserver

# What a worker imports before its first batch: the batch functions and all they use, and the
# PostgreSQL driver, which SQLAlchemy imports only when an engine first connects (50 ms of CPU in
# each worker otherwise; where it is not installed the server goes on without it). The fork
# server imports them once; each worker is forked from it ready to work.
BATCH_MODULES = [
    "tui_migrator.engine.batches",
    "tui_migrator.engine.verification",
    "psycopg",
]


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
        multiprocessing.forkserver.ensure_running()
