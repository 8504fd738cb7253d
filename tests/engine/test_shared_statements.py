"""A statement the run's threads share is compiled by one of them at a time.

Two threads compiling one batch UPDATE at once killed a test process with a segmentation fault,
twice (2026-12-05 and 2026-12-07; README → Development). A `start` had been safe by chance: its
estimate sample compiled every table's statements first, in one thread (its temporary tables
have the table's name and columns, and SQLAlchemy's compiled cache is keyed by structure). A
start that reuses a fresh estimate takes no sample, and neither does a detached or a joined
worker's process: there the run's threads met the statements uncompiled."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.sql import elements

from tui_migrator.service.facade import MigratorService
from tui_migrator.storage.migration_status import Status

# One table, small batches, two batches in flight: two threads write the first batches at once.
CONFIG = {"batch_size": 5, "max_concurrency": 2, "data_categories": ["DEMOGRAPHICS"]}
# How long each compilation of an UPDATE is made to last: long enough that the second thread
# reaches its first UPDATE while the first is still compiling it, were they not kept apart.
COMPILING_SECONDS = 1.0


@pytest.mark.backends("postgresql")
def test_the_threads_first_claimed_update_is_compiled_once_by_one_thread(
    service: MigratorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    service.estimate(CONFIG)  # kept, so the start reuses it and takes no sample
    service.engine.clear_compiled_cache()
    compiling: dict[int, int] = {}  # statement id -> threads compiling it now
    overlaps: list[int] = []
    compiled: list[int] = []
    guard = threading.Lock()
    real = elements.ClauseElement._compiler

    def slow_compiler(self: elements.ClauseElement, *args: Any, **kwargs: Any) -> Any:
        # Called where the compiled cache has no entry: an UPDATE being compiled.
        if not isinstance(self, sa.Update):
            return real(self, *args, **kwargs)
        with guard:
            compiling[id(self)] = compiling.get(id(self), 0) + 1
            if compiling[id(self)] > 1:
                overlaps.append(id(self))
            compiled.append(id(self))
        try:
            time.sleep(COMPILING_SECONDS)
            return real(self, *args, **kwargs)
        finally:
            with guard:
                compiling[id(self)] -= 1

    monkeypatch.setattr(elements.ClauseElement, "_compiler", slow_compiler)
    record = service.start(CONFIG)
    assert record.status is Status.COMPLETED, record.error_message
    assert compiled, "no UPDATE was compiled during the run: the test saw nothing"
    assert not overlaps, "two threads compiled one UPDATE at once"
