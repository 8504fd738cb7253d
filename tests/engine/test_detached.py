"""Across processes: a detached worker survives on its own, is cancelled from another process,
is killed and shows as interrupted, and resumes with nothing encrypted twice."""

from __future__ import annotations

import os
import signal

import pytest

from tests.support.databases import (
    BOTH_BACKENDS,
)
from tests.support.migration_helpers import (
    assert_fully_encrypted,
    exiting_at_once,
    process_alive,
    raw_dump,
    wait_for,
    worker_pid,
)
from tui_migrator.common.errors import BadInput, OperationFailed
from tui_migrator.common.settings import Settings
from tui_migrator.engine import detached
from tui_migrator.engine.log_files import log_path
from tui_migrator.service.facade import MigratorService
from tui_migrator.storage import migration_records as migrations
from tui_migrator.storage.migration_status import Status

SLOW = {"batch_size": 8, "max_concurrency": 1}


pytestmark = BOTH_BACKENDS


def test_detached_worker_is_cancelled_from_another_process_then_resumed(
    bigger: tuple[Settings, MigratorService],
) -> None:
    settings, service = bigger
    before = raw_dump(service.engine)
    started = service.start(SLOW, detach=True)
    # Returned once its worker had claimed it: running, in another process.
    assert started.status is Status.RUNNING and started.claim_epoch == 1
    assert worker_pid(started) != os.getpid()
    wait_for(lambda: service.status(started.id).encrypted_records > 50, timeout=60)
    running = service.status(started.id)
    assert running.worker is not None and worker_pid(running) != os.getpid()  # really another process

    cancelled = service.cancel(started.id, "Emergency maintenance required")
    assert cancelled.status is Status.CANCELLED
    assert 0 < cancelled.encrypted_records < cancelled.total_records
    wait_for(lambda: not process_alive(worker_pid(running)), timeout=30)  # the worker exits by itself

    resumed = service.resume(started.id)
    assert resumed.status is Status.COMPLETED
    assert assert_fully_encrypted(service, service.mapping(), before) == resumed.total_records
    service.rollback(started.id, confirm=True)
    assert raw_dump(service.engine) == before
    log = log_path(settings, started.id).read_text()
    assert "Traceback" not in log


def test_killed_worker_shows_as_interrupted_and_resume_finishes(
    bigger: tuple[Settings, MigratorService], monkeypatch: pytest.MonkeyPatch
) -> None:
    _settings, service = bigger
    before = raw_dump(service.engine)
    monkeypatch.setattr(migrations, "HEARTBEAT_STALE_SECONDS", 2.0)
    started = service.start(SLOW, detach=True)
    wait_for(lambda: service.status(started.id).encrypted_records > 30, timeout=60)
    pid = worker_pid(service.status(started.id))
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not process_alive(pid), timeout=10)
    wait_for(lambda: service.status(started.id).status is Status.INTERRUPTED, timeout=10)
    interrupted = service.status(started.id)
    assert interrupted.stored_status is Status.RUNNING and not interrupted.worker_alive
    assert interrupted.can_rollback

    resumed = service.resume(started.id)
    assert resumed.status is Status.COMPLETED
    assert assert_fully_encrypted(service, service.mapping(), before) == resumed.total_records
    assert resumed.verification and resumed.verification["passed"]


@pytest.mark.backends("sqlite")
def test_a_second_worker_is_refused_on_sqlite_with_the_reason(
    bigger: tuple[Settings, MigratorService],
) -> None:
    _settings, service = bigger
    record = service.start(SLOW, detach=True)
    # Paused at once, so that it is still live (its worker there) when the second one asks: a
    # run that completed first was refused for that instead (a CI run saw it).
    assert service.pause(record.id).pause_requested
    wait_for(lambda: service.status(record.id).status is Status.PAUSED, timeout=60)
    assert service.status(record.id).worker_alive
    with pytest.raises(BadInput, match="can only join it on PostgreSQL"):
        service.join(record.id)
    service.cancel(record.id, "test over")


@pytest.mark.backends("sqlite")
def test_a_detached_start_or_resume_may_be_paused_at_once(
    bigger: tuple[Settings, MigratorService],
) -> None:
    """What the operator does right after `start --detach` (or `resume --detach`) finds the
    migration running, whatever the time its worker took to come up: pausing it is not refused
    as 'planned' (or 'cancelled')."""
    _settings, service = bigger
    started = service.start(SLOW, detach=True)
    assert service.pause(started.id).pause_requested
    wait_for(lambda: service.status(started.id).status is Status.PAUSED, timeout=60)
    service.cancel(started.id, "stopped to resume it")
    resumed = service.resume(started.id, detach=True)
    assert resumed.status is Status.RUNNING and resumed.claim_epoch == 2
    assert service.pause(started.id).pause_requested
    service.cancel(started.id, "test over")


@pytest.mark.backends("sqlite")
def test_a_detached_worker_that_exits_before_claiming_is_an_error_naming_its_log(
    bigger: tuple[Settings, MigratorService], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, service = bigger

    monkeypatch.setattr(detached, "spawn", exiting_at_once)
    with pytest.raises(
        OperationFailed, match=r"exited \(code 3\) before it began; nothing was run"
    ) as raised:
        service.start(SLOW, detach=True)
    [record] = service.list_migrations()[0]
    assert str(log_path(settings, record.id)) in str(raised.value.hint)
    assert record.status is Status.PLANNED and record.encrypted_records == 0
