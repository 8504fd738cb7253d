"""Shared fixtures: a small seeded demo database built once, copied fresh for each test. The
helpers tests import (settings, backends, template databases, dumps) live in tests/support/.

Tests marked ``@pytest.mark.backends("sqlite", "postgresql")`` (see ``BOTH_BACKENDS``) run once
per backend: on SQLite the template file is copied, on PostgreSQL each test gets a database
created from a template database in the suite's own throwaway cluster. Unmarked tests run on
SQLite only. The cluster is started on first use, so a run without PostgreSQL tests never
starts it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from tests.support.bytecode import compile_the_tool
from tests.support.databases import (
    ADMIN,
    BACKENDS,
    SMALL_DEMO,
    PostgresTemplate,
    build_pg_template,
    copy_sqlite_workspace,
    fresh_postgres_database,
    make_settings,
)
from tests.support.postgres_cluster import PostgresCluster, PostgresUnavailable
from tui_migrator.common.settings import Settings
from tui_migrator.service.facade import MigratorService, create_demo_service

# CI explores the same examples every run (a red CI must be reproducible); locally each run
# explores new ones, which is how a wall-clock time inside a DST gap was found to be normalised.
settings_profile = "ci" if os.environ.get("CI") else "dev"
hypothesis_settings.register_profile("ci", derandomize=True, max_examples=300, deadline=None)
hypothesis_settings.register_profile("dev", deadline=None)
hypothesis_settings.load_profile(settings_profile)


def pytest_configure(config: pytest.Config) -> None:
    """Once, in the process that runs the suite (not in each xdist worker): the tool's bytecode
    written before the first test, so that the processes the tests start import it compiled, as
    an installed tool does, wherever PYTHONDONTWRITEBYTECODE is set (tests/support/bytecode.py)."""
    if not hasattr(config, "workerinput"):
        compile_the_tool()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize ``backend`` with the names of the test's ``backends`` mark."""
    marker = metafunc.definition.get_closest_marker("backends")
    if marker is None or "backend" not in metafunc.fixturenames:
        return
    unknown = set(marker.args) - set(BACKENDS)
    if unknown:
        raise pytest.UsageError(f"{metafunc.definition.nodeid}: unknown backends {sorted(unknown)}")
    metafunc.parametrize(
        "backend",
        [
            pytest.param(name, marks=[pytest.mark.postgresql] if name == "postgresql" else [])
            for name in marker.args
        ],
        indirect=True,
    )


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """The database backend of this test run: 'sqlite' unless the test is marked for more."""
    return str(getattr(request, "param", "sqlite"))


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """The suite's own PostgreSQL cluster, started once, on first use, and removed at the end.

    Where PostgreSQL is not installed its tests are skipped with the reason; in CI (the CI
    variable is set) that is a failure instead: CI must never silently skip them.
    """
    try:
        cluster = PostgresCluster()
    except PostgresUnavailable as error:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the PostgreSQL tests, but {error}. Install postgresql.", pytrace=False)
        pytest.skip(f"PostgreSQL tests need a PostgreSQL server: {error} (apt-get install postgresql)")
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def pg_demo_template(
    postgres_cluster: PostgresCluster, tmp_path_factory: pytest.TempPathFactory
) -> PostgresTemplate:
    """The small demo in a PostgreSQL template database, set up by ADMIN, built once per session."""
    return build_pg_template(
        postgres_cluster,
        tmp_path_factory,
        "demo_template",
        lambda settings: create_demo_service(settings, user=ADMIN, **SMALL_DEMO)[0],
    )


@pytest.fixture
def empty_postgres_database(postgres_cluster: PostgresCluster) -> Iterator[str]:
    """The URL of a new, empty database in the suite's cluster, dropped after the test."""
    with fresh_postgres_database(postgres_cluster) as url:
        yield url


@pytest.fixture
def empty_database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with no tables yet, on the test's backend."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
    else:
        yield request.getfixturevalue("empty_postgres_database")


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small demo database and its key file, set up by ADMIN, built once per session."""
    root = tmp_path_factory.mktemp("demo-template")
    service, _summary = create_demo_service(make_settings(root), user=ADMIN, **SMALL_DEMO)
    service.close()
    return root


@pytest.fixture
def workspace(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """A private copy of the template's data dir (with its 0600 key file) and, on SQLite, of
    its database file."""
    if backend == "sqlite":
        return copy_sqlite_workspace(request.getfixturevalue("demo_template"), tmp_path)
    root: Path = request.getfixturevalue("pg_demo_template").root
    shutil.copytree(root / "data", tmp_path / "data")
    return tmp_path


@pytest.fixture
def database_url(backend: str, workspace: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """The test's own copy of the demo database: a file in the workspace or a new database."""
    if backend == "sqlite":
        yield f"sqlite:///{workspace / 'parkml.db'}"
    else:
        template: PostgresTemplate = request.getfixturevalue("pg_demo_template")
        with fresh_postgres_database(template.cluster, template.database) as url:
            yield url


@pytest.fixture
def settings(workspace: Path, database_url: str) -> Settings:
    return make_settings(workspace, database_url=database_url)


@pytest.fixture
def service(settings: Settings) -> Iterator[MigratorService]:
    with MigratorService.open(settings, user=ADMIN) as opened:
        yield opened


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No TUI_MIGRATOR_* variable of the developer's shell may reach a test, nor their data dir."""
    for name in list(os.environ):
        if name.startswith("TUI_MIGRATOR_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    # In-process CLI runs act as the template's administrator unless a test says otherwise.
    monkeypatch.setattr("tui_migrator.storage.operators.current_os_user", lambda: ADMIN)
