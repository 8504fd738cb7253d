"""The backup stage's reads: each window of keys is read by whoever seals it (a worker process,
or the run's own with one batch at a time), and a transient database error there is retried
like any batch read instead of failing the migration."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from tests.support.databases import BOTH_BACKENDS
from tests.support.migration_helpers import FAST, raw_dump
from tui_migrator.engine import backup
from tui_migrator.service.facade import MigratorService
from tui_migrator.storage.migration_status import Status

pytestmark = BOTH_BACKENDS
DEMOGRAPHICS = {**FAST, "data_categories": ["DEMOGRAPHICS"]}


def test_a_lost_connection_while_reading_rows_to_back_up_is_retried(
    service: MigratorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = raw_dump(service.engine)
    fetch_dicts = backup.fetch_dicts
    failures = []

    def fails_once(connection: sa.Connection, query: Any) -> Any:
        if not failures:
            failures.append(query)
            raise sa.exc.OperationalError("SELECT …", {}, Exception("server closed the connection"))
        return fetch_dicts(connection, query)

    monkeypatch.setattr(backup, "fetch_dicts", fails_once)
    # One batch at a time: the copy's reads run in this process, where the read is patched.
    record = service.start({**DEMOGRAPHICS, "max_concurrency": 1})

    assert len(failures) == 1
    assert record.status is Status.COMPLETED and record.encrypted_records > 0
    service.rollback(record.id, confirm=True)
    assert raw_dump(service.engine) == before


def test_the_rows_backed_up_are_every_row_in_scope_read_in_windows_of_keys(
    service: MigratorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    windows: list[tuple[Any, Any]] = []
    copy_window = backup.copy_window

    def recorded(context: Any, access: Any, organizations: Any, retry: Any, first: Any, last: Any) -> Any:
        windows.append((first, last))
        return copy_window(context, access, organizations, retry, first, last)

    monkeypatch.setattr(backup, "copy_window", recorded)
    monkeypatch.setattr(backup, "BACKUP_COPY_ROWS", 7)
    record = service.start({**DEMOGRAPHICS, "max_concurrency": 1})

    assert record.status is Status.COMPLETED
    with service.engine.connect() as connection:
        keys = [row[0] for row in connection.execute(sa.text("SELECT id FROM demographics ORDER BY id"))]
    # Windows of 7 keys, each from its first to its last key, in order, none overlapping.
    assert windows == [((keys[i],), (keys[min(i + 6, len(keys) - 1)],)) for i in range(0, len(keys), 7)]
    table = next(table for table in record.tables if table.name == "demographics")
    assert table.backup_rows == len(keys)
