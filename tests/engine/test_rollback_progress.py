"""A rollback is visible while it runs and after it stops: its progress, in the migration's record,
moves with every batch and ends finished; one that fails or dies part-way says so and may run
again; while one runs, nothing else may touch the migration; and it runs in a detached process
(like a migration's worker) that restores every value exactly."""

from __future__ import annotations

import os
import pwd
import subprocess
from contextlib import ExitStack
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from tests.support.databases import BOTH_BACKENDS
from tests.support.migration_helpers import FAST, exiting_at_once, raw_dump, wait_for
from tui_migrator.common.errors import BadInput, Interrupted, OperationFailed
from tui_migrator.engine import detached, retry
from tui_migrator.engine import rollback as rollback_engine
from tui_migrator.engine.log_files import log_path
from tui_migrator.engine.rollback import RollbackResult
from tui_migrator.service.facade import MigratorService
from tui_migrator.service.views import status_data
from tui_migrator.storage import operation_guard, rollback_progress
from tui_migrator.storage.database import DriverStatement
from tui_migrator.storage.migration_claims import ClaimLost
from tui_migrator.storage.migration_status import Status
from tui_migrator.storage.rollback_progress_writer import ProgressWriter
from tui_migrator.storage.tables import migrations_table, utc_now
from tui_migrator.tui.formatting import status_label

pytestmark = BOTH_BACKENDS


def _every_write(monkeypatch: pytest.MonkeyPatch) -> list[rollback_progress.RollbackProgress]:
    """Every progress write, with the once-a-second limit lifted and small batches, so a small
    demo shows many steps."""
    written: list[rollback_progress.RollbackProgress] = []
    original = rollback_progress.write_on

    def recording(connection: Any, migration_id: str, progress: rollback_progress.RollbackProgress) -> None:
        written.append(progress)
        original(connection, migration_id, progress)

    monkeypatch.setattr(rollback_progress, "write_on", recording)
    monkeypatch.setattr(rollback_progress, "WRITE_EVERY_SECONDS", 0.0)
    monkeypatch.setattr(rollback_engine, "BATCH", 25)
    return written


def _stopping_after(monkeypatch: pytest.MonkeyPatch, rows: int, error: BaseException) -> Any:
    """Rollbacks from now on restore ``rows`` rows, then meet ``error`` at every row after;
    gives back the real row restore, for a test to put back."""
    original = rollback_engine._restored
    calls = {"n": 0}

    def stopping(*arguments: Any) -> Any:
        calls["n"] += 1
        if calls["n"] > rows:
            raise error
        return original(*arguments)

    monkeypatch.setattr(rollback_engine, "_restored", stopping)
    return original


def _rolled_back_again(
    service: MigratorService,
    monkeypatch: pytest.MonkeyPatch,
    restore_row: Any,
    migration_id: str,
    before: Any,
) -> RollbackResult:
    """With the real row restore (``restore_row``) back, the rollback run again to its end, every
    table byte for byte as ``before``; its result."""
    monkeypatch.setattr(rollback_engine, "_restored", restore_row)
    rolled, again = service.rollback(migration_id, confirm=True)
    assert rolled.status is Status.ROLLED_BACK
    assert raw_dump(service.engine) == before
    return again


def test_progress_moves_with_every_batch_and_ends_finished(
    service: MigratorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = service.start(FAST)
    written = _every_write(monkeypatch)
    rolled, result = service.rollback(record.id, confirm=True)

    restored = [progress.restored_rows for progress in written]
    assert restored == sorted(restored), "progress never goes backwards"
    assert restored[0] == 0 and 0 < restored[len(restored) // 2] < result.restored_rows
    assert [p.tables_done for p in written] == sorted(p.tables_done for p in written)
    assert all(p.rows_to_restore == record.encrypted_records for p in written)
    final = rolled.rollback_progress
    assert final is not None and final.finished and not final.alive
    assert final.restored_rows == result.restored_rows == record.total_records
    assert final.tables_done == final.tables_total == len(record.tables)
    assert rolled.status is Status.ROLLED_BACK and not rolled.rolling_back
    data = status_data(rolled)["rollback"]
    assert data["restoredRows"] == result.restored_rows and data["inProgress"] is False
    assert "ticket" not in data


def test_a_rollback_that_fails_part_way_says_so_and_can_run_again(
    service: MigratorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = raw_dump(service.engine)
    record = service.start(FAST)
    _every_write(monkeypatch)
    original = _stopping_after(monkeypatch, 60, OperationFailed("the database went away (simulated)"))
    with pytest.raises(OperationFailed):
        service.rollback(record.id, confirm=True)

    stopped = service.status(record.id)
    progress = stopped.rollback_progress
    assert progress is not None and progress.error == "the database went away (simulated)"
    assert progress.stopped_part_way and not stopped.rolling_back
    assert 0 < progress.restored_rows < record.total_records
    assert stopped.status is Status.COMPLETED and stopped.can_rollback
    assert status_label(stopped) == "completed, rollback stopped"
    assert status_data(stopped)["rollback"]["stoppedPartWay"] is True

    again = _rolled_back_again(service, monkeypatch, original, record.id, before)
    # The rows the first run restored are told apart from values the application wrote since
    # (by the digest of the originals): restored already, none kept as newer.
    assert again.already_restored == progress.restored_rows
    assert again.restored_rows == record.encrypted_records - progress.restored_rows
    assert again.kept_newer_values == 0
    # Its progress counts every row back, the first run's included: it ends at all of them.
    finished = service.status(record.id).rollback_progress
    assert finished is not None and finished.restored_rows == record.encrypted_records
    entries = service.audit_entries(limit=None, migration_id=record.id).entries
    audited = next(entry for entry in entries if entry.operation == "data_migration_rolled_back")
    assert audited.details["alreadyRestoredRows"] == progress.restored_rows


def test_a_rollback_stopped_by_ctrl_c_says_so_and_runs_again_at_once(
    service: MigratorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = raw_dump(service.engine)
    record = service.start(FAST)
    _every_write(monkeypatch)
    original = _stopping_after(monkeypatch, 60, KeyboardInterrupt())
    with pytest.raises(Interrupted) as stopped:
        service.rollback(record.id, confirm=True)
    assert stopped.value.exit_code == 130
    assert "every batch it committed stays restored" in stopped.value.message
    assert stopped.value.hint == f"Run it again to finish: tui-migrator rollback {record.id} --confirm"

    # Recorded as stopped, not left looking alive for its heartbeat's 15 s: it runs again at once.
    progress = service.status(record.id).rollback_progress
    assert progress is not None and progress.stopped_part_way and progress.error is not None
    assert 0 < progress.restored_rows < record.encrypted_records
    again = _rolled_back_again(service, monkeypatch, original, record.id, before)
    assert again.already_restored == progress.restored_rows


def test_a_batch_the_database_fails_once_is_restored_again_and_counted_once(
    service: MigratorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = raw_dump(service.engine)
    record = service.start(FAST)
    _every_write(monkeypatch)
    # The second batch's write meets a lost connection once; its transaction is rolled back.
    sleeps: list[float] = []
    monkeypatch.setattr(retry.time, "sleep", sleeps.append)
    writes = {"n": 0}
    real_execute = DriverStatement.execute

    def losing_the_connection_once(self: DriverStatement, *args: Any, **kwargs: Any) -> int:
        writes["n"] += 1
        if writes["n"] == 2:
            raise sa.exc.OperationalError(
                "UPDATE", {}, Exception("server closed the connection unexpectedly")
            )
        return real_execute(self, *args, **kwargs)

    monkeypatch.setattr(DriverStatement, "execute", losing_the_connection_once)
    rolled, result = service.rollback(record.id, confirm=True)

    assert rolled.status is Status.ROLLED_BACK
    assert sleeps == [retry.RetryPolicy().first_delay]  # one retry, of that batch
    assert result.restored_rows == record.encrypted_records  # not counted twice
    assert result.already_restored == 0 and result.kept_newer_values == 0
    assert raw_dump(service.engine) == before


def test_a_rollback_taken_over_writes_nothing_over_the_one_that_took_it(
    service: MigratorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = raw_dump(service.engine)
    record = service.start(FAST)
    _every_write(monkeypatch)
    successor = rollback_progress.starting(record.encrypted_records, len(record.tables), ticket="successor")
    step = ProgressWriter.step

    def taken_over_while_stalled(writer: ProgressWriter, **progress: Any) -> None:
        # As if this rollback stalled past its heartbeat and another claimed the migration.
        if progress["restored_rows"] > 0 and service.status(record.id).claim_epoch == record.claim_epoch + 1:
            with service.engine.begin() as connection:
                connection.execute(
                    sa.update(migrations_table)
                    .where(migrations_table.c.id == record.id)
                    .values(claim_epoch=migrations_table.c.claim_epoch + 1)
                )
                rollback_progress.write_on(connection, record.id, successor)
        step(writer, **progress)

    monkeypatch.setattr(ProgressWriter, "step", taken_over_while_stalled)
    with pytest.raises(ClaimLost, match="taken over"):
        service.rollback(record.id, confirm=True)

    # The successor's record is untouched: neither this rollback's progress nor its stop.
    assert service.status(record.id).rollback_progress == successor
    monkeypatch.setattr(ProgressWriter, "step", step)
    rolled, _ = service.rollback(record.id, confirm=True, ticket="successor")
    assert rolled.status is Status.ROLLED_BACK
    assert raw_dump(service.engine) == before


def test_a_rollback_whose_heartbeat_went_stale_is_shown_as_stopped(service: MigratorService) -> None:
    record = service.start(FAST)
    long_ago = utc_now() - timedelta(seconds=rollback_progress.STALE_SECONDS + 5)
    killed = replace(
        rollback_progress.starting(record.encrypted_records, len(record.tables)),
        heartbeat_at=long_ago,
        restored_rows=17,
        table="demographics",
    )
    rollback_progress.write(service.engine, record.id, killed)
    shown = service.status(record.id)
    assert not shown.rolling_back and shown.can_rollback and shown.can_resume is False  # completed
    assert shown.rollback_progress is not None and shown.rollback_progress.stopped_part_way
    assert status_label(shown) == "completed, rollback stopped"


def test_while_a_rollback_runs_nothing_else_may_touch_the_migration(service: MigratorService) -> None:
    record = service.start({**FAST, "max_concurrency": 1})
    cancelled_midway = record.id
    running = rollback_progress.starting(record.encrypted_records, len(record.tables), ticket="t0k3n")
    rollback_progress.write(service.engine, cancelled_midway, running)
    shown = service.status(cancelled_midway)
    assert shown.rolling_back and status_label(shown) == "rolling back"
    assert not (shown.can_rollback or shown.can_resume or shown.can_cancel)
    for attempt in (
        lambda: service.rollback(cancelled_midway, confirm=True),
        lambda: service.rollback(cancelled_midway, confirm=True, ticket="wrong"),
        lambda: service.resume(cancelled_midway),
        lambda: service.cancel(cancelled_midway, "no", wait_seconds=0),
    ):
        with pytest.raises(BadInput, match="A rollback of .* is running"):
            attempt()
    # The detached process that was handed the ticket is the one rollback allowed.
    rolled, _ = service.rollback(cancelled_midway, confirm=True, ticket="t0k3n")
    assert rolled.status is Status.ROLLED_BACK


def test_a_detached_rollback_refused_before_it_began_says_why_at_once(service: MigratorService) -> None:
    """Its requester marked the migration as rolling back; refused (here: a sweep holds the
    guard), the detached process writes the reason into that mark instead of leaving "rolling
    back" until the heartbeat goes stale."""
    before = raw_dump(service.engine)
    record = service.start(FAST)
    asked = rollback_progress.starting(record.encrypted_records, len(record.tables), ticket="t0k3n")
    rollback_progress.write(service.engine, record.id, asked)
    assert service.status(record.id).rolling_back

    with (
        operation_guard.exclusive(service.engine, record.id, "sweep"),
        pytest.raises(BadInput, match="Another rollback, purge-backups or sweep .* is running"),
    ):
        service.rollback(record.id, confirm=True, ticket="t0k3n")

    shown = service.status(record.id)
    progress = shown.rollback_progress
    assert progress is not None and progress.stopped_part_way and not shown.rolling_back
    assert progress.error is not None and "'rollback' was refused" in progress.error
    assert status_label(shown) == "completed, rollback stopped" and shown.can_rollback
    assert status_data(shown)["rollback"]["stoppedPartWay"] is True
    refused = [
        entry
        for entry in service.audit_entries(limit=None, migration_id=record.id).entries
        if entry.operation == "data_migration_rollback_failed"
    ]
    assert len(refused) == 1 and refused[0].details["refused"] is True
    # Run again, it restores every value.
    rolled, _ = service.rollback(record.id, confirm=True)
    assert rolled.status is Status.ROLLED_BACK and raw_dump(service.engine) == before


def test_a_refused_detached_rollback_leaves_another_rollbacks_mark_alone(service: MigratorService) -> None:
    """Refused because another rollback claimed the migration since: that one's mark (its own
    ticket, or none) is not the refused process's to change."""
    record = service.start(FAST)
    running = rollback_progress.starting(record.encrypted_records, len(record.tables), ticket="theirs")
    rollback_progress.write(service.engine, record.id, running)
    with pytest.raises(BadInput, match="A rollback of .* is running"):
        service.rollback(record.id, confirm=True, ticket="mine")
    assert service.status(record.id).rollback_progress == running
    operations = [e.operation for e in service.audit_entries(limit=None, migration_id=record.id).entries]
    assert "data_migration_rollback_failed" not in operations


def test_a_rollback_runs_in_a_detached_process_and_restores_every_value(service: MigratorService) -> None:
    # The detached process runs as the real operating-system user, who needs the role too.
    service.grant(pwd.getpwuid(os.geteuid()).pw_name, "super_admin")
    before = raw_dump(service.engine)
    record = service.start(FAST)
    asked = service.rollback_in_background(record.id, confirm=True)
    # Returned once the process had taken the migration: its claim after its requester's mark.
    assert asked.claim_epoch == record.claim_epoch + 2
    assert asked.rolling_back or asked.status is Status.ROLLED_BACK
    wait_for(lambda: service.status(record.id).status is Status.ROLLED_BACK, timeout=120)
    rolled = service.status(record.id)
    assert rolled.rollback_progress is not None and rolled.rollback_progress.finished
    assert rolled.rollback_progress.restored_rows == record.total_records
    assert raw_dump(service.engine) == before
    operations = [e.operation for e in service.audit_entries(limit=None, migration_id=record.id).entries]
    assert "data_migration_rolled_back" in operations


def _rollback_failures(service: MigratorService, migration_id: str) -> list[dict[str, Any]]:
    return [
        entry.details
        for entry in service.audit_entries(limit=None, migration_id=migration_id).entries
        if entry.operation == "data_migration_rollback_failed"
    ]


def test_a_detached_rollback_whose_process_exits_before_it_began_says_so_at_once(
    service: MigratorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its process gone before it could even open the database (its settings or master key
    refused, say): the requester says so, naming the log, and the mark it wrote says so too,
    not "rolling back" until its heartbeat went stale."""
    before = raw_dump(service.engine)
    record = service.start(FAST)

    monkeypatch.setattr(detached, "spawn", exiting_at_once)
    with pytest.raises(
        OperationFailed, match=r"exited \(code 3\) before it began; nothing was restored"
    ) as raised:
        service.rollback_in_background(record.id, confirm=True)
    assert str(log_path(service.settings, record.id)) in str(raised.value.hint)
    assert f"tui-migrator rollback {record.id} --confirm" in str(raised.value.hint)

    shown = service.status(record.id)
    progress = shown.rollback_progress
    assert progress is not None and progress.stopped_part_way and not shown.rolling_back
    assert progress.error is not None and "exited (code 3)" in progress.error
    assert status_label(shown) == "completed, rollback stopped" and shown.can_rollback
    [failure] = _rollback_failures(service, record.id)
    assert failure["exitCode"] == 3 and "refused" not in failure
    rolled, _ = service.rollback(record.id, confirm=True)
    assert rolled.status is Status.ROLLED_BACK and raw_dump(service.engine) == before


def test_a_detached_rollback_refused_in_its_process_is_its_requesters_error(
    service: MigratorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sweep takes the guard between the requester's look and the process's: the process
    is refused and records why in the mark; the requester, waiting for it to begin, raises
    that reason instead of saying it rolls back."""
    service.grant(pwd.getpwuid(os.geteuid()).pw_name, "super_admin")
    before = raw_dump(service.engine)
    record = service.start(FAST)
    spawn = detached.spawn
    with ExitStack() as sweep_running:

        def spawned_while_a_sweep_runs(*args: Any, **options: Any) -> subprocess.Popen[bytes]:
            sweep_running.enter_context(operation_guard.exclusive(service.engine, record.id, "sweep"))
            return spawn(*args, **options)

        monkeypatch.setattr(detached, "spawn", spawned_while_a_sweep_runs)
        with pytest.raises(OperationFailed, match="was refused: .*'rollback' was refused"):
            service.rollback_in_background(record.id, confirm=True)

    shown = service.status(record.id)
    progress = shown.rollback_progress
    assert progress is not None and progress.stopped_part_way and progress.error is not None
    [failure] = _rollback_failures(service, record.id)
    assert failure["refused"] is True
    rolled, _ = service.rollback(record.id, confirm=True)
    assert rolled.status is Status.ROLLED_BACK and raw_dump(service.engine) == before
