"""Elapsed time is active time: the time a migration was paused, or stopped until a resume, is
left out, the same way in the record, ``status``, the report and the screens."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from tests.support.migration_helpers import FAST
from tui_migrator.engine import verification
from tui_migrator.service.facade import MigratorService
from tui_migrator.service.views import status_data
from tui_migrator.storage import migration_claims
from tui_migrator.storage.migration_records import MigrationRecord
from tui_migrator.storage.migration_status import Status
from tui_migrator.storage.tables import migrations_table, utc_now


def set_record(service: MigratorService, migration_id: str, **values: Any) -> None:
    with service.engine.begin() as connection:
        connection.execute(
            sa.update(migrations_table).where(migrations_table.c.id == migration_id).values(**values)
        )


def test_elapsed_time_of_a_finished_migration_leaves_out_its_paused_time(service: MigratorService) -> None:
    record = service.start(FAST)
    started = utc_now() - timedelta(hours=1)
    ended = started + timedelta(seconds=100)
    set_record(
        service, record.id, started_at=started, completed_at=ended, heartbeat_at=ended, paused_seconds=30.0
    )

    finished = service.status(record.id)
    assert finished.elapsed_seconds == pytest.approx(70.0)
    timing = status_data(finished)["timing"]
    assert timing["elapsedSeconds"] == 70.0 and timing["pausedSeconds"] == 30.0
    report = service.report(record.id)
    assert report["timing"]["elapsedSeconds"] == 70.0
    assert report["throughput"]["recordsPerSecond"] == round(finished.encrypted_records / 70.0, 1)


def test_elapsed_time_stands_still_while_paused(service: MigratorService) -> None:
    record = service.start(FAST)
    # Paused 30 of the 100 s since it started: its worker's last beat said so.
    beat = utc_now()
    set_record(
        service,
        record.id,
        status=Status.PAUSED.value,
        started_at=beat - timedelta(seconds=100),
        completed_at=None,
        heartbeat_at=beat,
        paused_seconds=30.0,
    )
    paused = service.status(record.id)
    assert paused.status is Status.PAUSED
    assert paused.elapsed_seconds == pytest.approx(70.0)


def test_a_resumed_migration_leaves_the_time_it_was_stopped_out_of_elapsed(
    service: MigratorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    def verification_fails(*_args: Any, **_kwargs: Any) -> None:
        raise verification.VerificationFailed("the disk went away")

    with monkeypatch.context() as patched:
        patched.setattr(verification, "verify_migration", verification_fails)
        failed = service.start(FAST)
    assert failed.status is Status.FAILED
    # It ran for a minute, and failed an hour ago.
    stopped = utc_now() - timedelta(hours=1)
    set_record(service, failed.id, started_at=stopped - timedelta(minutes=1), heartbeat_at=stopped)
    before = service.status(failed.id)
    assert before.last_active_at == stopped

    # What the claim counted as stopped time, and the moment it claimed the migration.
    counted: list[tuple[datetime, float]] = []
    real = migration_claims._stopped_seconds

    def spying(record: MigrationRecord, now: datetime) -> float:
        seconds = real(record, now)
        counted.append((now, seconds))
        return seconds

    monkeypatch.setattr(migration_claims, "_stopped_seconds", spying)
    resumed = service.resume(failed.id)
    assert resumed.status is Status.COMPLETED
    [(claimed_at, stopped_seconds)] = counted
    # Exactly the gap from its last activity to the resume went to paused time, not elapsed.
    assert stopped_seconds == (claimed_at - stopped).total_seconds()
    assert resumed.paused_seconds == pytest.approx(before.paused_seconds + stopped_seconds)
    assert resumed.started_at == before.started_at
    assert resumed.started_at is not None and resumed.completed_at is not None
    wall = (resumed.completed_at - resumed.started_at).total_seconds()
    assert resumed.elapsed_seconds + resumed.paused_seconds == pytest.approx(wall)
