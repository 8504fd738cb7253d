"""A command the CLI suggests reaches the same database and mapping: without --db and --schema it
would open the default demo database, where the migration does not exist."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import where
from tests.support.databases import make_settings
from tests.support.faults import fail_batches_after
from tui_migrator.cli.main import main
from tui_migrator.common.settings import Settings
from tui_migrator.service.facade import MigratorService
from tui_migrator.service.hints import addressed, database_flags
from tui_migrator.storage.migration_status import Status


def test_suggested_commands_name_the_database_and_the_mapping(tmp_path: Path) -> None:
    mapping = tmp_path / "mapping.toml"
    settings = make_settings(
        tmp_path, database_url=f"sqlite:///{tmp_path / 'clinic.db'}", schema_path=mapping
    )
    assert database_flags(settings) == f" --db sqlite:///{tmp_path / 'clinic.db'} --schema {mapping}"


def test_a_password_in_the_url_is_never_repeated_on_screen(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, database_url="postgresql+psycopg://migrator:s3cret@db/clinic")
    flags = database_flags(settings)
    assert "s3cret" not in flags
    assert flags == " --db <the same URL>"


def test_every_suggested_command_in_a_text_is_addressed_and_nothing_else(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, database_url=f"sqlite:///{tmp_path / 'clinic.db'}")
    flags = f"--db sqlite:///{tmp_path / 'clinic.db'}"
    text = (
        "Follow it with: tui-migrator status m_1. Resume with tui-migrator resume m_1, or run "
        "tui-migrator on Linux; tui-migrator init --db 'x' names its own."
    )
    assert addressed(text, settings) == (
        f"Follow it with: tui-migrator {flags} status m_1. Resume with tui-migrator {flags} resume m_1, "
        "or run tui-migrator on Linux; tui-migrator init --db 'x' names its own."
    )
    # The default database needs no options.
    assert addressed(text, make_settings(tmp_path, database_url=None)) == text


def test_the_resume_and_rollback_commands_of_a_stopped_migration_name_the_database_once(
    settings: Settings,
    service: MigratorService,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fail_batches_after(monkeypatch, "motor_symptoms", committed=1)
    record = service.start({"batch_size": 20, "max_concurrency": 1})
    assert record.status is Status.FAILED
    monkeypatch.setenv("COLUMNS", "1000")  # one line each, however long the path
    assert main(["status", record.id, *where(settings)]) == 0
    shown = capsys.readouterr().out
    flags = " ".join(where(settings)[:2])  # --db URL (the data dir is not a database option)
    assert f"Resume with: tui-migrator {flags} resume {record.id} " in shown
    assert f"Roll back with: tui-migrator {flags} rollback {record.id} --confirm" in shown
    assert shown.count("--db") == 2
