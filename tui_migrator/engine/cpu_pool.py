"""The CPU work of a run in worker processes: sealing, backup sealing, and verification's
reading, opening and digests, which are Python per value and would otherwise share one core
(the GIL) with everything else the run does.

A call ships one whole batch to a worker — its plain rows, or, for a function that only reads,
the key range it reads itself from the database — and brings the whole batch's result back;
every write, the event loop and every decision stay in the run's process. The batch functions
are the same ones the run calls in its own process when it has no pool (one process, or a value
the workers cannot handle): the pool only decides *where* they run, never *what* they do.

Key material and the database's URL reach the workers once, through the pool's pipe, when each
starts (the data keys, the derived digest key and the run's derived backup key; never the master
key, never a file or a command line). Workers are started from a fresh interpreter
(``forkserver`` where the platform has it, else ``spawn``), so they inherit no database
connection, thread or lock; a worker connects the first time a batch function reads.
"""

from __future__ import annotations

import logging
import pickle
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from functools import partial
from multiprocessing import Pipe
from multiprocessing.connection import Connection
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, cast

from sqlalchemy.engine import URL, Engine

from tui_migrator.common.cores import usable_cores
from tui_migrator.common.errors import OperationFailed
from tui_migrator.crypto.ciphers import KeyNotGiven, RowSealer, ValueCipher, WorkerKeys
from tui_migrator.engine import batch_transport, process_server
from tui_migrator.engine.batch_transport import Shipped
from tui_migrator.engine.collection_pace import pace_this_process
from tui_migrator.engine.process_server import process_context
from tui_migrator.storage.database import create_database_engine, url_for_another_process

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True)
class BatchContext:
    """What the batch functions seal and open with, and the database those that read their own
    batch read from (None where nothing reads: a calibration's sealing, a unit test's)."""

    cipher: ValueCipher
    sealer: RowSealer | None = None
    database: Engine | None = None

    @property
    def engine(self) -> Engine:
        assert self.database is not None, "a batch function that reads is given the run's database"
        return self.database


def processes_for(max_concurrency: int, cores: int | None = None) -> int:
    """Worker processes for a run: one per batch it may have in flight, no more than the cores
    it may use (``cores``: those this process may run on); none (the run's own process does the
    work) for one batch at a time."""
    processes = min(max_concurrency, cores or usable_cores())
    return processes if processes > 1 else 0


# A migration of fewer rows than this does its CPU work in its own process: starting worker
# processes (forked from the process server, each handed its keys) costs more than they save on
# so few rows. Measured on two cores (2026-12-06, `start` through the CLI, SQLite, copies of the
# demo, three runs each, alternating): 531 rows took 2.25-2.68 s without them and 2.68-2.95 s
# with two; 2,664 rows 3.32-3.47 s without and 3.16-3.44 s with; about even near 1,900.
MIGRATION_WORKERS_FROM_ROWS = 2_000


def migration_processes(max_concurrency: int, rows: int, cores: int | None = None) -> int:
    """Worker processes for a migration (or key rotation) of ``rows`` rows: as processes_for,
    none below MIGRATION_WORKERS_FROM_ROWS."""
    return processes_for(max_concurrency, cores) if rows >= MIGRATION_WORKERS_FROM_ROWS else 0


# How many times a run's worker processes are started afresh after one of them died before the
# run gives up (see CpuPool.replace).
REPLACEMENTS = 3
# How a worker process dies, as the warning and the error say it.
_DEATH = "killed by a signal, such as the out-of-memory killer's, or crashed"


class WorkerProcessDied(OperationFailed):
    """A worker process died again and again (killed, or crashed) and the run stopped."""

    code = "worker_process_died"


class CpuPool:
    """Runs batch functions in worker processes, or in this process where it has none.

    A worker process that dies — killed by the out-of-memory killer or an operator's signal, or
    crashed — takes the pool with it: every batch then in flight comes back broken. Batch
    functions only compute and read (every write is the run's), so nothing of those batches was
    written: the pool is started afresh and they run again, up to REPLACEMENTS times in a run;
    after that the run stops with WorkerProcessDied, which says so."""

    def __init__(self, local: BatchContext, processes: int, keys: WorkerKeys | None = None) -> None:
        self.local = local
        database = None if local.database is None else url_for_another_process(local.database)
        # Workers read from the run's database, so one they cannot open (SQLite in memory)
        # leaves the work here.
        shared = local.database is None or database is not None
        self.processes = processes if keys is not None and shared else 0
        # The name of this pool's files for large results (engine/batch_transport.py), and
        # those a killed run left removed.
        self._run_name = batch_transport.new_run_name()
        if self.processes:
            batch_transport.remove_stale()
        self._starting = (keys, database, self._run_name)
        self._executor: ProcessPoolExecutor | None = None
        # Which pool of processes is the current one, and how many were replaced.
        self.generation = 0
        self.replacements = 0
        self._replacing = threading.Lock()
        if self.processes:
            self._executor = self._start()

    def _start(self) -> ProcessPoolExecutor:
        executor = ProcessPoolExecutor(
            self.processes,
            mp_context=process_context(),
            initializer=_start_worker,  # type: ignore[arg-type]  # typeshed: no arguments
            initargs=self._starting,  # type: ignore[arg-type]
        )
        # Every worker started now, side by side, not one by one as batches come: one started
        # later could be in its first moments, before it leaves Ctrl-C to the run (_start_worker),
        # when the terminal's Ctrl-C reached it, and die of it (a fresh-clone CI run saw it).
        for _ in range(self.processes):
            executor.submit(_started)
        return executor

    def replace(self, broken_generation: int) -> None:
        """Start the worker processes afresh after a batch of ``broken_generation`` came back
        broken, unless another batch of that pool did so first; WorkerProcessDied past
        REPLACEMENTS."""
        with self._replacing:
            if broken_generation != self.generation or self._executor is None:
                return  # replaced already, for a batch that broke with this one (or closed)
            if self.replacements >= REPLACEMENTS:
                raise WorkerProcessDied(
                    f"A worker process of this run died {REPLACEMENTS + 1} times ({_DEATH}); the "
                    "run stopped. Nothing of the batches it held was written.",
                    hint="Look in the system log for the kill (dmesg, journalctl -k), then resume; "
                    "--max-concurrency 1 does the work in the run's own process.",
                )
            log.warning(
                "a worker process died (%s); the worker processes are started afresh and its "
                "batches run again",
                _DEATH,
            )
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = self._start()
            self.generation += 1
            self.replacements += 1

    def run(
        self, function: Callable[Concatenate[BatchContext, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """``function(context, *args, **kwargs)`` in a worker, or here without workers."""
        return self.submit(function, *args, **kwargs).result()

    def submit(
        self, function: Callable[Concatenate[BatchContext, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> Pending[T]:
        """Start ``function(context, *args, **kwargs)`` in a worker and return at once (without
        workers, it runs here now), so the caller can read the next batch meanwhile."""
        # Here, a kept argument is its value (in a worker, unpickling it gives the value).
        here_args: Any = [_unkept(argument) for argument in args]
        here_kwargs: Any = {name: _unkept(argument) for name, argument in kwargs.items()}
        local = partial(function, self.local, *here_args, **here_kwargs)
        if self._executor is None:
            return Pending(local)
        return Pending(local, remote=partial(self._submitted, function, args, kwargs), replace=self.replace)

    def _submitted(
        self, function: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[Future[Shipped], int]:
        """The call submitted to the current worker processes, and which pool they are."""
        while True:
            generation, executor = self.generation, self._executor
            if executor is None:
                raise WorkerProcessDied("The run's worker processes were shut down.")
            try:
                return executor.submit(_call, function, args, kwargs), generation
            except BrokenProcessPool:  # broken before this call reached it
                self.replace(generation)

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
            batch_transport.remove_leftovers(self._run_name)

    def __enter__(self) -> CpuPool:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def start_process_server(max_concurrency: int, rows: int) -> None:
    """Start the server workers are forked from now, for a migration of ``rows`` rows that will
    have workers, so that its imports (half a second) overlap the run's own checks instead of
    holding up its first batch (the program itself starts it earlier still, before its own
    imports, for a ``start`` command: cli/launch.py). Without a fork server (``spawn``), or
    without workers, nothing."""
    if migration_processes(max_concurrency, rows):
        process_server.start()


class Pending(Generic[T]):
    """A batch function's result to come: computed here (``local``) or in a worker process
    (``remote`` submits it and says to which pool; where that pool broke, ``replace`` starts
    another and it is submitted again)."""

    def __init__(
        self,
        local: Callable[[], T],
        *,
        remote: Callable[[], tuple[Future[Shipped], int]] | None = None,
        replace: Callable[[int], None] | None = None,
    ) -> None:
        self._local = local
        self._remote = remote
        self._replace = replace
        self._future: Future[Shipped] | None = None
        self._generation = 0
        if remote is not None:
            self._future, self._generation = remote()

    def result(self) -> T:
        while True:
            if self._future is None:
                return self._local()
            try:
                return cast(T, batch_transport.receive(self._future.result()))
            except KeyNotGiven:
                # A key created after the workers started (an organization's first row, inserted
                # during the run): this process has it, or creates it.
                return self._local()
            except BrokenProcessPool:
                # A worker process died. The function only computes and reads: running it
                # again writes nothing twice.
                assert self._remote is not None and self._replace is not None  # from a pool
                self._replace(self._generation)
                self._future, self._generation = self._remote()


def transfer_seconds(arguments: object, result: object) -> float:
    """The CPU seconds the run's own process spends sending ``arguments`` to a worker process
    and taking ``result`` back, moved as the pool moves them (pickled through a pipe; a large
    result through a file in shared memory, engine/batch_transport.py): what a run with worker
    processes pays per batch beside the work itself. The worker's part (unpickling the
    arguments, shipping the result) is left out: it is done by other threads here, whose time
    is not counted. Rows of ordinary size cost a few microseconds each, rows of hundreds of KB
    hundreds (2026-12-07, tests/benchmarks/MEASUREMENTS.md)."""
    outgoing_reader, outgoing_writer = Pipe(duplex=False)
    incoming_reader, incoming_writer = Pipe(duplex=False)
    run_name = batch_transport.new_run_name()
    shipped = batch_transport.ship(result, run_name)
    incoming = pickle.dumps(shipped, protocol=pickle.HIGHEST_PROTOCOL)
    worker = threading.Thread(
        target=_worker_side, args=(outgoing_reader, incoming_writer, incoming), daemon=True
    )
    worker.start()
    try:
        started = time.thread_time()
        outgoing_writer.send_bytes(pickle.dumps(arguments, protocol=pickle.HIGHEST_PROTOCOL))
        batch_transport.receive(pickle.loads(incoming_reader.recv_bytes()))
        return time.thread_time() - started
    finally:
        # This side's ends first: the other side, still waiting where this one failed, ends.
        outgoing_writer.close()
        incoming_reader.close()
        worker.join()
        outgoing_reader.close()
        incoming_writer.close()
        batch_transport.remove_leftovers(run_name)


def _worker_side(reader: Connection, writer: Connection, reply: bytes) -> None:
    """transfer_seconds' other end: takes the arguments in, sends the pickled result back (or
    stops where the measuring side closed its ends)."""
    try:
        reader.recv_bytes()
        writer.send_bytes(reply)
    except (EOFError, OSError):
        pass


def kept(value: T) -> T:
    """``value`` as an argument a worker unpickles once and reuses for every batch that gives
    it again (a table's reflected access, sent with each window of keys): the same object each
    time, so SQLAlchemy's statement cache recognises the statements built from it (a new Table
    object per batch missed it: 1.7 ms more per statement), and its pickled bytes are made here
    once. Typed as ``value`` itself: the batch function receives the value, here or there."""
    return cast(T, _Kept(value))


class _Kept:
    def __init__(self, value: object) -> None:
        self.value = value
        self.pickled = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)

    def __reduce__(self) -> tuple[Callable[[bytes], object], tuple[bytes]]:
        return _kept_value, (self.pickled,)


def _unkept(argument: object) -> object:
    return argument.value if isinstance(argument, _Kept) else argument


# A worker's kept values by their pickled bytes (a run has one per table it reads in workers).
_kept_values: dict[bytes, object] = {}
_KEPT_AT_MOST = 16


def _kept_value(pickled: bytes) -> object:
    if pickled not in _kept_values:
        if len(_kept_values) >= _KEPT_AT_MOST:
            _kept_values.pop(next(iter(_kept_values)))
        _kept_values[pickled] = pickle.loads(pickled)
    return _kept_values[pickled]


_worker_context: BatchContext | None = None
_worker_run_name = ""


def _start_worker(keys: WorkerKeys, database: URL | None, run_name: str) -> None:
    global _worker_context, _worker_run_name
    _worker_run_name = run_name
    # A terminal's signals reach every process of its foreground group, these included; the
    # run's process decides what they mean (the first: finish the batches in flight, which these
    # are working on), so here they are ignored — again, where the fork server was not started
    # with them ignored (process_server). Unhandled, Ctrl-C killed them mid-batch, with a
    # traceback each on the operator's terminal. (SIGTERM is left as it is: the pool stops its
    # workers with it.)
    for number in process_server.TERMINAL_SIGNALS:
        signal.signal(number, signal.SIG_IGN)
    pace_this_process()
    # The engine connects on first use only: a worker that only seals never opens a connection.
    engine = None if database is None else create_database_engine(database)
    _worker_context = BatchContext(keys.cipher(), keys.sealer(), engine)


def _started() -> None:
    """Nothing: what a worker is given to start it (CpuPool._start)."""


def _call(function: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Shipped:
    assert _worker_context is not None, "the worker was started with its keys"
    return batch_transport.ship(function(_worker_context, *args, **kwargs), _worker_run_name)
