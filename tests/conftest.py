"""Shared fixtures: a small seeded demo database built once, copied fresh for each test."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import settings as hypothesis_settings

from tui_migrator.service import MigratorService, create_demo_service
from tui_migrator.settings import Settings

# CI explores the same examples every run (a red CI must be reproducible); locally each run
# explores new ones, which is how a wall-clock time inside a DST gap was found to be normalised.
settings_profile = "ci" if os.environ.get("CI") else "dev"
hypothesis_settings.register_profile("ci", derandomize=True, max_examples=300, deadline=None)
hypothesis_settings.register_profile("dev", deadline=None)
hypothesis_settings.load_profile(settings_profile)

SMALL_DEMO = {"patients": 60, "organizations": 3, "seed": 11}
ADMIN = "alice"


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
def workspace(demo_template: Path, tmp_path: Path) -> Path:
    """A private copy of the template (database file and data dir with its 0600 key file)."""
    shutil.copy2(demo_template / "parkml.db", tmp_path / "parkml.db")
    shutil.copytree(demo_template / "data", tmp_path / "data")
    return tmp_path


@pytest.fixture
def settings(workspace: Path) -> Settings:
    return make_settings(workspace)


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
    monkeypatch.setattr("tui_migrator.operators.current_os_user", lambda: ADMIN)
