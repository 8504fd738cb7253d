"""The end of a table's passes: a catch-up pass that finds no batch ends the table (no second
scan to count what it just saw), and the rows left are counted by the pending conditions alone."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests.support.databases import BOTH_BACKENDS
from tests.support.migration_helpers import FAST
from tui_migrator.engine import runner as runner_module
from tui_migrator.engine import table_pass
from tui_migrator.engine.scope import pending_count, pending_rows
from tui_migrator.service.facade import MigratorService
from tui_migrator.storage.column_storage import reflect
from tui_migrator.storage.migration_status import Status

pytestmark = BOTH_BACKENDS
MOTOR = {"data_categories": ["MOTOR_SYMPTOMS"], **FAST}


def test_a_catch_up_pass_that_finds_no_batch_ends_the_table_without_counting_it_again(
    service: MigratorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    passes: list[int] = []
    counts: list[str] = []
    real_run, real_has_work_left = table_pass.TablePass.run, runner_module.MigrationRunner._has_work_left

    async def run(self, start):  # type: ignore[no-untyped-def]
        found = await real_run(self, start)
        passes.append(found)
        return found

    def has_work_left(self, batches, *, retried):  # type: ignore[no-untyped-def]
        counts.append(batches.table_name)
        return real_has_work_left(self, batches, retried=retried)

    monkeypatch.setattr(table_pass.TablePass, "run", run)
    monkeypatch.setattr(runner_module.MigrationRunner, "_has_work_left", has_work_left)
    record = service.start(MOTOR)
    assert record.status is Status.COMPLETED and record.failed_records == 0
    assert passes[0] > 1
    if service.engine.dialect.name == "postgresql":
        # Claimed batches: the first catch-up pass always runs (it waits for other workers'
        # batches); it found nothing, so nothing was counted after it.
        assert passes == [passes[0], 0]
        assert counts == []
    else:
        # Keyset batches: the rows left are counted once, and none were.
        assert passes == [passes[0]]
        assert counts == ["motor_symptoms"]


def test_the_rows_left_are_counted_by_the_conditions_the_batches_read_them_by(
    service: MigratorService,
) -> None:
    with service.engine.connect() as connection:
        access = reflect(connection, service.mapping().table("motor_symptoms"))
        dialect = service.engine.dialect.name
        organizations = [
            row[0]
            for row in connection.execute(
                sa.select(access.table.c.organization_id).distinct().order_by(access.table.c.organization_id)
            )
        ]
        for scope in [None, (organizations[0],), tuple(organizations[1:])]:
            read = connection.execute(pending_rows(access, scope, dialect)).all()
            counted = connection.execute(pending_count(access, scope)).scalar_one()
            assert counted == len(read) > 0
    record = service.start(MOTOR)
    assert record.status is Status.COMPLETED
    with service.engine.connect() as connection:
        assert connection.execute(pending_count(access, None)).scalar_one() == 0
