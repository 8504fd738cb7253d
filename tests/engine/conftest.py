"""Fixtures of the engine's tests: for those that run detached workers, a demo database bigger
than the shared one (300 patients), built once per session on each backend and copied for each
test; for rollbacks, where they open their tokens (``opened_in``)."""

from __future__ import annotations

import os
import pwd
import shutil
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import pytest

from tests.support.databases import (
    PostgresTemplate,
    build_pg_template,
    fresh_postgres_database,
    make_settings,
)
from tests.support.postgres_cluster import PostgresCluster
from tests.support.rollback_workers import PoolsSeen, rollbacks_in_workers
from tui_migrator.common.settings import Settings
from tui_migrator.engine.cpu_pool import MIGRATION_WORKERS_FROM_ROWS
from tui_migrator.service.facade import MigratorService, create_demo_service


def _bigger_demo(settings: Settings) -> MigratorService:
    service, _ = create_demo_service(settings, patients=300, organizations=3, seed=5, user="alice")
    # Its migrations run in worker processes, which the tests of signals and of killed workers
    # are about: a smaller demo's would have none (cpu_pool.migration_processes).
    assert service.plan({}).scope.pending_rows >= MIGRATION_WORKERS_FROM_ROWS
    # The detached worker runs as the real operating-system user, who needs the role too.
    service.grant(pwd.getpwuid(os.geteuid()).pw_name, "super_admin")
    return service


@pytest.fixture(scope="session")
def bigger_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bigger")
    _bigger_demo(make_settings(root)).close()
    return root


@pytest.fixture(scope="session")
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


@pytest.fixture(params=["own process", "worker processes"])
def opened_in(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> PoolsSeen | None:
    """Where the test's rollbacks open their tokens: in the rollback's own process (the demo's
    tables are smaller than a rollback that starts workers), or only in worker processes (what
    they were sent is counted; see tests/support/rollback_workers.assert_opened_where_asked)."""
    return None if request.param == "own process" else rollbacks_in_workers(monkeypatch)
