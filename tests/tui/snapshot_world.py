"""A deterministic world for the snapshot tests and the README screenshots.

Everything the screens show must be the same on every run and every machine, so this module
fixes what would otherwise vary:

- the clock: `store.utc_now` and the audit trail's timestamps read a frozen clock that the
  builder moves by hand between steps;
- the local time zone (Europe/Madrid, so the screens show local rather than UTC time);
- the paths: the database lives in a fixed scratch directory, whose URL the header shows;
- the master key: a fixed test key, so audit proofs and fingerprints repeat;
- the data key ids: numbered in the order the keys are made (the runner makes them in sorted
  organization order), so the keys screen shows the same ids;
- measurements: free disk space, the database's size (the sweeps after each migration compact
  the file, and how much of the last writes a checkpoint has copied into it varies by a few
  pages), the estimate's per-row timings and the rate its probe sweeps a file at, and, after
  each migration ran for real, its measured rate and phase durations are replaced by fixed,
  typical figures.

The data itself comes from the seeded demo generator; the migrations run through the real engine.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import itertools
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import sqlalchemy as sa

from tui_migrator.common.settings import ENV_MASTER_KEY, Settings
from tui_migrator.crypto.codec import UnsupportedValue
from tui_migrator.engine import batches, estimate, runner, sweep_forecast
from tui_migrator.service import health, planning
from tui_migrator.service.facade import MigratorService, create_demo_service
from tui_migrator.storage import keyring, sqlite_library
from tui_migrator.storage.migration_records import MigrationRecord
from tui_migrator.storage.tables import migrations_table

# Not tempfile.gettempdir(): a TMPDIR would change the path, which the header shows.
ROOT = Path("/tmp/tui-migrator-snapshots")
TIME_ZONE = "Europe/Madrid"
OPERATOR = "operator"
# A published test key: it protects nothing but this throwaway demo database.
TEST_MASTER_KEY = base64.b64encode(bytes(range(32))).decode("ascii")
DEMO = {"patients": 300, "organizations": 3, "seed": 7}

SETUP_AT = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)

# Typical figures measured on the demo data, standing in for this run's own measurements.
MICROSECONDS_PER_ROW = {
    "read": 20.0,
    # Each batch seals its rows' backups with their values and writes them with its tokens.
    "encrypt": 85.0,
    "write": 55.0,
    "backupVerify": 25.0,
    "verify": 35.0,
}
COMMIT_SECONDS = 0.002
SCAN_SECONDS = 0.2
# A sweep's rate as this machine's probe measures it, about (engine/sweep_forecast.py).
SWEEP_RATE = sweep_forecast.SweepRate(0.002, 140e6, 240e6)
FREE_DISK = health.DiskSpace(
    free_bytes=180 * 2**30, total_bytes=250 * 2**30, database_bytes=3 * 2**20, checked_path=str(ROOT)
)


class FrozenClock:
    """Now is whatever the builder last set; nothing moves on its own."""

    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def set(self, moment: datetime) -> None:
        self.moment = moment

    def datetime_class(self) -> type[datetime]:
        clock = self

        class FrozenDateTime(datetime):
            @classmethod
            def now(cls, tz: Any = None) -> datetime:  # type: ignore[override]
                return clock.moment.astimezone(tz) if tz is not None else clock.moment.replace(tzinfo=None)

        return FrozenDateTime


def _fixed_calibration(real: Any) -> Any:
    def calibrate(*args: Any, **kwargs: Any) -> estimate.Calibration:
        measured = real(*args, **kwargs)
        measured.seconds_by_stage = {
            stage: measured.sample_rows * MICROSECONDS_PER_ROW.get(stage, 10.0) / 1e6
            for stage in measured.seconds_by_stage
        }
        # Per row only: a measured cost per batch would move the screens' estimates.
        measured.batch_seconds_by_stage = {}
        measured.commit_seconds = COMMIT_SECONDS
        measured.fixed_seconds = SCAN_SECONDS
        # Measured on the machine too (the size samples, the write probe): left out.
        measured.size_sample_seconds = 0.0
        measured.written_byte_seconds = 0.0
        return measured

    return calibrate


def _numbered_key_ids() -> Callable[[], str]:
    """Data key ids that look like real ones and are the same in every world built."""
    numbers = itertools.count(1)
    return lambda: "dek_" + hashlib.sha256(f"snapshot data key {next(numbers)}".encode()).hexdigest()[:16]


@contextmanager
def frozen(clock: FrozenClock) -> Iterator[None]:
    """The clock, time zone, disk, timings and SQLite library fixed for as long as the block runs."""
    frozen_datetime = clock.datetime_class()
    previous_tz = os.environ.get("TZ")
    with ExitStack() as stack:
        stack.enter_context(mock.patch("tui_migrator.storage.tables.datetime", frozen_datetime))
        stack.enter_context(mock.patch("tui_migrator.storage.audit.datetime", frozen_datetime))
        stack.enter_context(mock.patch.object(health, "measure_disk", lambda *_args: FREE_DISK))
        stack.enter_context(
            mock.patch.object(planning, "database_size_bytes", lambda _engine: FREE_DISK.database_bytes)
        )
        stack.enter_context(mock.patch.object(estimate, "calibrate", _fixed_calibration(estimate.calibrate)))
        stack.enter_context(
            mock.patch.object(sweep_forecast, "probe_sweep_rate", lambda _directory: SWEEP_RATE)
        )
        stack.enter_context(mock.patch.object(keyring, "new_key_id", _numbered_key_ids()))
        # The machine's SQLite library decides whether health names its WAL-reset bug: a fixed
        # one here, so the pictures are the same on every machine.
        stack.enter_context(
            mock.patch.object(sqlite_library, "linked_version", lambda: sqlite_library.WAL_RESET_BUG_FIXED)
        )
        os.environ["TZ"] = TIME_ZONE
        time.tzset()
        try:
            yield
        finally:
            if previous_tz is None:
                os.environ.pop("TZ", None)
            else:
                os.environ["TZ"] = previous_tz
            time.tzset()


VIEWER = "vic"
_built = False


@dataclass(frozen=True)
class World:
    service: MigratorService
    completed: str
    with_failures: str
    dry_run: str
    rolled_back: str
    # Stopped part-way, each in its own way (the world holds still, so "running" is a worker
    # that stopped at the frozen now: its heartbeat is fresh, as a live worker's is).
    failed: str
    interrupted: str
    cancelled: str
    paused: str
    running: str

    @contextmanager
    def opened_as(self, user: str, *, readonly: bool = False) -> Iterator[MigratorService]:
        """The same database seen by another operator, or through --readonly."""
        with MigratorService.open(settings(readonly=readonly), user=user) as service:
            yield service


def settings(*, readonly: bool = False) -> Settings:
    return Settings.resolve(
        {"data_dir": ROOT / "data", "database_url": f"sqlite:///{ROOT / 'parkml.db'}", "readonly": readonly},
        environ={ENV_MASTER_KEY: TEST_MASTER_KEY},
    )


@contextmanager
def world() -> Iterator[World]:
    """Build the world from scratch (about two seconds) and keep it frozen while in use."""
    global _built
    if _built:
        raise RuntimeError("One world at a time: a second would delete the first one's database.")
    with _exclusive_use_of_root():
        _built = True
        try:
            yield from _built_world()
        finally:
            _built = False


@contextmanager
def _exclusive_use_of_root() -> Iterator[None]:
    """Another process (an xdist worker, a second test run, the screenshot script) waits until
    this one is done with ROOT: the world's path is fixed, since the header shows it."""
    with open(ROOT.with_name(ROOT.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _built_world() -> Iterator[World]:
    shutil.rmtree(ROOT, ignore_errors=True)
    ROOT.mkdir(parents=True)
    clock = FrozenClock(SETUP_AT)
    try:
        with frozen(clock):
            service, _summary = create_demo_service(settings(), user=OPERATOR, **DEMO)
            with service:
                yield _populate(service, clock)
    finally:
        shutil.rmtree(ROOT, ignore_errors=True)


def _populate(service: MigratorService, clock: FrozenClock) -> World:
    clock.set(SETUP_AT + timedelta(minutes=5))
    service.grant(VIEWER, "viewer")
    clock.set(NOW - timedelta(hours=3))
    completed = _run(service, clock, {"batch_size": 200, "data_categories": ["DEMOGRAPHICS"]}, 42)

    clock.set(NOW - timedelta(hours=2, minutes=20))
    # Sealed in this process (no worker processes), where the patched seal_row is.
    with (
        mock.patch.object(batches, "seal_row", _failing_for(("motor_symptoms", {5, 9}))),
        mock.patch.object(runner, "migration_processes", lambda _max_concurrency, _rows: 0),
    ):
        with_failures = _run(service, clock, {"batch_size": 100, "data_categories": ["MOTOR_SYMPTOMS"]}, 95)

    clock.set(NOW - timedelta(hours=1, minutes=5))
    dry_run = _run(service, clock, {"batch_size": 500, "dry_run": True}, 18)

    clock.set(NOW - timedelta(minutes=40))
    rolled_back = _run(service, clock, {"batch_size": 250, "data_categories": ["MEDICATION_DATA"]}, 27)
    clock.set(NOW - timedelta(minutes=25))
    service.rollback(rolled_back, confirm=True)
    _fix_measurements(service, rolled_back, clock.moment, 27, rollback_seconds=6.0)

    clock.set(NOW - timedelta(minutes=22))
    with mock.patch.object(batches.TableBatches, "write_in", _stopping_after(2, _database_error)):
        failed = _start_and_stop(service, {"data_categories": ["EMERGENCY_CONTACTS"]})
    _fix_midway(service, failed, clock.moment, 50, ended=True)

    clock.set(NOW - timedelta(minutes=18))
    interrupted = _killed_midway(service, "AUTONOMIC_SYMPTOMS", batches_done=1)
    _fix_midway(service, interrupted, clock.moment, 35)

    clock.set(NOW - timedelta(minutes=14))
    cancelled = _killed_midway(service, "NON_MOTOR_SYMPTOMS", batches_done=2)
    _fix_midway(service, cancelled, clock.moment, 30)
    clock.set(NOW - timedelta(minutes=13))
    service.cancel(cancelled, "Emergency maintenance on the database host", wait_seconds=0)

    clock.set(NOW - timedelta(minutes=9))
    paused = _killed_midway(service, "SAFETY_INCIDENTS", batches_done=1)
    _fix_midway(service, paused, clock.moment, 20, heartbeat_at=NOW)
    _set(service, paused, status="paused", pause_requested=True)

    clock.set(NOW - timedelta(minutes=4))
    running = _killed_midway(service, "DAILY_ACTIVITIES", batches_done=3)
    _fix_midway(service, running, clock.moment, 240, heartbeat_at=NOW)

    clock.set(NOW)
    return World(
        service,
        completed,
        with_failures,
        dry_run,
        rolled_back,
        failed,
        interrupted,
        cancelled,
        paused,
        running,
    )


TYPICAL_MIDWAY_RATE = 12.5


class _WorkerKilled(BaseException):
    """Stands for a SIGKILL: nothing in the engine catches it, so the record stays as the worker
    left it (stored status running, the last heartbeat)."""


def _database_error() -> BaseException:
    return sa.exc.ProgrammingError("UPDATE", {}, Exception("permission denied for table emergency_contacts"))


def _stopping_after(committed: int, error: Any) -> Any:
    """TableBatches.write_in that lets ``committed`` batches through, then raises ``error()``."""
    real = batches.TableBatches.write_in
    written = {"batches": 0}

    def write_in(self: batches.TableBatches, connection: Any, *args: Any, **kwargs: Any) -> None:
        real(self, connection, *args, **kwargs)
        if self.migration_id == "calibration":
            return
        written["batches"] += 1
        if written["batches"] > committed:
            raise error()

    return write_in


def _start_and_stop(service: MigratorService, config: dict[str, Any]) -> str:
    """Start a migration of small batches, one at a time, that a fault stops; its id."""
    with suppress(_WorkerKilled):
        service.start({"batch_size": 10, "max_concurrency": 1, **config})
    latest = service.list_migrations(limit=1)[0]
    return latest[0].id


def _killed_midway(service: MigratorService, category: str, *, batches_done: int) -> str:
    with mock.patch.object(batches.TableBatches, "write_in", _stopping_after(batches_done, _WorkerKilled)):
        return _start_and_stop(service, {"data_categories": [category]})


def _fix_midway(
    service: MigratorService,
    migration_id: str,
    started: datetime,
    seconds: float,
    *,
    ended: bool = False,
    heartbeat_at: datetime | None = None,
) -> None:
    """Fixed figures for a migration that stopped part-way (see _fix_measurements)."""
    record: MigrationRecord = service.status(migration_id)
    values: dict[str, Any] = {
        "started_at": started,
        "heartbeat_at": heartbeat_at or started + timedelta(seconds=seconds),
        # A typical rate for small batches one at a time, and an estimate it keeps up with.
        "rate_per_second": TYPICAL_MIDWAY_RATE,
        "phase_seconds": json.dumps(dict.fromkeys(record.phase_seconds, 1.0)),
        "worker": f"db-host:{4100 + len(migration_id)}",
        "estimated_seconds": round(record.total_records / TYPICAL_MIDWAY_RATE, 1),
    }
    if ended:
        values["completed_at"] = started + timedelta(seconds=seconds)
    _set(service, migration_id, **values)


def _set(service: MigratorService, migration_id: str, **values: Any) -> None:
    with service.engine.begin() as connection:
        connection.execute(
            sa.update(migrations_table).where(migrations_table.c.id == migration_id).values(**values)
        )


def _run(service: MigratorService, clock: FrozenClock, config: dict[str, Any], seconds: float) -> str:
    started = clock.moment
    record = service.start(config)
    _fix_measurements(service, record.id, started, seconds)
    clock.set(started + timedelta(seconds=seconds))
    return record.id


def _failing_for(where: tuple[str, set[int]]) -> Any:
    table, ids = where
    real_seal = batches.seal_row

    def seal(access: Any, row: Any, cipher: Any) -> Any:
        if access.mapped.name == table and row["id"] in ids:
            raise UnsupportedValue("values of type Exotic cannot be encrypted exactly")
        return real_seal(access, row, cipher)

    return seal


def _fix_measurements(
    service: MigratorService,
    migration_id: str,
    started: datetime,
    seconds: float,
    *,
    rollback_seconds: float | None = None,
) -> None:
    """Replace what this run measured (rate, durations) with fixed figures; counts stay real."""
    record: MigrationRecord = service.status(migration_id)
    phases = dict.fromkeys(record.phase_seconds, round(seconds / max(1, len(record.phase_seconds)), 1))
    values: dict[str, Any] = {
        "started_at": started,
        "completed_at": started + timedelta(seconds=seconds),
        "heartbeat_at": started + timedelta(seconds=seconds),
        "rate_per_second": round(record.processed_records / seconds, 1),
        "phase_seconds": json.dumps(phases),
        "worker": f"db-host:{4100 + len(migration_id)}",
    }
    if rollback_seconds is not None:
        values["rollback_seconds"] = rollback_seconds
    with service.engine.begin() as connection:
        connection.execute(
            sa.update(migrations_table).where(migrations_table.c.id == migration_id).values(**values)
        )
