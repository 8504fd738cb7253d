"""A run builds the statements it repeats for every batch and window once, not once a batch:
building one with SQLAlchemy cost more than running it (storage/built_statements.py)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from tests.support.migration_helpers import FAST
from tui_migrator.engine import backup, verification
from tui_migrator.engine.batches import TableBatches
from tui_migrator.service.facade import MigratorService
from tui_migrator.storage.column_storage import TableAccess
from tui_migrator.storage.migration_status import Status
from tui_migrator.storage.tables import batch_log_table

SMALL_BATCHES = {**FAST, "data_categories": ["DEMOGRAPHICS"], "batch_size": 2, "max_concurrency": 1}
# Windows of keys of the verification and of the backups' read-back, small enough for many.
SMALL_WINDOWS = 3


def test_a_run_builds_its_repeated_statements_once_not_once_a_batch(
    service: MigratorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: Counter[str] = Counter()

    def counted(owner: type, name: str) -> None:
        original: Callable[..., Any] = getattr(owner, name)

        def counting(*args: Any, **kwargs: Any) -> Any:
            built[name] += 1
            return original(*args, **kwargs)

        monkeypatch.setattr(owner, name, counting)

    monkeypatch.setattr(verification, "BATCH", SMALL_WINDOWS)
    monkeypatch.setattr(backup, "READ_BACK_ROWS", SMALL_WINDOWS)
    # What builds a batch's read, a window of keys and a window's read.
    counted(TableBatches, "pending_query")
    counted(TableAccess, "select_keys")
    counted(TableAccess, "key_range")

    record = service.start(SMALL_BATCHES)

    assert record.status is Status.COMPLETED
    with service.engine.connect() as connection:
        batches = connection.execute(
            sa.select(sa.func.count())
            .select_from(batch_log_table)
            .where(batch_log_table.c.migration_id == record.id)
        ).scalar_one()
    assert batches >= 20  # and as many windows of each kind
    # Per shape of statement (the first batch, the next ones, a catch-up pass; the estimate's
    # calibration builds its own), never per batch.
    assert built["pending_query"] <= 6, built
    assert built["select_keys"] <= 4, built
    assert built["key_range"] <= 6, built
