"""Helpers shared by the engine tests: raw dumps, token checks, a patient runner."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from tui_migrator.common.errors import StateConflict
from tui_migrator.crypto.codec import encode_value
from tui_migrator.crypto.tokens import is_token
from tui_migrator.engine.verification import original_values
from tui_migrator.service.facade import MigratorService
from tui_migrator.storage.column_storage import reflect
from tui_migrator.storage.mapping import ResolvedMapping, Storage
from tui_migrator.storage.migration_records import MigrationRecord
from tui_migrator.storage.migration_status import Status
from tui_migrator.storage.tables import batch_log_table

# A small configuration that still runs several batches, two at a time.
FAST = {"batch_size": 40, "max_concurrency": 2}


def cancel_unless_completed(
    service: MigratorService, migration_id: str, reason: str, *, wait_seconds: float
) -> MigrationRecord:
    """Cancel a migration a test saw running, which may complete before the cancel reaches it:
    refused then (rightly: a completed migration cannot be cancelled), it must have completed."""
    try:
        return service.cancel(migration_id, reason, wait_seconds=wait_seconds)
    except StateConflict:
        record = service.status(migration_id)
        assert record.status is Status.COMPLETED, record.status
        return record


def raw_dump(engine: sa.Engine) -> dict[str, Any]:
    """Every user table's columns and rows, each value with its stored type, for byte-for-byte
    comparisons: ``{table: (columns, rows)}``, where a column's name is ``columns[i][1]`` and
    each row holds one cell per column whose first item is the value as the driver returns it."""
    if engine.dialect.name == "postgresql":
        return _raw_dump_postgresql(engine)
    return _raw_dump_sqlite(engine)


def _raw_dump_sqlite(engine: sa.Engine) -> dict[str, Any]:
    """Cells are (value, SQLite storage class): SQLite keeps any class in any column."""
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
                _cells(tuple(r), 2)
                for r in connection.exec_driver_sql(f'SELECT {selected} FROM "{name}" ORDER BY rowid')
            ]
            dump[name] = (info, rows)
    return dump


def _raw_dump_postgresql(engine: sa.Engine) -> dict[str, Any]:
    """Cells are (value, pg_typeof, the value's text in its own type): the text is what makes
    the comparison exact where Python equality is not (Decimal('1.10') == Decimal('1.1'), JSON
    spacing and key order, a timestamptz's instant), and the type catches a changed column."""
    dump: dict[str, Any] = {}
    with engine.connect() as connection:
        names = [
            name
            for (name,) in connection.exec_driver_sql(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name"
            )
            if not name.startswith("tm_")
        ]
        inspector = sa.inspect(connection)
        for name in names:
            info = [
                tuple(row)
                for row in connection.exec_driver_sql(
                    "SELECT ordinal_position, column_name, data_type, udt_name, is_nullable, "
                    "column_default, character_maximum_length, numeric_precision, numeric_scale, "
                    "datetime_precision FROM information_schema.columns "
                    "WHERE table_schema = current_schema() AND table_name = %(name)s "
                    "ORDER BY ordinal_position",
                    {"name": name},
                )
            ]
            columns = [row[1] for row in info]
            key = inspector.get_pk_constraint(name)["constrained_columns"] or columns
            selected = ", ".join(f'"{c}", pg_typeof("{c}")::text, "{c}"::text' for c in columns)
            # Qualified: each "c"::text output column is also named c.
            order = ", ".join(f'stored."{c}"' for c in key)
            rows = [
                _cells(tuple(r), 3)
                for r in connection.exec_driver_sql(
                    f'SELECT {selected} FROM "{name}" AS stored ORDER BY {order}'
                )
            ]
            dump[name] = (info, rows)
    return dump


def without_empty_companions(dump: dict[str, Any]) -> dict[str, Any]:
    """``dump`` (raw_dump's) without the companion columns (``<column>__tm_token``) that hold
    nothing: what a run that added them but changed no row leaves equal to the dump before it
    (batch processing adds them before its first batch; rollback drops them)."""
    trimmed: dict[str, Any] = {}
    for name, (info, rows) in dump.items():
        kept = [
            index
            for index, column in enumerate(info)
            if not (str(column[1]).endswith("__tm_token") and all(row[index][0] is None for row in rows))
        ]
        trimmed[name] = ([info[i] for i in kept], [tuple(row[i] for i in kept) for row in rows])
    return trimmed


# NaN is not equal to itself, so two dumps holding it would never compare equal. Every NaN is
# replaced by one shared object, which tuple comparison (identity first) finds equal to itself.
_FLOAT_NAN = float("nan")
_DECIMAL_NAN = Decimal("NaN")


def _cells(flat: tuple[Any, ...], width: int) -> tuple[tuple[Any, ...], ...]:
    values = tuple(_shared_nan(value) for value in flat)
    return tuple(values[i : i + width] for i in range(0, len(values), width))


def _shared_nan(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return _FLOAT_NAN
    if isinstance(value, Decimal) and value.is_nan():
        return _DECIMAL_NAN
    return value


def assert_fully_encrypted(
    service: MigratorService, mapping: ResolvedMapping, original: dict[str, Any]
) -> int:
    """No plaintext left in any mapped column, and every token opens to the original value,
    with its type (``original`` is a :func:`raw_dump` taken before the migration)."""
    checked = 0
    cipher = service.value_cipher()
    with service.engine.connect() as connection:
        for mapped in mapping.tables:
            access = reflect(connection, mapped)
            info, rows = original[mapped.name]
            columns = [row[1] for row in info]
            before = {tuple(r[columns.index(k)][0] for k in mapped.primary_key): r for r in rows}
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
                    cell = old[columns.index(column.name)]
                    # Values the tool moves as text (PostgreSQL JSON) open to the column's text.
                    expected = cell[2] if access.moves_as_text(column.name) else cell[0]
                    # Encoded, so a value's bits and type count and NaN equals NaN.
                    assert _encoded(value) == _encoded(expected), (mapped.name, key, column.name)
                    assert type(value) is type(expected), (mapped.name, key, column.name)
                checked += 1
    return checked


def _encoded(value: Any) -> bytes | None:
    return None if value is None else encode_value(value)


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


def worker_pid(record: MigrationRecord) -> int | None:
    """The process id of the migration's worker (its ``worker`` is ``host:pid``), if any."""
    return int(record.worker.rsplit(":", 1)[1]) if record.worker else None


def process_alive(pid: int) -> bool:
    """True while process ``pid`` runs (a child of ours that exited is reaped, not counted)."""
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
        if waited == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def rotate_every_key(service: MigratorService) -> None:
    """Rotate every organization's data key (where any exists): the rotation must complete,
    verified (every owning migration's digests checked again), with no failed row."""
    if not service.data_keys():
        return
    rotation = service.rotate_keys([], {"batch_size": 3})
    assert rotation.status is Status.COMPLETED, rotation.error_message
    assert rotation.verification is not None and rotation.verification["passed"], rotation.verification
    assert rotation.failed_records == 0, service.failed_records(rotation.id)


def batch_log_rows(service: MigratorService, migration_id: str) -> int:
    """Rows of every committed batch of the migration: a batch processed twice would count its
    rows twice."""
    with service.engine.connect() as connection:
        return int(
            connection.execute(
                sa.select(sa.func.coalesce(sa.func.sum(batch_log_table.c.rows), 0)).where(
                    batch_log_table.c.migration_id == migration_id
                )
            ).scalar_one()
        )


def exiting_at_once(*_args: object, **_options: object) -> subprocess.Popen[bytes]:
    """In place of ``detached.spawn``: a detached process that exits (code 3) before it could
    begin anything, as one refused its settings or master key does."""
    return subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
