"""A batch's result comes back from a worker process exactly as it was made, a large one through
a file in shared memory that is removed as it is read; where there is no room for it, through
the pipe; whatever a worker left behind is removed when its pool closes."""

from __future__ import annotations

import errno
import os
import pickle
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tui_migrator.crypto.ciphers import RowSealer, ValueCipher
from tui_migrator.crypto.data_keys import ThrowawayKeys
from tui_migrator.crypto.keys import MasterKey
from tui_migrator.engine import batch_transport
from tui_migrator.engine.batch_transport import Shipped
from tui_migrator.engine.cpu_pool import BatchContext, CpuPool

LARGE = batch_transport.SHARED_FROM_BYTES


def result_of(size: int) -> dict[str, object]:
    """A result shaped like a batch's (text and bytes, nested), about ``size`` bytes pickled."""
    return {"tokens": ["t" * (size // 4), "u" * (size // 4)], "backup": os.urandom(size // 2), "n": 3}


def test_a_small_result_goes_through_the_pipe_pickled_once(tmp_path: Path) -> None:
    result = result_of(1000)
    shipped = batch_transport.ship(result, "run", tmp_path)
    assert shipped.path is None and shipped.pickled is not None
    assert batch_transport.receive(shipped) == result
    assert list(tmp_path.iterdir()) == []


def test_a_large_result_goes_through_a_file_only_its_user_may_read_removed_as_it_is_read(
    tmp_path: Path,
) -> None:
    result = result_of(2 * LARGE)
    shipped = batch_transport.ship(result, "run", tmp_path)
    assert shipped.pickled is None and shipped.path is not None
    written = Path(shipped.path)
    assert written.parent == tmp_path and written.name.startswith("run-")
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    assert batch_transport.receive(shipped) == result
    assert not written.exists()


def test_without_room_for_the_file_a_large_result_goes_through_the_pipe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full /dev/shm: the room is reserved before a byte is written, so the worker learns it
    then (not by a crash on writing into memory that is not there) and sends the result itself."""

    def full(_descriptor: int, _offset: int, _length: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", full)
    result = result_of(2 * LARGE)
    shipped = batch_transport.ship(result, "run", tmp_path)
    assert shipped.path is None and batch_transport.receive(shipped) == result
    assert list(tmp_path.iterdir()) == []
    # No such directory (a platform without /dev/shm): the pipe as well.
    shipped = batch_transport.ship(result, "run", tmp_path / "absent")
    assert shipped.path is None and batch_transport.receive(shipped) == result


def test_a_file_that_cannot_be_read_is_removed_all_the_same(tmp_path: Path) -> None:
    path = tmp_path / "run-1-1"
    path.write_bytes(b"not a pickle" * LARGE)
    with pytest.raises(pickle.UnpicklingError):
        batch_transport.receive(Shipped(path=str(path)))
    assert not path.exists()


def test_only_the_runs_own_leftovers_are_removed(tmp_path: Path) -> None:
    mine = [tmp_path / "tm-batch-1-aa-7-0", tmp_path / "tm-batch-1-aa-8-3"]
    another_runs = tmp_path / "tm-batch-2-bb-7-0"
    for path in [*mine, another_runs]:
        path.write_bytes(b"x")
    assert batch_transport.remove_leftovers("tm-batch-1-aa", tmp_path) == 2
    assert [path.name for path in tmp_path.iterdir()] == [another_runs.name]


def large_result(_context: BatchContext, size: int) -> dict[str, object]:
    return result_of(size)


def test_a_large_batch_from_a_worker_process_arrives_whole_and_leaves_no_file() -> None:
    if not batch_transport.SHARED_DIRECTORY.is_dir():
        pytest.skip("no /dev/shm here: every result goes through the pipe")
    master = MasterKey(os.urandom(32), "test")
    cipher = ValueCipher(ThrowawayKeys(), master, actor="tester")
    cipher.prepare(["org_0"])
    local = BatchContext(cipher, RowSealer(master, "migration_1"))
    keys = cipher.worker_keys(["org_0"], local.sealer)
    with CpuPool(local, 2, keys) as pool:
        name = pool._run_name
        results = [pool.submit(large_result, 3 * LARGE) for _ in range(4)]
        for pending in results:
            result = pending.result()
            assert isinstance(result, dict) and len(result["backup"]) == 3 * LARGE // 2  # type: ignore[arg-type]
        # A file a worker that died would have left: gone once the pool closes.
        left = batch_transport.SHARED_DIRECTORY / f"{name}-0-0"
        left.write_bytes(b"x")
    assert list(batch_transport.SHARED_DIRECTORY.glob(f"{name}-*")) == []


def test_a_killed_runs_files_are_removed_by_the_next_run_and_a_live_ones_kept(tmp_path: Path) -> None:
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead_pid, live_pid = int(gone.stdout), os.getpid()
    dead = tmp_path / f"tm-batch-{dead_pid}-aa-7-0"
    live = tmp_path / f"tm-batch-{live_pid}-bb-7-0"
    unrelated = tmp_path / "another-program-1"
    dead_but_recent = tmp_path / f"tm-batch-{dead_pid}-cc-7-0"
    old = time.time() - batch_transport.STALE_SECONDS - 1
    for path in (dead, live, unrelated, dead_but_recent):
        path.write_bytes(b"x")
        if path is not dead_but_recent:
            os.utime(path, (old, old))
    assert batch_transport.remove_stale(tmp_path) == 1
    kept = [live.name, unrelated.name, dead_but_recent.name]
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(kept)
