"""A large rollback opens its tokens in worker processes (engine/rollback.py, engine/cpu_pool.py):
every value comes back byte for byte, type included, as without them, and tokens under any
generation of a key open (the workers hold every data key). A small rollback starts no worker.
A damaged token restored from the backup and a tampered backup refused are tested both in the
rollback's process and through workers (tests/engine/test_rollback_states.py)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import cast

import pytest
import sqlalchemy as sa

from tests.support.databases import BOTH_BACKENDS
from tests.support.migration_helpers import FAST, raw_dump
from tests.support.rollback_workers import PoolsSeen, rollbacks_in_workers
from tui_migrator.common.cores import usable_cores
from tui_migrator.crypto.ciphers import RowSealer
from tui_migrator.engine import rollback
from tui_migrator.engine.cpu_pool import processes_for
from tui_migrator.service.facade import MigratorService
from tui_migrator.storage.migration_records import MigrationRecord
from tui_migrator.storage.migration_status import Status
from tui_migrator.storage.tables import data_keys_table

pytestmark = BOTH_BACKENDS


@pytest.fixture
def with_workers(monkeypatch: pytest.MonkeyPatch) -> PoolsSeen:
    """Every rollback of the test opens its tokens in worker processes, and only there."""
    return rollbacks_in_workers(monkeypatch)


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

    rolled, result = service.rollback(record.id, confirm=True)

    assert rolled.status is Status.ROLLED_BACK
    assert (result.restored_rows, result.restored_from_backup) == (record.total_records, 0)
    assert result.unrecoverable == []
    assert raw_dump(service.engine) == before
    assert with_workers.sent[0] > 0


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
