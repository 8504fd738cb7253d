"""Across processes: a detached worker survives on its own, is cancelled from another process,
is killed and shows as interrupted, and resumes with nothing encrypted twice."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import pytest

from tests.support.databases import (
    BOTH_BACKENDS,
    PostgresTemplate,
    build_pg_template,
    fresh_postgres_database,
    make_settings,
)
from tests.support.migration_helpers import (
    assert_fully_encrypted,
    process_alive,
    raw_dump,
    wait_for,
    worker_pid,
)
from tests.support.postgres_cluster import PostgresCluster
from tui_migrator.common.errors import BadInput
from tui_migrator.common.settings import Settings
from tui_migrator.engine.log_files import log_path
from tui_migrator.service.facade import MigratorService, create_demo_service
from tui_migrator.storage import migration_records as migrations
from tui_migrator.storage.migration_status import Status

SLOW = {"batch_size": 8, "max_concurrency": 1}


pytestmark = BOTH_BACKENDS


def _bigger_demo(settings: Settings) -> MigratorService:
    service, _ = create_demo_service(settings, patients=300, organizations=3, seed=5, user="alice")
    # The detached worker runs as the real operating-system user, who needs the role too.
    service.grant(pwd.getpwuid(os.geteuid()).pw_name, "super_admin")
    return service


@pytest.fixture(scope="module")
def bigger_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bigger")
    _bigger_demo(make_settings(root)).close()
    return root


@pytest.fixture(scope="module")
def bigger_pg_template(
    postgres_cluster: PostgresCluster, tmp_path_factory: pytest.TempPathFactory
) -> PostgresTemplate:
    return build_pg_template(postgres_cluster, tmp_path_factory, "bigger_template", _bigger_demo)


@pytest.fixture
def bigger(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[Settings, MigratorService]]:
    if backend == "sqlite":
        template: Path = request.getfixturevalue("bigger_template")
        shutil.copy2(template / "parkml.db", tmp_path / "parkml.db")
        shutil.copytree(template / "data", tmp_path / "data")
        database: AbstractContextManager[str] = nullcontext(f"sqlite:///{tmp_path / 'parkml.db'}")
    else:
        pg_template: PostgresTemplate = request.getfixturevalue("bigger_pg_template")
        shutil.copytree(pg_template.root / "data", tmp_path / "data")
        database = fresh_postgres_database(pg_template.cluster, pg_template.database)
    with database as url:
        settings = make_settings(tmp_path, database_url=url)
        with MigratorService.open(settings, user="alice") as service:
            yield settings, service


def test_detached_worker_is_cancelled_from_another_process_then_resumed(
    bigger: tuple[Settings, MigratorService],
) -> None:
    settings, service = bigger
    before = raw_dump(service.engine)
    started = service.start(SLOW, detach=True)
    assert started.status in (Status.PLANNED, Status.RUNNING)
    wait_for(lambda: service.status(started.id).encrypted_records > 50, timeout=60)
    running = service.status(started.id)
    assert running.worker is not None and worker_pid(running) != os.getpid()  # really another process

    cancelled = service.cancel(started.id, "Emergency maintenance required")
    assert cancelled.status is Status.CANCELLED
    assert 0 < cancelled.encrypted_records < cancelled.total_records
    wait_for(lambda: not process_alive(worker_pid(running)), timeout=30)  # the worker exits by itself

    resumed = service.resume(started.id)
    assert resumed.status is Status.COMPLETED
    assert assert_fully_encrypted(service, service.mapping(), before) == resumed.total_records
    service.rollback(started.id, confirm=True)
    assert raw_dump(service.engine) == before
    log = log_path(settings, started.id).read_text()
    assert "Traceback" not in log


def test_killed_worker_shows_as_interrupted_and_resume_finishes(
    bigger: tuple[Settings, MigratorService], monkeypatch: pytest.MonkeyPatch
) -> None:
    _settings, service = bigger
    before = raw_dump(service.engine)
    monkeypatch.setattr(migrations, "HEARTBEAT_STALE_SECONDS", 2.0)
    started = service.start(SLOW, detach=True)
    wait_for(lambda: service.status(started.id).encrypted_records > 30, timeout=60)
    pid = worker_pid(service.status(started.id))
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not process_alive(pid), timeout=10)
    wait_for(lambda: service.status(started.id).status is Status.INTERRUPTED, timeout=10)
    interrupted = service.status(started.id)
    assert interrupted.stored_status is Status.RUNNING and not interrupted.worker_alive
    assert interrupted.can_rollback

    resumed = service.resume(started.id)
    assert resumed.status is Status.COMPLETED
    assert assert_fully_encrypted(service, service.mapping(), before) == resumed.total_records
    assert resumed.verification and resumed.verification["passed"]


@pytest.mark.backends("sqlite")
def test_a_second_worker_is_refused_on_sqlite_with_the_reason(
    bigger: tuple[Settings, MigratorService],
) -> None:
    _settings, service = bigger
    record = service.start(SLOW, detach=True)
    wait_for(lambda: service.status(record.id).worker_alive)
    with pytest.raises(BadInput, match="can only join it on PostgreSQL"):
        service.join(record.id)
    service.cancel(record.id, "test over")
