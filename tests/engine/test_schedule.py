"""Maintenance windows and scheduled starts in a running migration, on an injected clock: the
worker pauses itself with the reason, keeps its heartbeat, and goes on when the clock says so."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from tests.support.databases import BOTH_BACKENDS
from tests.support.migration_helpers import FAST, Background, latest_is, wait_for
from tui_migrator.common.errors import StateConflict
from tui_migrator.common.windows import BEFORE_START, OUTSIDE_WINDOW
from tui_migrator.engine import batches as batches_module
from tui_migrator.engine import control
from tui_migrator.service.facade import MigratorService
from tui_migrator.service.views import status_data
from tui_migrator.storage.migration_records import MigrationRecord
from tui_migrator.storage.migration_status import Status

pytestmark = BOTH_BACKENDS

NOON = datetime(2026, 6, 1, 12, tzinfo=UTC)
IN_WINDOW = datetime(2026, 6, 2, 1, 30, tzinfo=UTC)
WINDOW = {"window": "01:00-05:00", "timezone": "UTC"}


class Clock:
    """The instant the engine and status judge the schedule at; a test moves it."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    frozen = Clock(NOON)
    monkeypatch.setattr(control, "wall_clock", frozen)
    return frozen


def paused_for(reason: str) -> object:
    return lambda record: record.stored_status is Status.PAUSED and record.pause_reason == reason


def _slow_batches(monkeypatch: pytest.MonkeyPatch, seconds: float = 0.03) -> None:
    real = batches_module.TableBatches.process

    def slow(self, rows, *, after):  # type: ignore[no-untyped-def]
        time.sleep(seconds)
        return real(self, rows, after=after)

    monkeypatch.setattr(batches_module.TableBatches, "process", slow)


def _operations(service: MigratorService, record: MigrationRecord) -> list[str]:
    return [e.operation for e in service.audit_entries(limit=None, migration_id=record.id).entries]


def test_a_migration_started_outside_its_window_pauses_before_its_first_batch_then_runs_when_it_opens(
    service: MigratorService, clock: Clock
) -> None:
    running = Background(lambda: service.start({**FAST, **WINDOW}))
    wait_for(latest_is(service, paused_for(OUTSIDE_WINDOW)))  # type: ignore[arg-type]
    (waiting,), _ = service.list_migrations(limit=1)
    assert waiting.encrypted_records == 0 and waiting.worker_alive
    data = status_data(waiting)
    assert data["status"] == "paused" and data["pauseReason"] == "outside the maintenance window"
    assert data["schedule"]["windowOpen"] is False
    assert data["schedule"]["nextOpening"] == "2026-06-02T01:00:00Z"
    # The schedule, not an operator, paused it: continue is refused and says when it goes on.
    with pytest.raises(StateConflict, match="continues by itself at 2026-06-02T01:00"):
        service.continue_(waiting.id)

    clock.now = IN_WINDOW
    record = running.join()
    assert record.status is Status.COMPLETED
    assert record.encrypted_records == record.total_records and record.pause_reason is None
    assert {"data_migration_paused", "data_migration_continued"} <= set(_operations(service, record))


def test_a_window_that_closes_mid_run_pauses_after_the_batches_in_flight_and_continues_at_the_next_opening(
    service: MigratorService, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    _slow_batches(monkeypatch)
    clock.now = IN_WINDOW
    running = Background(lambda: service.start({"batch_size": 20, "max_concurrency": 2, **WINDOW}))
    wait_for(latest_is(service, lambda r: r.stored_status is Status.RUNNING and r.encrypted_records > 0))
    clock.now = datetime(2026, 6, 2, 5, 0, tzinfo=UTC)  # the window's end: closed
    wait_for(latest_is(service, paused_for(OUTSIDE_WINDOW)))  # type: ignore[arg-type]
    (paused,), _ = service.list_migrations(limit=1)
    frozen = paused.processed_records
    # Until the waiting worker's heartbeat has recorded more paused time: it is alive and waiting.
    wait_for(lambda: service.status(paused.id).paused_seconds > paused.paused_seconds)
    again = service.status(paused.id)
    # The in-flight batches committed before it said paused; nothing is written while it waits.
    assert again.processed_records == frozen < again.total_records and again.worker_alive
    assert status_data(again)["schedule"]["nextOpening"] == "2026-06-03T01:00:00Z"

    clock.now = datetime(2026, 6, 3, 1, 0, tzinfo=UTC)
    record = running.join()
    assert record.status is Status.COMPLETED and record.encrypted_records == record.total_records
    # The wait is counted as paused time: at least what the worker recorded while it waited.
    assert record.paused_seconds >= again.paused_seconds > 0


def test_not_before_holds_the_first_batch_until_then(service: MigratorService, clock: Clock) -> None:
    running = Background(lambda: service.start({**FAST, "not_before": "2026-06-01T13:00", "timezone": "UTC"}))
    wait_for(latest_is(service, paused_for(BEFORE_START)))  # type: ignore[arg-type]
    (waiting,), _ = service.list_migrations(limit=1)
    assert waiting.encrypted_records == 0
    schedule = status_data(waiting)["schedule"]
    assert schedule["notBefore"] == schedule["runsFrom"] == "2026-06-01T13:00:00Z"

    clock.now = datetime(2026, 6, 1, 12, 59, tzinfo=UTC)
    time.sleep(0.5)
    assert service.status(waiting.id).encrypted_records == 0
    clock.now = datetime(2026, 6, 1, 13, 0, tzinfo=UTC)
    assert running.join().status is Status.COMPLETED


def test_an_operator_pause_during_a_window_wait_outlasts_the_opening(
    service: MigratorService, clock: Clock
) -> None:
    running = Background(lambda: service.start({**FAST, **WINDOW}))
    wait_for(latest_is(service, paused_for(OUTSIDE_WINDOW)))  # type: ignore[arg-type]
    (waiting,), _ = service.list_migrations(limit=1)
    service.pause(waiting.id)
    wait_for(lambda: service.status(waiting.id).pause_reason is None)
    clock.now = IN_WINDOW
    time.sleep(0.7)
    held = service.status(waiting.id)
    assert held.stored_status is Status.PAUSED and held.encrypted_records == 0
    service.continue_(waiting.id)
    assert running.join().status is Status.COMPLETED
