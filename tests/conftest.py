"""Shared fixtures: a small seeded demo database built once, copied fresh for each test.

Tests marked ``@pytest.mark.backends("sqlite", "postgresql")`` (see ``BOTH_BACKENDS``) run once
per backend: on SQLite the template file is copied, on PostgreSQL each test gets a database
created from a template database in the suite's own throwaway cluster. Unmarked tests run on
SQLite only. The cluster is started on first use, so a run without PostgreSQL tests never
starts it.
"""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import settings as hypothesis_settings

from tests.support.postgres_cluster import PostgresCluster, PostgresUnavailable
from tui_migrator.common.settings import Settings
from tui_migrator.service.facade import MigratorService, create_demo_service

# CI explores the same examples every run (a red CI must be reproducible); locally each run
# explores new ones, which is how a wall-clock time inside a DST gap was found to be normalised.
settings_profile = "ci" if os.environ.get("CI") else "dev"
hypothesis_settings.register_profile("ci", derandomize=True, max_examples=300, deadline=None)
hypothesis_settings.register_profile("dev", deadline=None)
hypothesis_settings.load_profile(settings_profile)

SMALL_DEMO = {"patients": 60, "organizations": 3, "seed": 11}
ADMIN = "alice"
BACKENDS = ("sqlite", "postgresql")
BOTH_BACKENDS = pytest.mark.backends(*BACKENDS)
_database_numbers = itertools.count(1)


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


@dataclass(frozen=True)
class PostgresTemplate:
    cluster: PostgresCluster
    database: str
    root: Path  # holds data/, whose master key the template database was set up with


def build_pg_template(
    cluster: PostgresCluster,
    tmp_path_factory: pytest.TempPathFactory,
    name: str,
    build: Callable[[Settings], MigratorService],
) -> PostgresTemplate:
    """A template database ``name`` filled by ``build`` (given its settings; returns the service
    it opened), with the data dir holding the master key it was set up with."""
    root = tmp_path_factory.mktemp(name)
    database = cluster.create_database(name)
    service = build(make_settings(root, database_url=cluster.url(database)))
    # A template database must have no sessions while it is copied.
    service.close()
    return PostgresTemplate(cluster, database, root)


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


@contextmanager
def fresh_postgres_database(cluster: PostgresCluster, template: str | None = None) -> Iterator[str]:
    """A new database (a copy of ``template``: CREATE DATABASE … TEMPLATE copies its files on the
    server, far faster than building the demo again), dropped afterwards. Gives its URL."""
    name = f"test_{next(_database_numbers)}"
    cluster.create_database(name, template=template)
    try:
        yield cluster.url(name)
    finally:
        cluster.drop_database(name)


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


def make_settings(root: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": root / "data",
        "database_url": f"sqlite:///{root / 'parkml.db'}",
    }
    values.update(overrides)
    return Settings.resolve(values, environ={})


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
        root: Path = request.getfixturevalue("demo_template")
        shutil.copy2(root / "parkml.db", tmp_path / "parkml.db")
    else:
        root = request.getfixturevalue("pg_demo_template").root
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


def dump_database(url: str) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table, with Python types, for before/after comparisons."""
    engine = sa.create_engine(url)
    try:
        metadata = sa.MetaData()
        metadata.reflect(engine)
        with engine.connect() as connection:
            return {
                name: [
                    tuple(row)
                    for row in connection.execute(
                        sa.select(table).order_by(*table.primary_key.columns or table.columns)
                    )
                ]
                for name, table in sorted(metadata.tables.items())
            }
    finally:
        engine.dispose()


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No TUI_MIGRATOR_* variable of the developer's shell may reach a test, nor their data dir."""
    for name in list(os.environ):
        if name.startswith("TUI_MIGRATOR_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    # In-process CLI runs act as the template's administrator unless a test says otherwise.
    monkeypatch.setattr("tui_migrator.storage.operators.current_os_user", lambda: ADMIN)
