"""Helpers shared by the engine tests: raw dumps, token checks, a patient runner."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from tui_migrator.column_storage import reflect
from tui_migrator.mapping import ResolvedMapping, Storage
from tui_migrator.migrations import MigrationRecord, Status
from tui_migrator.service import MigratorService
from tui_migrator.tokens import is_token
from tui_migrator.verification import original_values


def raw_dump(engine: sa.Engine) -> dict[str, Any]:
    """Every user table's schema and rows with each value's SQLite storage class."""
    dump: dict[str, Any] = {}
    with engine.connect() as connection:
        names = [
            name
            for (name,) in connection.exec_driver_sql(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
            )
            if not name.startswith("tm_")
        ]
        for name in names:
            info = [tuple(row) for row in connection.exec_driver_sql(f'PRAGMA table_info("{name}")')]
            columns = [row[1] for row in info]
            selected = ", ".join(f'"{c}", typeof("{c}")' for c in columns)
            rows = [
                tuple(r)
                for r in connection.exec_driver_sql(f'SELECT {selected} FROM "{name}" ORDER BY rowid')
            ]
            dump[name] = (info, rows)
    return dump


def assert_fully_encrypted(
    service: MigratorService, mapping: ResolvedMapping, original: dict[str, Any]
) -> int:
    """No plaintext left in any mapped column, and every token opens to the original value."""
    checked = 0
    cipher = service.value_cipher()
    with service.engine.connect() as connection:
        for mapped in mapping.tables:
            access = reflect(connection, mapped)
            info, rows = original[mapped.name]
            columns = [row[1] for row in info]
            before = {tuple(r[2 * columns.index(k)] for k in mapped.primary_key): r for r in rows}
            for row in connection.execute(access.select_rows()).mappings():
                for column in mapped.columns:
                    if column.storage is Storage.IN_PLACE:
                        assert row[column.name] is None or is_token(row[column.name]), (
                            mapped.name,
                            column.name,
                        )
                    else:
                        assert row[column.name] is None, (mapped.name, column.name)
                        assert row[column.companion] is None or is_token(row[column.companion])
                values = original_values(access, row, cipher)
                key = tuple(row[k] for k in mapped.primary_key)
                old = before[key]
                for column, value in zip(mapped.columns, values, strict=True):
                    assert value == old[2 * columns.index(column.name)], (mapped.name, key, column.name)
                    assert type(value) is type(old[2 * columns.index(column.name)])
                checked += 1
    return checked


def wait_for(predicate: Callable[[], bool], timeout: float = 30.0, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError("condition not reached in time")


class Background:
    """Runs a blocking call in a thread and keeps its result or exception."""

    def __init__(self, call: Callable[[], MigrationRecord]) -> None:
        self.result: MigrationRecord | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(call,), daemon=True)
        self.thread.start()

    def _run(self, call: Callable[[], MigrationRecord]) -> None:
        try:
            self.result = call()
        except BaseException as error:
            self.error = error

    def join(self, timeout: float = 60.0) -> MigrationRecord:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "migration did not finish"
        if self.error:
            raise self.error
        assert self.result is not None
        return self.result


def latest(service: MigratorService) -> MigrationRecord | None:
    records, _ = service.list_migrations(limit=1)
    return records[0] if records else None


def latest_is(service: MigratorService, predicate: Callable[[MigrationRecord], bool]) -> Callable[[], bool]:
    """For wait_for: the newest migration exists and satisfies ``predicate``."""

    def check() -> bool:
        record = latest(service)
        return record is not None and predicate(record)

    return check


TERMINAL = (Status.COMPLETED, Status.FAILED, Status.CANCELLED)
