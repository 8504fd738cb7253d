"""A large rollback opens its tokens in worker processes (engine/rollback.py, engine/cpu_pool.py):
every value comes back byte for byte, type included, as without them; a token that no longer
opens is restored from the sealed backup there too (the workers hold the migration's backup
key), one whose backup is tampered with as well is refused with nothing written in its place,
and tokens under any generation of a key open (the workers hold every data key). A small
rollback starts no worker."""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any, cast

import pytest
import sqlalchemy as sa

from tests.support.databases import BOTH_BACKENDS
from tests.support.faults import tamper_contact_and_backup, tampered_token, with_row_from
from tests.support.migration_helpers import FAST, raw_dump
from tui_migrator.common.cores import usable_cores
from tui_migrator.crypto.ciphers import RowSealer, ValueCipher
from tui_migrator.engine import rollback
from tui_migrator.engine.cpu_pool import BatchContext, CpuPool, processes_for
from tui_migrator.engine.rollback import RollbackIncomplete
from tui_migrator.service.facade import MigratorService
from tui_migrator.storage.migration_records import MigrationRecord
from tui_migrator.storage.migration_status import Status
from tui_migrator.storage.tables import data_keys_table

pytestmark = BOTH_BACKENDS


class _NotHere:
    """A cipher for the rollback's own process that refuses to be used: a batch a worker could
    not open (a key it was not given) would fall back to this process and fail the test."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the rollback's own process used its cipher ({name}): a worker could not")


class PoolsSeen:
    """The pools rollbacks were given, and how many parts of batches each sent to a worker."""

    def __init__(self) -> None:
        self.pools: list[CpuPool] = []
        self.sent: list[int] = []


@pytest.fixture
def with_workers(monkeypatch: pytest.MonkeyPatch) -> PoolsSeen:
    """Every rollback, however small, opens its tokens in worker processes, and only there; what
    they were sent is counted here (in this process, where the parts are submitted)."""
    if processes_for(rollback.WORKERS_AT_MOST) == 0:
        pytest.skip("one core: a rollback has no worker processes")
    monkeypatch.setattr(rollback, "WORKERS_FROM_ROWS", 0)
    seen = PoolsSeen()
    made = rollback.pool_for

    def pool_for(record: MigrationRecord, cipher: Any, sealer: RowSealer) -> CpuPool:
        pool = made(record, cipher, sealer)
        pool.local = BatchContext(cast(ValueCipher, _NotHere()), pool.local.sealer)
        seen.pools.append(pool)
        seen.sent.append(0)
        submitted = pool._submitted
        index = len(seen.sent) - 1

        def counted(*args: Any) -> Any:
            seen.sent[index] += 1
            return submitted(*args)

        monkeypatch.setattr(pool, "_submitted", counted)
        return pool

    monkeypatch.setattr(rollback, "pool_for", pool_for)
    return seen


def assert_rolls_back_exactly(
    service: MigratorService, record: MigrationRecord, before: object, seen: PoolsSeen, *, from_backup: int
) -> None:
    """The rollback restores every row the migration sealed (``from_backup`` of them from their
    backup), leaves every user table as it was before the migration, and sent work to the workers."""
    rolled, result = service.rollback(record.id, confirm=True)
    assert rolled.status is Status.ROLLED_BACK
    assert (result.restored_rows, result.restored_from_backup) == (record.total_records, from_backup)
    assert result.unrecoverable == []
    assert raw_dump(service.engine) == before  # values, storage classes and columns
    assert seen.sent[-1] > 0


def test_a_rollback_in_worker_processes_restores_every_value_exactly(
    service: MigratorService, with_workers: PoolsSeen
) -> None:
    before = raw_dump(service.engine)
    record = service.start(FAST)
    assert record.status is Status.COMPLETED, record.error_message

    rolled, result = service.rollback(record.id, confirm=True)

    assert rolled.status is Status.ROLLED_BACK
    assert result.restored_rows == record.total_records
    assert (result.restored_from_backup, result.unrecoverable) == (0, [])
    assert raw_dump(service.engine) == before  # values, storage classes and columns
    (pool,) = with_workers.pools
    assert pool.processes == processes_for(rollback.WORKERS_AT_MOST) == min(4, usable_cores())
    # Every batch was split among the workers: at least one part per worker per table.
    assert with_workers.sent[0] >= pool.processes * len(record.tables)


def test_in_worker_processes_a_token_that_no_longer_opens_comes_back_from_the_backup(
    service: MigratorService, with_workers: PoolsSeen
) -> None:
    before = raw_dump(service.engine)
    record = service.start(FAST)
    with service.engine.begin() as connection:
        row_id, token = connection.exec_driver_sql(
            "SELECT id, last_name FROM demographics WHERE last_name IS NOT NULL ORDER BY id LIMIT 1"
        ).one()
        connection.execute(
            sa.text("UPDATE demographics SET last_name = :bad WHERE id = :id"),
            {"bad": tampered_token(token), "id": row_id},
        )

    assert_rolls_back_exactly(service, record, before, with_workers, from_backup=1)


def test_in_worker_processes_a_row_whose_token_and_backup_are_tampered_is_refused_alone(
    service: MigratorService, with_workers: PoolsSeen
) -> None:
    before = raw_dump(service.engine)
    record = service.start(FAST)
    backup_table = next(t.backup_table for t in record.tables if t.name == "emergency_contacts")
    assert backup_table is not None
    contact = tamper_contact_and_backup(service.engine, backup_table)
    tampered = raw_dump(service.engine)

    with pytest.raises(RollbackIncomplete, match=re.escape(contact.shown())) as refused:
        service.rollback(record.id, confirm=True)

    assert str(refused.value).startswith("1 row")
    key = {"patient_id": contact.patient, "contact_no": contact.contact}
    # Every other row restored exactly; the refused one keeps what it held.
    assert raw_dump(service.engine) == with_row_from(before, tampered, "emergency_contacts", key)
    assert service.status(record.id).can_rollback
    assert with_workers.sent[0] > 0


def test_in_worker_processes_tokens_under_an_older_and_a_newer_key_generation_open(
    service: MigratorService, with_workers: PoolsSeen
) -> None:
    before = raw_dump(service.engine)
    record = service.start(FAST)
    with service.engine.connect() as connection:
        organizations = sorted(
            connection.execute(sa.select(data_keys_table.c.organization_id).distinct()).scalars()
        )
    assert len(organizations) > 1
    # One organization's tokens move to a second generation; the others stay under the first.
    rotation = service.rotate_keys(organizations[:1], {"batch_size": 40, "max_concurrency": 1})
    assert rotation.status is Status.COMPLETED, rotation.error_message

    assert_rolls_back_exactly(service, record, before, with_workers, from_backup=0)


def test_a_small_rollback_starts_no_worker_and_a_large_one_one_per_core_up_to_four(
    service: MigratorService,
) -> None:
    cipher = service._session.value_cipher()
    sealer = RowSealer(service._session.master_key, "migration_any")

    def sealed(rows: int) -> MigrationRecord:
        return cast(MigrationRecord, SimpleNamespace(encrypted_records=rows))

    with rollback.pool_for(sealed(rollback.WORKERS_FROM_ROWS - 1), cipher, sealer) as small:
        assert small.processes == 0
    with rollback.pool_for(sealed(rollback.WORKERS_FROM_ROWS), cipher, sealer) as large:
        assert large.processes == min(rollback.WORKERS_AT_MOST, usable_cores())
