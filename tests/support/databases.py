"""The test databases: the small demo, settings pointing at a test's own copy, PostgreSQL template
databases copied per test, and a full dump for before/after comparisons.

Tests marked with ``BOTH_BACKENDS`` run once on SQLite and once on PostgreSQL (the ``backend``
fixture in tests/conftest.py reads the mark).
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest
import sqlalchemy as sa

from tests.support.postgres_cluster import PostgresCluster
from tui_migrator.common.settings import Settings
from tui_migrator.service.facade import MigratorService

T = TypeVar("T")

# Small enough to build in a moment, large enough for several batches per table.
SMALL_DEMO = {"patients": 60, "organizations": 3, "seed": 11}
# The operator who set the demo up: super_admin of every test database.
ADMIN = "alice"
BACKENDS = ("sqlite", "postgresql")
BOTH_BACKENDS = pytest.mark.backends(*BACKENDS)
# Unique within one process; under xdist every worker has its own cluster, so no two collide.
_database_numbers = itertools.count(1)


def make_settings(root: Path, **overrides: object) -> Settings:
    """Settings for a data dir and SQLite file under ``root`` (``overrides`` win), ignoring the
    environment so a developer's TUI_MIGRATOR_* variables never reach a test."""
    values: dict[str, object] = {
        "data_dir": root / "data",
        "database_url": f"sqlite:///{root / 'parkml.db'}",
    }
    values.update(overrides)
    return Settings.resolve(values, environ={})


@contextmanager
def opened_on_mapping(
    root: Path, database_url: str, mapping: str, *, user: str = "alice"
) -> Iterator[MigratorService]:
    """A service on ``database_url`` with its own schema mapping (``mapping``, TOML, written
    under ``root``), set up there by ``user``."""
    (root / "mapping.toml").write_text(mapping, encoding="utf-8")
    settings = make_settings(root, database_url=database_url, schema_path=root / "mapping.toml")
    with MigratorService.open(settings, user=user, may_set_up=True) as service:
        yield service


def copy_sqlite_workspace(template: Path, into: Path) -> Path:
    """A copy of an SQLite template (its database file and its data dir, whose key file and audit
    anchors belong with it) in ``into``; gives ``into``."""
    shutil.copy2(template / "parkml.db", into / "parkml.db")
    shutil.copytree(template / "data", into / "data")
    return into


def seeded_sqlite_template(
    template: Path, tmp_path_factory: pytest.TempPathFactory, name: str, seed: Callable[[Settings], T]
) -> tuple[Path, T]:
    """A copy of the SQLite ``template`` that ``seed`` (given its settings) has added to, and
    what ``seed`` returned: what several tests of a module start from, built once (each test then
    copies it with copy_sqlite_workspace)."""
    root = copy_sqlite_workspace(template, tmp_path_factory.mktemp(name))
    return root, seed(make_settings(root))


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
