"""Rollbacks through worker processes, for tests: every rollback, however small, opens its
tokens in workers and only there (engine/rollback.py's pool), and what they were sent is
counted."""

from __future__ import annotations

from typing import Any, cast

import pytest

from tui_migrator.crypto.ciphers import RowSealer, ValueCipher
from tui_migrator.engine import rollback
from tui_migrator.engine.cpu_pool import BatchContext, CpuPool, processes_for
from tui_migrator.storage.migration_records import MigrationRecord


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


def rollbacks_in_workers(monkeypatch: pytest.MonkeyPatch) -> PoolsSeen:
    """Make every rollback from now on open its tokens in worker processes only (skips the test
    on one core, where a rollback has none); what they were sent is counted in the result (in
    this process, where the parts are submitted)."""
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


def assert_opened_where_asked(opened_in: PoolsSeen | None) -> None:
    """The rollbacks of a test given ``opened_in`` (tests/engine/conftest.py) opened their
    tokens where it asked: in worker processes, every pool having sent them something."""
    assert opened_in is None or (opened_in.sent and all(opened_in.sent))
