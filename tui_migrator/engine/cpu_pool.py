"""The CPU work of a run in worker processes: sealing, backup sealing, and verification's
opening and digests, which are Python per value and would otherwise share one core (the GIL)
with everything else the run does.

A call ships one whole batch of plain rows to a worker and brings the whole batch's result
back; the database work, the event loop and every decision stay in the run's process. The batch
functions are the same ones the run calls in its own process when it has no pool (one process,
or a value the workers cannot handle): the pool only decides *where* they run, never *what*
they do.

Key material reaches the workers once, through the pool's pipe, when each starts (the data
keys, the derived digest key and the run's derived backup key; never the master key, never a
file or a command line). Workers are started from a fresh interpreter (``forkserver`` where the
platform has it, else ``spawn``), so they inherit no database connection, thread or lock.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.forkserver
import os
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar

from tui_migrator.crypto.ciphers import KeyNotGiven, RowSealer, ValueCipher, WorkerKeys

P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True)
class RowCrypto:
    """What the batch functions seal and open with."""

    cipher: ValueCipher
    sealer: RowSealer | None = None


def processes_for(max_concurrency: int) -> int:
    """Worker processes for a run: one per batch it may have in flight, no more than the
    machine's cores; none (the run's own process does the work) for one batch at a time."""
    processes = min(max_concurrency, os.cpu_count() or 1)
    return processes if processes > 1 else 0


class CpuPool:
    """Runs batch functions in worker processes, or in this process where it has none."""

    def __init__(self, local: RowCrypto, processes: int, keys: WorkerKeys | None = None) -> None:
        self.local = local
        self.processes = processes if keys is not None else 0
        self._executor: ProcessPoolExecutor | None = None
        if self.processes:
            self._executor = ProcessPoolExecutor(
                self.processes,
                mp_context=process_context(),
                initializer=_start_worker,  # type: ignore[arg-type]  # typeshed: no arguments
                initargs=(keys,),  # type: ignore[arg-type]
            )

    def run(self, function: Callable[Concatenate[RowCrypto, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``function(crypto, *args, **kwargs)`` in a worker, or here without workers."""
        return self.submit(function, *args, **kwargs).result()

    def submit(
        self, function: Callable[Concatenate[RowCrypto, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> Pending[T]:
        """Start ``function(crypto, *args, **kwargs)`` in a worker and return at once (without
        workers, it runs here now), so the caller can read the next batch meanwhile."""
        local = partial(function, self.local, *args, **kwargs)
        if self._executor is None:
            return Pending(None, local)
        return Pending(self._executor.submit(_call, function, args, kwargs), local)

    @property
    def batches_in_flight(self) -> int:
        """How many batches a caller keeps submitted: two per worker, so a worker that finishes
        one has the next already (the caller reads and writes between results, and a result
        takes a while to come back); one without workers."""
        return 2 * self.processes if self.processes else 1

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def __enter__(self) -> CpuPool:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


# What a worker imports before its first batch: the batch functions and all they use. The
# fork server imports them once; each worker is forked from it ready to work.
BATCH_MODULES = [
    "tui_migrator.engine.batches",
    "tui_migrator.engine.verification",
]


def process_context() -> multiprocessing.context.BaseContext:
    """How worker processes start (see the module's docstring)."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    # Replaces the default ['__main__']: the server never imports the program's main module.
    context.set_forkserver_preload(BATCH_MODULES)
    return context


def start_process_server(max_concurrency: int) -> None:
    """Start the server workers are forked from now, for a run that will have workers, so that
    its imports (half a second) overlap the run's own checks instead of holding up its first
    batch. Without a fork server (``spawn``), or without workers, nothing happens."""
    if processes_for(max_concurrency) and process_context().get_start_method() == "forkserver":
        multiprocessing.forkserver.ensure_running()


class Pending(Generic[T]):
    """A batch function's result to come."""

    def __init__(self, future: Future[T] | None, local: Callable[[], T]) -> None:
        self._future = future
        self._local = local

    def result(self) -> T:
        if self._future is None:
            return self._local()
        try:
            return self._future.result()
        except KeyNotGiven:
            # A key created after the workers started (an organization's first row, inserted
            # during the run): this process has it, or creates it.
            return self._local()


_worker_crypto: RowCrypto | None = None


def _start_worker(keys: WorkerKeys) -> None:
    global _worker_crypto
    _worker_crypto = RowCrypto(keys.cipher(), keys.sealer())


def _call(function: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]) -> T:
    assert _worker_crypto is not None, "the worker was started with its keys"
    return function(_worker_crypto, *args, **kwargs)
