"""A statement the run's threads share is compiled by one of them at a time.

Two threads compiling one batch UPDATE at once killed a test process with a segmentation fault,
twice (2026-12-05 and 2026-12-07; README → Development). A `start` had been safe by chance: its
estimate sample compiled every table's statements first, in one thread (its temporary tables
have the table's name and columns, and SQLAlchemy's compiled cache is keyed by structure). A
start that reuses a fresh estimate takes no sample, and neither does a detached or a joined
worker's process: there the run's threads met the statements uncompiled. The same holds for the
statements of the paths a batch takes only now and then (a row the database refuses, a failed
row recorded): the first batch to take each goes alone (engine/first_batch.py)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.sql import elements

from tui_migrator.service.facade import MigratorService
from tui_migrator.storage.migration_status import Status

# One table, small batches, two batches in flight: two threads write the first batches at once.
CONFIG = {"batch_size": 5, "max_concurrency": 2, "data_categories": ["DEMOGRAPHICS"]}
# How long each compilation of a statement it watches is made to last: long enough that the
# second thread reaches the statement while the first is still compiling it, were they not kept
# apart.
COMPILING_SECONDS = 1.0


@dataclass
class Compilations:
    """Who compiles what, while each compilation of the statements watched lasts a second."""

    compiling: dict[int, int] = field(default_factory=dict)  # statement id -> threads at it now
    overlaps: list[str] = field(default_factory=list)
    compiled: list[str] = field(default_factory=list)
    guard: threading.Lock = field(default_factory=threading.Lock)


@pytest.fixture
def slow_compilations(monkeypatch: pytest.MonkeyPatch) -> Iterator[Compilations]:
    """Every UPDATE, and every INSERT into the failed rows, compiled in a second; the compiled
    cache (where the run finds a statement compiled before) is never consulted past it."""
    seen = Compilations()
    real = elements.ClauseElement._compiler

    def watched(statement: elements.ClauseElement) -> str | None:
        if isinstance(statement, sa.Update):
            return f"UPDATE {statement.table}"
        if isinstance(statement, sa.Insert) and str(statement.table) == "tm_failed_records":
            return "INSERT INTO tm_failed_records"
        return None

    def slow_compiler(self: elements.ClauseElement, *args: Any, **kwargs: Any) -> Any:
        # Called where the compiled cache has no entry: the statement is being compiled.
        name = watched(self)
        if name is None:
            return real(self, *args, **kwargs)
        with seen.guard:
            seen.compiling[id(self)] = seen.compiling.get(id(self), 0) + 1
            if seen.compiling[id(self)] > 1:
                seen.overlaps.append(name)
            seen.compiled.append(name)
        try:
            time.sleep(COMPILING_SECONDS)
            return real(self, *args, **kwargs)
        finally:
            with seen.guard:
                seen.compiling[id(self)] -= 1

    monkeypatch.setattr(elements.ClauseElement, "_compiler", slow_compiler)
    yield seen


@pytest.mark.backends("postgresql")
def test_the_threads_first_claimed_update_is_compiled_once_by_one_thread(
    service: MigratorService, slow_compilations: Compilations
) -> None:
    service.estimate(CONFIG)  # kept, so the start reuses it and takes no sample
    service.engine.clear_compiled_cache()
    record = service.start(CONFIG)
    assert record.status is Status.COMPLETED, record.error_message
    assert slow_compilations.compiled, "no UPDATE was compiled during the run: the test saw nothing"
    assert not slow_compilations.overlaps, f"two threads compiled at once: {slow_compilations.overlaps}"


@pytest.mark.backends("postgresql")
def test_two_batches_meeting_refused_rows_at_once_compile_their_statements_one_at_a_time(
    service: MigratorService, slow_compilations: Compilations
) -> None:
    """The first batch writes every row; the next two, in flight together, each hold a row the
    database refuses: both go row by row (an UPDATE no batch ran before) and record a failed
    row (an INSERT none ran before)."""
    with service.engine.begin() as connection:
        ids = connection.exec_driver_sql("SELECT id FROM demographics ORDER BY id").scalars().all()
        refused = (ids[5], ids[10])  # the first row of the second and of the third batch
        connection.exec_driver_sql(
            "CREATE FUNCTION refuse_row() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "RAISE EXCEPTION 'this record is locked for review'; END $$"
        )
        connection.exec_driver_sql(
            "CREATE TRIGGER refuse_row BEFORE UPDATE ON demographics FOR EACH ROW "
            f"WHEN (OLD.id IN ({refused[0]}, {refused[1]})) EXECUTE FUNCTION refuse_row()"
        )
    service.estimate(CONFIG)
    service.engine.clear_compiled_cache()
    record = service.start(CONFIG)
    assert record.status is Status.COMPLETED, record.error_message
    failed = {item["key_display"] for item in service.failed_records(record.id)}
    assert failed == {str(refused[0]), str(refused[1])}
    # Each path's statements were compiled during the run, by one thread at a time.
    assert "INSERT INTO tm_failed_records" in slow_compilations.compiled
    assert slow_compilations.compiled.count("UPDATE demographics") >= 2  # the batch's and a row's
    assert not slow_compilations.overlaps, f"two threads compiled at once: {slow_compilations.overlaps}"
