"""A maintenance window survives a SIGKILL: a detached worker killed while it runs, or while it
waits for its window, leaves the window and its zone in the migration's stored configuration,
and the worker that `resume` starts honours them: it pauses "outside the maintenance window"
while the clock is outside it and finishes by itself once the window opens.

The detached workers are other processes, which no monkeypatch reaches. As in
test_rollback_states.py, a sitecustomize.py on their PYTHONPATH sets them up: their
``control.wall_clock`` reads the instant from a file the test writes (this process reads the
same file), their batches can be slowed down so one is caught mid-run, and they take a worker
for gone after 2 s without a heartbeat, as this process does here. Production code has no hook.
"""

from __future__ import annotations

import os
import pwd
import signal
import textwrap
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.support.migration_helpers import (
    assert_fully_encrypted,
    process_alive,
    raw_dump,
    wait_for,
    worker_pid,
)
from tui_migrator.common.windows import OUTSIDE_WINDOW
from tui_migrator.engine import control
from tui_migrator.service.facade import MigratorService
from tui_migrator.service.views import status_data
from tui_migrator.storage import migration_records as migrations
from tui_migrator.storage.migration_records import MigrationRecord
from tui_migrator.storage.migration_status import Status

pytestmark = pytest.mark.backends("sqlite")

# 01:00-05:00 in Berlin is 23:00-03:00 UTC in June (CEST). Every process's machine zone is New
# York's here (TZ below), where the same window is 05:00-09:00 UTC: a worker that judged the
# window in its machine's zone instead of the stored one would run while it must wait, and wait
# while it may run.
WINDOW = {"window": "01:00-05:00", "timezone": "Europe/Berlin"}
MACHINE_ZONE = "America/New_York"
OPEN = datetime(2026, 6, 1, 23, 30, tzinfo=UTC)  # 01:30 in Berlin, 19:30 in New York
CLOSED = datetime(2026, 6, 2, 6, 0, tzinfo=UTC)  # 08:00 in Berlin, 02:00 in New York
NEXT_OPENING = datetime(2026, 6, 2, 23, 0, tzinfo=UTC)  # 01:00 in Berlin
OPEN_AGAIN = datetime(2026, 6, 2, 23, 30, tzinfo=UTC)
SLOW = {"batch_size": 8, "max_concurrency": 1}

_WORKER_HOOK = textwrap.dedent(
    """
    import os, time
    from datetime import datetime
    from pathlib import Path

    from tui_migrator.engine import batches, control
    from tui_migrator.storage import migration_records

    _clock = Path(os.environ["TM_TEST_CLOCK_FILE"])
    control.wall_clock = lambda: datetime.fromisoformat(_clock.read_text().strip())
    migration_records.HEARTBEAT_STALE_SECONDS = 2.0

    _seconds = float(os.environ.get("TM_TEST_BATCH_SECONDS") or 0)
    if _seconds:
        _real_process = batches.TableBatches.process

        def _slow_process(self, rows, *, after):
            time.sleep(_seconds)
            return _real_process(self, rows, after=after)

        batches.TableBatches.process = _slow_process
    """
)


class FileClock:
    """The instant every process judges the schedule at: written to a file the workers read."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def set(self, now: datetime) -> None:
        written = self.path.with_suffix(".tmp")
        written.write_text(now.isoformat())
        os.replace(written, self.path)  # a worker never reads half a time

    def __call__(self) -> datetime:
        return datetime.fromisoformat(self.path.read_text().strip())


@pytest.fixture
def clock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FileClock:
    hook = tmp_path / "worker-hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(_WORKER_HOOK)
    shared = FileClock(tmp_path / "clock.txt")
    shared.set(CLOSED)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(hook), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("TM_TEST_CLOCK_FILE", str(shared.path))
    monkeypatch.setenv("TZ", MACHINE_ZONE)
    monkeypatch.setattr(control, "wall_clock", shared)
    monkeypatch.setattr(migrations, "HEARTBEAT_STALE_SECONDS", 2.0)
    return shared


@pytest.fixture
def detached(service: MigratorService) -> Iterator[list[int]]:
    """The workers' process ids, each killed at the end if it still runs, whatever failed."""
    # The detached workers run as the real operating-system user, who needs the role too.
    service.grant(pwd.getpwuid(os.geteuid()).pw_name, "super_admin")
    pids: list[int] = []
    yield pids
    for pid in pids:
        if process_alive(pid):
            os.kill(pid, signal.SIGKILL)


def _waiting_for_the_window(
    service: MigratorService, migration_id: str, *, not_pid: int | None = None
) -> Callable[[], bool]:
    """For wait_for: a live worker (not ``not_pid``) has paused it for its window."""

    def check() -> bool:
        record = service.status(migration_id)
        return (
            record.worker_alive
            and worker_pid(record) != not_pid
            and record.stored_status is Status.PAUSED
            and record.pause_reason == OUTSIDE_WINDOW
        )

    return check


def _beats_again(service: MigratorService, record: MigrationRecord) -> None:
    """Wait for two more heartbeats of its worker: it is alive and has had time to write."""

    def beat_after(seen: datetime) -> Callable[[], bool]:
        return lambda: (service.status(record.id).heartbeat_at or seen) > seen

    for _ in range(2):
        seen = service.status(record.id).heartbeat_at
        assert seen is not None
        wait_for(beat_after(seen), timeout=15)


def _kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not process_alive(pid), timeout=10)


@pytest.mark.parametrize("killed_while", ["running", "waiting for its window"])
def test_a_window_outlives_a_sigkill_and_the_resumed_worker_honours_it(
    service: MigratorService,
    clock: FileClock,
    detached: list[int],
    monkeypatch: pytest.MonkeyPatch,
    killed_while: str,
) -> None:
    before = raw_dump(service.engine)
    if killed_while == "running":
        # Inside the window, with batches slow enough to be caught between two of them.
        clock.set(OPEN)
        monkeypatch.setenv("TM_TEST_BATCH_SECONDS", "0.05")
    started = service.start({**SLOW, **WINDOW}, detach=True)
    if killed_while == "running":
        wait_for(lambda: service.status(started.id).worker_alive, timeout=60)
        detached.append(worker_pid(service.status(started.id)) or 0)
        wait_for(lambda: service.status(started.id).encrypted_records > 0, timeout=60)
        assert service.status(started.id).stored_status is Status.RUNNING
    else:
        wait_for(_waiting_for_the_window(service, started.id), timeout=60)
        detached.append(worker_pid(service.status(started.id)) or 0)
    first = detached[0]
    assert first not in (0, os.getpid())  # really another process

    _kill(first)
    wait_for(lambda: service.status(started.id).status is Status.INTERRUPTED, timeout=15)
    killed = service.status(started.id)
    done = killed.encrypted_records
    assert (done > 0) == (killed_while == "running") and done < killed.total_records
    # What the next worker reads: the window and its zone, stored with the migration.
    assert (killed.config.window, killed.config.timezone) == ("01:00-05:00", "Europe/Berlin")

    # Resumed outside the window, by a new detached worker at full speed.
    clock.set(CLOSED)
    monkeypatch.delenv("TM_TEST_BATCH_SECONDS", raising=False)
    service.resume(started.id, detach=True)
    wait_for(_waiting_for_the_window(service, started.id, not_pid=first), timeout=60)
    waiting = service.status(started.id)
    second = worker_pid(waiting)
    assert second is not None
    detached.append(second)
    assert (waiting.config.window, waiting.config.timezone) == ("01:00-05:00", "Europe/Berlin")
    _beats_again(service, waiting)
    held = service.status(started.id)
    assert held.stored_status is Status.PAUSED and held.pause_reason == OUTSIDE_WINDOW
    assert held.encrypted_records == done  # it writes nothing while the window is closed
    schedule = status_data(held)["schedule"]
    assert schedule["windowOpen"] is False
    assert schedule["nextOpening"] == NEXT_OPENING.isoformat().replace("+00:00", "Z")
    # The resumed worker judged the window in Berlin, not in its machine's zone: the opening
    # it said it waits for is Berlin's 01:00.
    paused_events = [
        entry.details
        for entry in service.audit_entries(limit=None, migration_id=started.id).entries
        if entry.operation == "data_migration_paused"
    ]
    assert paused_events[-1]["reason"] == OUTSIDE_WINDOW
    assert datetime.fromisoformat(paused_events[-1]["resumesAt"]) == NEXT_OPENING

    # The window opens: the same worker goes on by itself and finishes, nothing encrypted twice.
    clock.set(OPEN_AGAIN)
    wait_for(lambda: service.status(started.id).stored_status.is_finished, timeout=120)
    finished = service.status(started.id)
    assert finished.status is Status.COMPLETED, finished.error_message
    assert worker_pid(finished) == second
    assert assert_fully_encrypted(service, service.mapping(), before) == finished.total_records
