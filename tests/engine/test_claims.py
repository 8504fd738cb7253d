"""Commands that must respect a migration's state: each claim checks the status it needs in the
transaction that takes the migration, takes its table locks again and raises its epoch, and a
worker that only looked dead writes nothing after a resume or a rollback took over."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from tests.support.databases import BOTH_BACKENDS
from tests.support.faults import BatchGate, fail_batches_after
from tests.support.migration_helpers import Background, latest, raw_dump, wait_for
from tui_migrator.common.errors import BadInput
from tui_migrator.engine.control import RunControl
from tui_migrator.service.facade import MigratorService
from tui_migrator.storage import migration_claims
from tui_migrator.storage.audit_operations import AuditOperation
from tui_migrator.storage.migration_status import Status
from tui_migrator.storage.tables import migrations_table, table_locks_table, utc_now

pytestmark = BOTH_BACKENDS

SMALL_BATCHES = {"batch_size": 20, "max_concurrency": 1}


def _locked_tables(service: MigratorService, migration_id: str) -> set[str]:
    with service.engine.connect() as connection:
        return set(
            connection.execute(
                sa.select(table_locks_table.c.table_name).where(
                    table_locks_table.c.migration_id == migration_id
                )
            ).scalars()
        )


def _tool_rows(service: MigratorService, migration_id: str) -> tuple[object, ...]:
    with service.engine.connect() as connection:
        return tuple(
            connection.execute(sa.select(migrations_table).where(migrations_table.c.id == migration_id)).one()
        )


def _operations(service: MigratorService, migration_id: str) -> list[str]:
    page = service.audit_entries(limit=None, migration_id=migration_id)
    return [entry.operation for entry in page.entries]


def test_a_worker_refuses_a_rolled_back_migration_and_writes_nothing(service: MigratorService) -> None:
    record = service.start(SMALL_BATCHES)
    service.rollback(record.id, confirm=True)
    before_dump, before_row = raw_dump(service.engine), _tool_rows(service, record.id)

    with pytest.raises(BadInput, match=r"is rolled_back; a worker runs only"):
        service.run_migration(record.id)

    assert service.status(record.id).status is Status.ROLLED_BACK
    assert _tool_rows(service, record.id) == before_row
    assert _locked_tables(service, record.id) == set()
    assert raw_dump(service.engine) == before_dump


def test_a_worker_refuses_a_completed_migration(service: MigratorService) -> None:
    record = service.start(SMALL_BATCHES)
    before_row = _tool_rows(service, record.id)
    with pytest.raises(BadInput, match=r"is completed; a worker runs only"):
        service.run_migration(record.id)
    assert _tool_rows(service, record.id) == before_row


def test_resuming_takes_the_table_locks_again_and_refuses_a_table_another_migration_holds(
    service: MigratorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A failed migration holds its tables; a resume of it keeps them held.
    with monkeypatch.context() as patched:
        fail_batches_after(patched, "demographics", committed=1)
        failed = service.start({**SMALL_BATCHES, "data_categories": ["DEMOGRAPHICS"]})
    assert failed.status is Status.FAILED
    assert _locked_tables(service, failed.id) == {"demographics"}
    # Its lock lost behind the tool's back, and taken by another migration meanwhile.
    with service.engine.begin() as connection:
        connection.execute(
            sa.update(table_locks_table)
            .where(table_locks_table.c.table_name == "demographics")
            .values(migration_id="mig_other")
        )
    with pytest.raises(BadInput, match=r"Table 'demographics' is held by migration mig_other"):
        service.resume(failed.id)
    assert service.status(failed.id).status is Status.FAILED
    # Given back, the resume takes it and completes.
    with service.engine.begin() as connection:
        connection.execute(
            sa.delete(table_locks_table).where(table_locks_table.c.migration_id == "mig_other")
        )
    resumed = service.resume(failed.id)
    assert resumed.status is Status.COMPLETED
    assert _locked_tables(service, failed.id) == set()


def test_the_running_entry_says_resumed_only_for_a_resume(
    service: MigratorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as patched:
        fail_batches_after(patched, "demographics", committed=1)
        failed = service.start({**SMALL_BATCHES, "data_categories": ["DEMOGRAPHICS"]})
    service.resume(failed.id)
    running = [
        entry
        for entry in reversed(service.audit_entries(limit=None, migration_id=failed.id).entries)
        if entry.operation == AuditOperation.MIGRATION_RUNNING
    ]
    assert [entry.details["resumed"] for entry in running] == [False, True]
    assert [entry.details["claim"] for entry in running] == [1, 2]


@pytest.mark.parametrize("takeover", ["rollback", "resume"])
def test_a_worker_that_only_looked_dead_writes_nothing_after_a_takeover(
    service: MigratorService, monkeypatch: pytest.MonkeyPatch, takeover: str
) -> None:
    """The owner stops beating (as if blocked) while holding its next batch; once its heartbeat
    is stale another process takes the migration over. When the owner wakes, its batch must be
    refused: with a rollback, every value is back to the original byte for byte."""
    before = raw_dump(service.engine)
    monkeypatch.setattr(RunControl, "_beat", lambda self, figures: None)
    gate = BatchGate(monkeypatch, open_for=2)
    owner = Background(lambda: service.start(SMALL_BATCHES))
    assert gate.holding.wait(60)
    migration_id = latest(service).id  # type: ignore[union-attr]
    with service.engine.begin() as connection:
        connection.execute(
            sa.update(migrations_table)
            .where(migrations_table.c.id == migration_id)
            .values(heartbeat_at=utc_now() - timedelta(minutes=5))
        )
    assert service.status(migration_id).status is Status.INTERRUPTED

    if takeover == "rollback":
        # On PostgreSQL the held batch keeps its rows locked, so the rollback waits for the
        # owner to wake: it runs beside it, and the owner wakes once the rollback has claimed.
        taking_over = Background(lambda: service.rollback(migration_id, confirm=True)[0])
        wait_for(lambda: service.status(migration_id).claim_epoch == 2)
        gate.release()
        owner.join()
        assert taking_over.join().status is Status.ROLLED_BACK
        assert raw_dump(service.engine) == before
    else:
        # The new owner's claim alone (its run would race the old owner for the same rows).
        migration_claims.claim_for_run(service.engine, migration_id, "elsewhere:1")
        taken_over = raw_dump(service.engine)
        gate.release()
        owner.join()
        assert raw_dump(service.engine) == taken_over
        assert service.status(migration_id).worker == "elsewhere:1"
        assert AuditOperation.MIGRATION_FAILED not in _operations(service, migration_id)
    assert AuditOperation.WORKER_FENCED in _operations(service, migration_id)


def test_a_stale_epoch_is_refused_inside_the_write_transaction(service: MigratorService) -> None:
    record = service.start(SMALL_BATCHES)
    with service.engine.begin() as connection:
        with pytest.raises(migration_claims.ClaimLost, match="taken over"):
            migration_claims.check_epoch(connection, record.id, record.claim_epoch - 1)
        with pytest.raises(migration_claims.ClaimLost):
            migration_claims.fenced_update(connection, record.id, record.claim_epoch + 1, error_message="x")
    assert service.status(record.id).error_message is None


@pytest.mark.parametrize("state", ["failed", "cancelled", "interrupted", "unverified"])
def test_backups_are_purged_only_from_a_verified_or_rolled_back_migration(
    service: MigratorService, monkeypatch: pytest.MonkeyPatch, state: str
) -> None:
    config = {**SMALL_BATCHES, "data_categories": ["DEMOGRAPHICS"]}
    with monkeypatch.context() as patched:
        if state == "unverified":
            record = service.start({**config, "skip_integrity_checks": True})
        else:
            fail_batches_after(patched, "demographics", committed=1)
            record = service.start(config)
    # The stopped states a worker leaves, set on the failed one (how it stopped is not the point).
    stopped = {
        "cancelled": {"status": Status.CANCELLED.value},
        "interrupted": {"status": Status.RUNNING.value, "heartbeat_at": utc_now() - timedelta(minutes=5)},
    }
    if state in stopped:
        with service.engine.begin() as connection:
            connection.execute(
                sa.update(migrations_table).where(migrations_table.c.id == record.id).values(**stopped[state])
            )
    status = service.status(record.id)
    assert status.status.value == ("completed" if state == "unverified" else state)
    backups = [table.backup_table for table in status.tables]
    assert all(backups)

    with pytest.raises(BadInput, match="kept|Nothing was dropped"):
        service.purge_backups(record.id, confirm=True)
    assert [table.backup_table for table in service.status(record.id).tables] == backups
    assert all(sa.inspect(service.engine).has_table(name) for name in backups if name)

    if state != "unverified":
        service.rollback(record.id, confirm=True)
        assert service.purge_backups(record.id, confirm=True) == backups


def test_backups_of_a_verified_migration_can_be_purged(service: MigratorService) -> None:
    record = service.start({**SMALL_BATCHES, "data_categories": ["DEMOGRAPHICS"]})
    assert record.verification_passed
    dropped = service.purge_backups(record.id, confirm=True)
    assert dropped and not any(sa.inspect(service.engine).has_table(name) for name in dropped)


def test_a_worker_does_not_run_a_migration_cancelled_before_it_came_up(service: MigratorService) -> None:
    """start --detach, then cancel before the worker took it: the worker must not run it; a
    resume (which withdraws the cancel) does."""
    from tui_migrator.common.migration_config import parse_config
    from tui_migrator.storage import migration_creation

    migration_id = migration_creation.create(
        service.engine,
        config=parse_config({**SMALL_BATCHES, "data_categories": ["DEMOGRAPHICS"]}),
        created_by="alice",
        tables=[("demographics", "DEMOGRAPHICS", 60)],
        skipped_records=0,
        estimated_seconds=None,
        warnings=[],
    )
    assert service.cancel(migration_id, "Wrong window", wait_seconds=0).status is Status.CANCELLED
    before = raw_dump(service.engine)
    with pytest.raises(BadInput, match="was cancelled before this worker took it"):
        service.run_migration(migration_id)
    assert raw_dump(service.engine) == before
    assert service.resume(migration_id).status is Status.COMPLETED
