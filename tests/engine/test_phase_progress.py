"""Verification reports its progress on the migration record, as batch
processing does: rows done of the rows the phase covers, then nothing once the phase is over."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.engine import Connection

from tests.support.databases import BOTH_BACKENDS
from tests.support.migration_helpers import FAST
from tui_migrator.engine import phase_progress
from tui_migrator.engine.phase_progress import PhaseMeter
from tui_migrator.service.facade import MigratorService
from tui_migrator.service.views import status_data
from tui_migrator.storage import migration_claims
from tui_migrator.storage import migration_records as migrations
from tui_migrator.storage.migration_records import MigrationRecord, PhaseProgress
from tui_migrator.storage.migration_status import Phase, Status

pytestmark = BOTH_BACKENDS


def record_every_phase_progress_write(monkeypatch: pytest.MonkeyPatch) -> list[MigrationRecord]:
    """Every write of ``phase_progress`` (each batch's, the write interval being zero), as the
    migration's record reads back in the transaction that wrote it."""
    monkeypatch.setattr(phase_progress, "WRITE_EVERY_SECONDS", 0.0)
    seen: list[MigrationRecord] = []
    real_update = migrations.update

    def update(connection: Connection, migration_id: str, **values: Any) -> None:
        real_update(connection, migration_id, **values)
        if "phase_progress" in values:
            seen.append(migrations.load(connection, migration_id))

    real_fenced_update = migration_claims.fenced_update

    def fenced_update(connection: Connection, migration_id: str, epoch: int, **values: Any) -> None:
        real_fenced_update(connection, migration_id, epoch, **values)
        if "phase_progress" in values:
            seen.append(migrations.load(connection, migration_id))

    monkeypatch.setattr(migrations, "update", update)
    # A worker writes its record under its claim (storage/migration_claims.py).
    monkeypatch.setattr(migration_claims, "fenced_update", fenced_update)
    return seen


def phase_runs(seen: list[MigrationRecord]) -> list[list[PhaseProgress]]:
    """The writes, split into one run per phase at each write that cleared the figures."""
    runs: list[list[PhaseProgress]] = [[]]
    for record in seen:
        if record.phase_progress is None:
            runs.append([])
        else:
            runs[-1].append(record.phase_progress)
    return [run for run in runs if run]


def test_verification_reports_rows_done_of_their_total_then_clears_it(
    service: MigratorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = record_every_phase_progress_write(monkeypatch)
    record = service.start(FAST)
    assert record.status is Status.COMPLETED

    # The backup stage only makes the backup tables (each batch backs up its rows): verification
    # alone is a stage over every row, outside batch processing.
    (verification,) = phase_runs(seen)
    assert {progress.phase for progress in verification} == {Phase.VERIFICATION.value}
    done = [progress.done for progress in verification]
    assert done[0] == 0
    assert done == sorted(done) and len(set(done)) > 2  # it moves, table after table
    assert len({progress.total for progress in verification}) == 1
    assert done[-1] == verification[-1].total
    # Verification reads back every row the migration encrypted.
    assert verification[-1].total >= record.encrypted_records
    # While the figures were on record, the migration was in their phase, and status --json
    # showed them.
    during = next(r for r in seen if r.phase_progress is not None and r.phase_progress.done > 0)
    assert during.phase_progress is not None and during.phase == during.phase_progress.phase
    shown = status_data(during)["phaseProgress"]
    assert shown["phase"] == during.phase and shown["done"] == during.phase_progress.done
    assert set(shown) >= {"phase", "done", "total", "ratePerSecond", "estimatedRemainingSeconds", "at"}

    finished = service.status(record.id)
    assert finished.phase_progress is None
    assert status_data(finished)["phaseProgress"] is None


def test_a_failed_phase_leaves_no_progress_behind(
    service: MigratorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = record_every_phase_progress_write(monkeypatch)

    def verification_breaks(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("disk gone")

    real_add = PhaseMeter.add

    def add(meter: PhaseMeter, rows: int) -> None:
        real_add(meter, rows)
        if meter.phase is Phase.VERIFICATION and meter.done > 0:
            verification_breaks()

    monkeypatch.setattr(PhaseMeter, "add", add)
    record = service.start(FAST)
    assert record.status is Status.FAILED
    assert any(r.phase_progress is not None and r.phase_progress.phase == "verification" for r in seen)
    assert service.status(record.id).phase_progress is None


def test_the_meter_writes_at_most_once_a_second_besides_its_first_and_last_write(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A clock the test moves: a quarter of a second per row.
    clock = [0.0]
    monkeypatch.setattr(phase_progress.time, "monotonic", lambda: clock[0])
    writes: list[PhaseProgress | None] = []
    meter = PhaseMeter(Phase.VERIFICATION, writes.append)
    meter.begin(20)
    for row in range(1, 21):
        clock[0] = row * 0.25
        meter.add(1)
    meter.end()
    # The first write, one each time a full second has passed since the last, and the clearing.
    assert [w.done if w is not None else None for w in writes] == [0, 4, 8, 12, 16, 20, None]
