"""How a batch function's result travels back from a worker process to the run's own process.

Through the pool's pipe a result is copied over and over on its way: the worker writes it into
the pipe, and the run's process reads it back 64 KiB at a time into a buffer it keeps growing
(``multiprocessing``'s Connection) before unpickling it. For a batch of rows of tens of KB — 19
MB of tokens and backups for 40 rows of 200 KB — that took 25 ms of the run's own CPU, and on
such rows the run's own process is what the whole run waits for (tests/benchmarks/MEASUREMENTS.md).

So a result of SHARED_FROM_BYTES and more, pickled, goes through a file in shared memory
instead (``/dev/shm``, memory, never a disk): the worker reserves its room first (a full
``/dev/shm`` is an error it falls back from, never a crash on writing), writes it once and sends
its name; the run's process maps it, unpickles it from the mapping and removes it (5 ms for the
same batch). Smaller results, and every result where there is no such directory or no room in
it, go through the pipe, pickled once in the worker. The files hold what a batch sends back —
tokens, sealed backups, digests, keys — readable by the run's user alone, named after the run's
pool, and removed as they are read; whatever a worker that died left behind is removed when the
pool closes (remove_leftovers), and what a run that was killed left is removed by the next run
that starts a pool (remove_stale): its files name the process that ran it.
"""

from __future__ import annotations

import contextlib
import itertools
import mmap
import os
import pickle
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SHARED_FROM_BYTES = 1 << 20
SHARED_DIRECTORY = Path("/dev/shm")
# A file is a killed run's only once this old as well: a result waits a moment to be read, and a
# process of another PID namespace sharing /dev/shm (a container's) looks gone from here.
STALE_SECONDS = 600
_PREFIX = "tm-batch-"
_numbers = itertools.count()


def new_run_name() -> str:
    """A name for one pool's files, unguessable and its own (see remove_leftovers, remove_stale)."""
    return f"{_PREFIX}{os.getpid()}-{secrets.token_hex(8)}"


@dataclass(frozen=True)
class Shipped:
    """A result on its way: pickled here (``pickled``), or in the file at ``path``."""

    pickled: bytes | None = None
    path: str | None = None


def ship(result: object, run_name: str, directory: Path = SHARED_DIRECTORY) -> Shipped:
    """``result`` made ready to send (in a worker process): pickled, and where that is large and
    ``directory`` has room, written to a file of its own there."""
    pickled = pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
    if len(pickled) < SHARED_FROM_BYTES:
        return Shipped(pickled=pickled)
    path = directory / f"{run_name}-{os.getpid()}-{next(_numbers)}"
    try:
        descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except OSError:
        return Shipped(pickled=pickled)
    try:
        with os.fdopen(descriptor, "wb") as file:
            os.posix_fallocate(file.fileno(), 0, len(pickled))
            file.write(pickled)
    except OSError:
        with contextlib.suppress(OSError):
            path.unlink()
        return Shipped(pickled=pickled)
    return Shipped(path=str(path))


def receive(shipped: Shipped) -> Any:
    """The result ``shipped`` carries (in the run's process); its file, if any, removed."""
    if shipped.path is None:
        assert shipped.pickled is not None
        return pickle.loads(shipped.pickled)
    try:
        with open(shipped.path, "rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            return pickle.loads(mapped)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(shipped.path)


def remove_stale(directory: Path = SHARED_DIRECTORY) -> int:
    """Remove the files of runs whose process is gone (killed before its pool closed) that are
    STALE_SECONDS old; how many. Another user's files are not this one's to remove
    (``/dev/shm`` is sticky): left alone."""
    removed = 0
    now = time.time()
    with contextlib.suppress(OSError):
        for path in directory.glob(f"{_PREFIX}*"):
            owner = path.name[len(_PREFIX) :].split("-", 1)[0]
            with contextlib.suppress(OSError):
                if owner.isdigit() and not _alive(int(owner)) and now - path.stat().st_mtime >= STALE_SECONDS:
                    path.unlink()
                    removed += 1
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def remove_leftovers(run_name: str, directory: Path = SHARED_DIRECTORY) -> int:
    """Remove the files of ``run_name`` still there (a worker process that died after writing
    one, a result never taken); how many."""
    removed = 0
    with contextlib.suppress(OSError):
        for path in directory.glob(f"{run_name}-*"):
            with contextlib.suppress(OSError):
                path.unlink()
                removed += 1
    return removed
