"""Each database keeps its logs in a folder of its own, so two databases' migrations with the
same id never write into one file; the folder does not depend on how the database was named or
on the password, and the logs are the operator's only."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import IO, Any

import pytest

from tests.support.databases import make_settings
from tui_migrator.engine import detached
from tui_migrator.engine.log_files import database_log_dir, error_log_path, log_path, open_private_log

MIGRATION = "migration_20261202_001"


def test_two_databases_with_the_same_migration_id_get_different_log_files(tmp_path: Path) -> None:
    first = make_settings(tmp_path, database_url=f"sqlite:///{tmp_path / 'clinic_a.db'}")
    second = make_settings(tmp_path, database_url=f"sqlite:///{tmp_path / 'clinic_b.db'}")
    assert first.data_dir == second.data_dir
    assert log_path(first, MIGRATION) != log_path(second, MIGRATION)
    assert log_path(first, MIGRATION).name == log_path(second, MIGRATION).name == f"{MIGRATION}.log"
    # Named for people, under the data dir's logs.
    assert log_path(first, MIGRATION).parent.name.startswith("clinic_a-")
    assert log_path(first, MIGRATION).parent.parent == first.data_dir / "logs"
    assert error_log_path(first) != error_log_path(second)


def test_a_detached_worker_writes_to_its_own_databases_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class WritingPopen:
        """Stands in for the worker: writes which database it was started for to its output."""

        pid = 4242

        def __init__(
            self, _arguments: list[str], *, stdout: IO[bytes], env: dict[str, str], **_: Any
        ) -> None:
            stdout.write(env["TUI_MIGRATOR_DB"].encode())

    monkeypatch.setattr(detached.subprocess, "Popen", WritingPopen)
    urls = [f"sqlite:///{tmp_path / name}" for name in ("clinic_a.db", "clinic_b.db")]
    for url in urls:
        detached.spawn(make_settings(tmp_path, database_url=url), MIGRATION)
    for url in urls:
        assert log_path(make_settings(tmp_path, database_url=url), MIGRATION).read_text() == url


def test_a_sqlite_file_named_by_a_relative_path_shares_the_folder_of_its_absolute_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    relative = make_settings(tmp_path, database_url="sqlite:///clinic.db")
    absolute = make_settings(tmp_path, database_url=f"sqlite:///{tmp_path / 'clinic.db'}")
    assert database_log_dir(relative) == database_log_dir(absolute)


def test_the_password_and_user_neither_move_nor_appear_in_a_postgresql_databases_folder(
    tmp_path: Path,
) -> None:
    def folder(url: str) -> Path:
        return database_log_dir(make_settings(tmp_path, database_url=url))

    with_password = folder("postgresql+psycopg://alice:s3cret-pw@db.example:5432/clinic")
    assert with_password == folder("postgresql+psycopg://bob:rotated@db.example:5432/clinic")
    assert with_password == folder("postgresql://alice@db.example:5432/clinic")
    assert "s3cret-pw" not in str(with_password)
    assert with_password.name.startswith("clinic-")
    assert with_password != folder("postgresql+psycopg://alice@db.example:5432/clinic_copy")
    assert with_password != folder("postgresql+psycopg://alice@other.example:5432/clinic")


def test_a_database_name_is_made_safe_for_a_folder_name(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, database_url="postgresql+psycopg://db.example/../we ird$name")
    name = database_log_dir(settings).name
    assert "/" not in name and " " not in name and "$" not in name
    assert database_log_dir(settings).parent == settings.data_dir / "logs"


def test_logs_are_readable_by_their_owner_only(tmp_path: Path) -> None:
    path = error_log_path(make_settings(tmp_path))
    with open_private_log(path) as log:
        log.write(b"line\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
