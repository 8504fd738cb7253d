"""PostgreSQL in operation: several workers share one migration, the server restarts in the
middle of one, stays down past the retry budget, and other sessions keep reading meanwhile.

Every test ends by proving nothing was lost or encrypted twice: the batch log's rows add up
to exactly the rows encrypted, verification passes, every token opens to the original value,
and a rollback restores the database byte for byte, types included.
"""

from __future__ import annotations

import json
import logging
import os
import pwd
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.support.databases import (
    PostgresTemplate,
    build_pg_template,
    fresh_postgres_database,
    make_settings,
)
from tests.support.migration_helpers import (
    Background,
    assert_fully_encrypted,
    batch_log_rows,
    cancel_unless_completed,
    raw_dump,
    wait_for,
)
from tests.support.postgres_cluster import PostgresCluster
from tui_migrator.common.errors import BadInput
from tui_migrator.common.settings import Settings
from tui_migrator.engine import rollback as rollback_engine
from tui_migrator.engine.retry import RetryPolicy
from tui_migrator.service.facade import MigratorService, create_demo_service
from tui_migrator.service.workers import workers_of
from tui_migrator.storage import rollback_progress
from tui_migrator.storage.mapping import COMPANION_SUFFIX
from tui_migrator.storage.migration_records import MigrationRecord
from tui_migrator.storage.migration_status import Phase, Status

pytestmark = [pytest.mark.backends("postgresql"), pytest.mark.postgresql]

REAL_USER = pwd.getpwuid(os.geteuid()).pw_name
# Enough rows for a few hundred small batches, so a second worker has work to share.
PATIENTS = 1500


@pytest.fixture(scope="module")
def large_pg_template(
    postgres_cluster: PostgresCluster, tmp_path_factory: pytest.TempPathFactory
) -> PostgresTemplate:
    return build_pg_template(
        postgres_cluster,
        tmp_path_factory,
        "large_template",
        lambda settings: create_demo_service(
            settings, patients=PATIENTS, organizations=3, seed=23, user=REAL_USER
        )[0],
    )


@pytest.fixture
def large(
    backend: str, large_pg_template: PostgresTemplate, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Settings, MigratorService]]:
    # In-process calls act as the real user, like the worker processes these tests start.
    monkeypatch.setattr("tui_migrator.storage.operators.current_os_user", lambda: REAL_USER)
    shutil.copytree(large_pg_template.root / "data", tmp_path / "data")
    with fresh_postgres_database(large_pg_template.cluster, large_pg_template.database) as url:
        settings = make_settings(tmp_path, database_url=url)
        with MigratorService.open(settings, user=REAL_USER) as service:
            yield settings, service


def assert_exact_and_reversible(service: MigratorService, record: MigrationRecord, before: Any) -> None:
    assert record.status is Status.COMPLETED, record.error_message
    assert record.failed_records == 0
    assert record.encrypted_records == record.total_records
    assert batch_log_rows(service, record.id) == record.total_records
    assert record.verification is not None and record.verification["passed"]
    assert assert_fully_encrypted(service, service.mapping(), before) > 0
    service.rollback(record.id, confirm=True)
    assert raw_dump(service.engine) == before


def cli(settings: Settings, *arguments: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "tui_migrator",
        "--db",
        settings.effective_database_url,
        "--data-dir",
        str(settings.data_dir),
        *arguments,
    ]


def join_and_then(
    settings: Settings,
    service: MigratorService,
    migration_id: str,
    then: Callable[[subprocess.Popen[str]], object],
) -> tuple[int, str, str]:
    """Start ``worker ID`` for the migration, wait until it has joined (its audit entry), do
    ``then`` with it, and wait for it to end: its exit code, stdout and stderr."""
    joiner = subprocess.Popen(
        cli(settings, "--json", "worker", migration_id),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        def has_joined() -> bool:
            entries = service.audit_entries(limit=None, migration_id=migration_id).entries
            return any(entry.operation == "worker_joined" for entry in entries)

        wait_for(lambda: has_joined() or joiner.poll() is not None, timeout=120, interval=0.05)
        if not has_joined():
            # It ended without joining: why, rather than a wait running out.
            stdout, stderr = joiner.communicate()
            raise AssertionError(
                f"worker {migration_id} ended ({joiner.returncode}) without joining, the migration "
                f"{service.status(migration_id).status}: {stdout[-2000:]} {stderr[-2000:]}"
            )
        then(joiner)
        stdout, stderr = joiner.communicate(timeout=300)
    finally:
        if joiner.poll() is None:
            joiner.kill()
            joiner.wait()
    return joiner.returncode, stdout, stderr


def test_a_second_worker_joins_and_the_two_share_the_batches(large: tuple[Settings, MigratorService]) -> None:
    settings, service = large
    before = raw_dump(service.engine)
    record = service.start({"batch_size": 20, "max_concurrency": 1}, detach=True)
    wait_for(lambda: service.status(record.id).phase == Phase.BATCH_PROCESSING.value, timeout=60)
    # Held until the second worker is in: on a busy machine the owner had finished every batch
    # while the second one was still starting, and it joined nothing.
    service.pause(record.id)
    returncode, stdout, stderr = join_and_then(
        settings, service, record.id, lambda _joiner: service.continue_(record.id)
    )
    assert returncode == 0, stderr
    report = json.loads(stdout)["data"]
    wait_for(lambda: service.status(record.id).status is Status.COMPLETED, timeout=120)
    final = service.status(record.id)

    assert "rowsProcessed" in report, report  # it joined, rather than ran the migration itself
    # An owner at concurrency 1 works in its one process: the machine has a core to spare.
    assert report["warnings"] == []
    helper_rows = report["rowsProcessed"]
    assert 0 < helper_rows < final.total_records, report
    left = [
        e
        for e in service.audit_entries(limit=None, migration_id=record.id).entries
        if e.operation == "worker_left"
    ]
    assert [entry.details["rowsProcessed"] for entry in left] == [helper_rows]
    # The monitor's list of workers: the owner, then the one that joined, with its rows.
    workers = workers_of(final, service.audit_entries(limit=None, migration_id=record.id).entries)
    assert [worker.owner for worker in workers] == [True, False]
    assert workers[1].worker == report["worker"] and workers[1].rows == helper_rows
    assert_exact_and_reversible(service, final, before)


def test_a_joined_worker_sent_sigterm_leaves_and_the_owner_carries_on(
    large: tuple[Settings, MigratorService],
) -> None:
    settings, service = large
    before = raw_dump(service.engine)
    record = service.start({"batch_size": 20, "max_concurrency": 1}, detach=True)
    returncode, stdout, stderr = join_and_then(
        settings, service, record.id, lambda joiner: joiner.send_signal(signal.SIGTERM)
    )

    assert returncode == 0, stderr
    assert "Traceback" not in stderr and "Leaving after the batch in hand" in stderr, stderr
    report = json.loads(stdout)["data"]
    assert report["leftBecause"].startswith("it was asked to leave"), report
    # Not its migration to cancel: the owner runs on.
    after_leaving = service.status(record.id)
    assert after_leaving.status in (Status.RUNNING, Status.COMPLETED), after_leaving.status
    if after_leaving.status is Status.RUNNING:
        wait_for(
            lambda: (
                service.status(record.id).encrypted_records > after_leaving.encrypted_records
                or service.status(record.id).status is Status.COMPLETED
            ),
            timeout=60,
        )
        cancel_unless_completed(service, record.id, "the test has seen the owner carry on", wait_seconds=60)
    service.rollback(record.id, confirm=True)
    assert raw_dump(service.engine) == before


def test_joining_is_refused_when_no_worker_runs_the_migration(
    large: tuple[Settings, MigratorService],
) -> None:
    _settings, service = large
    record = service.start({"batch_size": 500, "dry_run": True})
    with pytest.raises(BadInput, match="is completed: no worker is running it"):
        service.join(record.id)


def test_a_server_restart_mid_migration_is_survived_with_nothing_lost(
    large: tuple[Settings, MigratorService],
    postgres_cluster: PostgresCluster,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    _settings, service = large
    before = raw_dump(service.engine)
    running = Background(lambda: service.start({"batch_size": 20, "max_concurrency": 2}))
    wait_for(lambda: _encrypted_share(service) > 0.2, timeout=60, interval=0.02)
    postgres_cluster.restart(down_seconds=1.0)
    record = running.join(timeout=180)
    assert record.status is Status.COMPLETED, record.error_message
    # The restart was felt, in the middle of the batches, and retried past.
    assert any("retrying" in entry.getMessage() for entry in caplog.records), caplog.text
    assert service.verify_audit().intact
    assert_exact_and_reversible(service, service.status(record.id), before)


def test_a_server_restart_mid_rollback_is_survived_and_the_rollback_is_exact(
    large: tuple[Settings, MigratorService],
    postgres_cluster: PostgresCluster,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    _settings, service = large
    before = raw_dump(service.engine)
    record = service.start({"batch_size": 500, "max_concurrency": 2})
    assert record.status is Status.COMPLETED, record.error_message
    # Small batches, their progress written after each: the restart lands between and in them.
    monkeypatch.setattr(rollback_engine, "BATCH", 50)
    monkeypatch.setattr(rollback_progress, "WRITE_EVERY_SECONDS", 0.0)
    rolling = Background(lambda: service.rollback(record.id, confirm=True)[0])
    wait_for(lambda: _restored_share(service, record) > 0.2, timeout=60, interval=0.02)
    postgres_cluster.restart(down_seconds=1.0)
    rolled = rolling.join(timeout=180)
    assert rolled.status is Status.ROLLED_BACK, rolled.rollback_progress
    assert any("retrying" in entry.getMessage() for entry in caplog.records), caplog.text
    assert raw_dump(service.engine) == before
    assert service.verify_audit().intact


def _restored_share(service: MigratorService, record: MigrationRecord) -> float:
    progress = service.status(record.id).rollback_progress
    return 0.0 if progress is None else progress.restored_rows / record.encrypted_records


def test_a_server_down_past_the_retry_budget_fails_the_migration_clearly_and_resume_finishes_it(
    large: tuple[Settings, MigratorService], postgres_cluster: PostgresCluster
) -> None:
    _settings, service = large
    before = raw_dump(service.engine)
    service.retry_policy = RetryPolicy(attempts=3, first_delay=0.1, max_delay=0.2)
    running = Background(lambda: service.start({"batch_size": 20, "max_concurrency": 1}))
    wait_for(lambda: _encrypted_share(service) > 0.2, timeout=60, interval=0.02)
    outage = threading.Thread(target=postgres_cluster.restart, kwargs={"down_seconds": 4.0})
    outage.start()
    record = running.join(timeout=180)
    outage.join()
    assert record.status is Status.FAILED
    assert "database" in (record.error_message or "").lower(), record.error_message
    assert "resume" in (record.error_message or "").lower() or record.can_rollback
    assert 0 < record.encrypted_records < record.total_records

    service.retry_policy = RetryPolicy()
    resumed = service.resume(record.id)
    assert_exact_and_reversible(service, resumed, before)


# One snapshot per sample, taken by an observer session while the migration runs: its phase,
# whether medication_data's companion column exists yet, the rows its batches committed so far,
# the table-level locks on medication_data that would make an application's reads or writes wait
# (SHARE and stronger) held by a client session other than the observer and the reader — the
# migration's — and whether the reader waits for a lock right now (for the failure message: a
# wait may also be on PostgreSQL's own autovacuum, which can take the table's lock for a moment
# to cut off empty pages at its end).
_SAMPLE = sa.text(
    """
    SELECT
        (SELECT phase FROM tm_migrations LIMIT 1) AS phase,
        EXISTS (
            SELECT 1 FROM information_schema.columns
            WHERE table_name = 'medication_data' AND column_name LIKE :companion
        ) AS companion_added,
        (SELECT coalesce(sum(encrypted_records), 0) FROM tm_migration_tables) AS committed,
        (SELECT coalesce(max(encrypted_records), 0) FROM tm_migration_tables
            WHERE table_name = 'medication_data') AS medication_committed,
        (SELECT coalesce(array_agg(l.mode || ': ' || left(coalesce(a.query, ''), 120)), '{}')
            FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
            WHERE l.locktype = 'relation' AND l.relation = 'medication_data'::regclass AND l.granted
                AND l.mode IN ('ShareLock', 'ShareRowExclusiveLock', 'ExclusiveLock', 'AccessExclusiveLock')
                AND a.backend_type = 'client backend' AND l.pid NOT IN (pg_backend_pid(), :reader))
            AS table_locks,
        EXISTS (SELECT 1 FROM pg_locks WHERE pid = :reader AND NOT granted)
            OR EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = :reader AND wait_event_type = 'Lock')
            AS reader_waits
    """
)
# The migration's open transactions at that moment: every session but the observer's and the reader's.
_OPEN_TRANSACTIONS = sa.text(
    "SELECT pid, xact_start FROM pg_stat_activity WHERE datname = current_database() "
    "AND pid NOT IN (pg_backend_pid(), :reader) AND xact_start IS NOT NULL"
)


def test_other_sessions_keep_reading_and_no_transaction_lasts_the_migration(
    large: tuple[Settings, MigratorService],
) -> None:
    """Batches lock rows, never tables, and commit one by one: an application reading the
    table being encrypted never waits for a lock, and no transaction stays open while the
    migration moves on. (Adding a companion column is a schema change, which does lock the
    table briefly; the reader is watched from the moment that change committed.)"""
    _settings, service = large
    reader = sa.create_engine(service.engine.url)
    observer = sa.create_engine(service.engine.url)
    stop_reading = threading.Event()
    reads_while_watched = 0
    watched = threading.Event()
    table_locks: list[str] = []  # each table lock of the migration's seen on medication_data
    reader_waits = 0
    # (pid, xact_start) of each migration transaction seen -> rows committed when first and last seen
    transactions: dict[tuple[int, object], list[int]] = {}
    medication_progress: set[int] = set()
    try:
        with reader.connect() as reading, observer.connect() as watching:
            reader_pid = int(reading.execute(sa.text("SELECT pg_backend_pid()")).scalar_one())
            reading.commit()

            def keep_reading() -> None:
                nonlocal reads_while_watched
                while not stop_reading.is_set():
                    reading.execute(sa.text("SELECT count(*), max(id) FROM medication_data")).one()
                    reading.commit()
                    reads_while_watched += watched.is_set()

            reading_thread = threading.Thread(target=keep_reading, daemon=True)
            reading_thread.start()
            running = Background(lambda: service.start({"batch_size": 25, "max_concurrency": 2}))
            parameters = {"reader": reader_pid, "companion": f"%{COMPANION_SUFFIX}"}
            while running.thread.is_alive():
                sample = watching.execute(_SAMPLE, parameters).one()
                open_transactions = watching.execute(_OPEN_TRANSACTIONS, parameters).all()
                watching.commit()
                if sample.phase != Phase.BATCH_PROCESSING or not sample.companion_added:
                    continue
                watched.set()
                table_locks += sample.table_locks
                reader_waits += sample.reader_waits
                medication_progress.add(int(sample.medication_committed))
                for pid, started in open_transactions:
                    seen = transactions.setdefault((pid, started), [sample.committed, sample.committed])
                    seen[1] = sample.committed
            stop_reading.set()
            reading_thread.join(timeout=60)
    finally:
        stop_reading.set()
        reader.dispose()
        observer.dispose()
    record = running.join(timeout=180)
    assert record.status is Status.COMPLETED

    # The reader was watched while medication_data's batches were being committed.
    assert len(medication_progress) > 2, medication_progress
    assert reads_while_watched > 0
    # Batches lock rows, never the table: the migration's sessions held no lock on it that makes
    # reads or writes wait (MVCC: readers take none of the row locks), and the reader kept reading.
    assert table_locks == [], f"{table_locks} (the reader was seen waiting {reader_waits} times)"
    # No transaction lives for the migration: while any one stayed open, the others committed
    # only a small share of the rows (a transaction held across batches would see them all).
    assert transactions, "no migration transaction was seen"
    longest = max(last - first for first, last in transactions.values())
    assert longest < record.total_records / 4, (longest, record.total_records)


def _encrypted_share(service: MigratorService) -> float:
    records, _ = service.list_migrations(limit=1)
    if not records or not records[0].total_records:
        return 0.0
    return records[0].encrypted_records / records[0].total_records
