"""The garbage collector's pace during batch work: collected less often while a run, a join, a
rollback or a calibration processes batches, the process's own pace back after, and the run's
worker processes at the batch pace for their whole life."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from tests.support.migration_helpers import FAST
from tui_migrator.crypto.ciphers import ValueCipher
from tui_migrator.crypto.data_keys import ThrowawayKeys
from tui_migrator.crypto.keys import MasterKey
from tui_migrator.engine import batches as batches_module
from tui_migrator.engine import collection_pace, estimate, joiner, rollback
from tui_migrator.engine.collection_pace import BATCH_THRESHOLD, batch_pace
from tui_migrator.engine.cpu_pool import BatchContext, CpuPool
from tui_migrator.service.facade import MigratorService
from tui_migrator.storage.migration_status import Status

PROCESS_PACE = (700, 10, 10)


@pytest.fixture(autouse=True)
def process_pace() -> Iterator[None]:
    """Each test starts from CPython's default pace and leaves the process's own as it was."""
    saved = gc.get_threshold()
    gc.set_threshold(*PROCESS_PACE)
    yield
    gc.set_threshold(*saved)


def young_threshold() -> int:
    return gc.get_threshold()[0]


def test_inside_the_young_generation_is_collected_less_often_and_the_old_pace_comes_back() -> None:
    with batch_pace():
        assert gc.get_threshold() == (BATCH_THRESHOLD, 10, 10)
        with batch_pace():  # a calibration inside a start, say
            assert young_threshold() == BATCH_THRESHOLD
        assert young_threshold() == BATCH_THRESHOLD, "the inner exit keeps the outer's pace"
    assert gc.get_threshold() == PROCESS_PACE


def test_the_old_pace_comes_back_after_an_exception() -> None:
    with pytest.raises(RuntimeError), batch_pace():
        raise RuntimeError("a batch failed")
    assert gc.get_threshold() == PROCESS_PACE


def test_a_process_that_collects_less_often_already_is_not_made_to_collect_more() -> None:
    gc.set_threshold(50_000, 20, 20)
    with batch_pace():
        assert gc.get_threshold() == (50_000, 20, 20)
    gc.set_threshold(0)  # automatic collection off: left off
    with batch_pace():
        assert young_threshold() == 0
    assert young_threshold() == 0


def test_the_last_of_two_threads_to_leave_restores_the_pace() -> None:
    first_inside, second_inside, first_may_leave, first_left = (threading.Event() for _ in range(4))
    seen: dict[str, int] = {}

    def first() -> None:
        with batch_pace():
            first_inside.set()
            first_may_leave.wait(10)
        first_left.set()

    thread = threading.Thread(target=first)
    thread.start()
    assert first_inside.wait(10)
    with batch_pace():
        second_inside.set()
        first_may_leave.set()
        assert first_left.wait(10)
        seen["after the first left"] = young_threshold()
    thread.join(10)
    assert seen["after the first left"] == BATCH_THRESHOLD
    assert gc.get_threshold() == PROCESS_PACE


def pace_here(_context: BatchContext) -> tuple[int, ...]:
    return gc.get_threshold()


def test_the_runs_worker_processes_keep_the_batch_pace() -> None:
    master = MasterKey(bytes(32), "test")
    cipher = ValueCipher(ThrowawayKeys(), master, actor="tester")
    cipher.prepare(["org_0"])
    local = BatchContext(cipher)
    with CpuPool(local, 2, cipher.worker_keys(["org_0"], None)) as pool:
        assert pool.processes == 2
        assert {pool.run(pace_here)[0] for _ in range(6)} == {BATCH_THRESHOLD}
    assert gc.get_threshold() == PROCESS_PACE, "this process's own pace is untouched by the pool"


def test_a_migration_a_joining_worker_and_a_rollback_work_at_the_batch_pace_then_give_the_pace_back(
    service: MigratorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    paces: dict[str, set[int]] = {"sealing": set(), "calibration": set(), "rollback": set(), "join": set()}
    real_seal, real_calibrate, real_roll_back = (
        batches_module.seal_row,
        estimate._calibrate_table,
        rollback._restore_table,
    )

    def seal_row(*args, **kwargs):  # type: ignore[no-untyped-def]
        paces["sealing"].add(young_threshold())
        return real_seal(*args, **kwargs)

    def calibrate_table(*args, **kwargs):  # type: ignore[no-untyped-def]
        paces["calibration"].add(young_threshold())
        return real_calibrate(*args, **kwargs)

    def restore_table(*args, **kwargs):  # type: ignore[no-untyped-def]
        paces["rollback"].add(young_threshold())
        return real_roll_back(*args, **kwargs)

    def refuse_to_join(*_args):  # type: ignore[no-untyped-def]
        paces["join"].add(young_threshold())
        raise LookupError("nothing to join here")

    monkeypatch.setattr(batches_module, "seal_row", seal_row)
    monkeypatch.setattr(estimate, "_calibrate_table", calibrate_table)
    monkeypatch.setattr(rollback, "_restore_table", restore_table)
    monkeypatch.setattr(joiner, "refuse_unless_joinable", refuse_to_join)
    # One batch at a time seals in this process, where the patch is.
    record = service.start({**FAST, "max_concurrency": 1})
    assert record.status is Status.COMPLETED
    assert gc.get_threshold() == PROCESS_PACE
    with pytest.raises(LookupError):
        service.join(record.id)  # a second worker's entry, refused inside it
    assert gc.get_threshold() == PROCESS_PACE
    service.rollback(record.id, confirm=True)
    assert gc.get_threshold() == PROCESS_PACE
    assert paces == {
        "sealing": {BATCH_THRESHOLD},
        "calibration": {BATCH_THRESHOLD},
        "rollback": {BATCH_THRESHOLD},
        "join": {BATCH_THRESHOLD},
    }
    assert collection_pace._depth == 0
