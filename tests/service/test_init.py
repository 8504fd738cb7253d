"""Nothing is set up unasked: on a database without the tool's tables every command but init
(and demo) says so and exits 2 having written nothing; init sets it up once."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.support.databases import BOTH_BACKENDS
from tests.support.raw_files import file_bytes
from tui_migrator.cli.main import main

pytestmark = BOTH_BACKENDS


def _tables(url: str) -> list[str]:
    engine = sa.create_engine(url)
    try:
        return sorted(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _run(capsys: pytest.CaptureFixture[str], url: str, data_dir: Path, *argv: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    code = main([*argv, "--json", "--db", url, "--data-dir", str(data_dir)])
    return code, json.loads(capsys.readouterr().out)


@pytest.mark.parametrize(
    "argv",
    [
        ["health"],
        ["--readonly", "health"],
        ["list"],
        ["estimate"],
        ["audit", "--verify"],
        ["operators", "list"],
    ],
)
def test_a_database_that_is_not_set_up_is_refused_and_left_alone(
    backend: str, empty_database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    # A user's database with a table of its own (on SQLite its bytes must not change either).
    engine = sa.create_engine(empty_database_url)
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE patients (id integer PRIMARY KEY, name text)")
    engine.dispose()
    file = Path(empty_database_url.removeprefix("sqlite:///")) if backend == "sqlite" else None
    before = file_bytes(file) if file else b""
    code, refusal = _run(capsys, empty_database_url, tmp_path / "data", *argv)
    assert code == 2, refusal
    assert refusal["errorCode"] == "not_set_up"
    assert "tui-migrator init --db" in refusal["hint"]
    assert _tables(empty_database_url) == ["patients"]
    assert not (tmp_path / "data").exists()  # no key, no anchor, no log
    if file:
        assert file_bytes(file) == before


def test_init_sets_up_once_and_then_says_so(
    empty_database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = tmp_path / "data"
    code, refused = _run(capsys, empty_database_url, data_dir, "--readonly", "init")
    assert code == 3 and "read-only" in refused["error"]
    assert _tables(empty_database_url) == [] and not data_dir.exists()
    code, made = _run(capsys, empty_database_url, data_dir, "init")
    assert code == 0, made
    assert made["data"]["alreadySetUp"] is False and made["data"]["role"] == "super_admin"
    assert "tm_audit" in _tables(empty_database_url)
    code, again = _run(capsys, empty_database_url, data_dir, "init")
    assert code == 0 and again["data"]["alreadySetUp"] is True
    code, health = _run(capsys, empty_database_url, data_dir, "health")
    assert code == 0 and health["data"]["systemHealth"]["auditTrailProtected"] is True


def test_init_says_when_it_switched_a_sqlite_files_journal_mode(
    backend: str, empty_database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The tool's connections put a SQLite file in WAL mode, which stays with the file: the
    operator setting it up is told, with what it was (README, 'The SQLite library')."""
    engine = sa.create_engine(empty_database_url)
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE patients (id integer PRIMARY KEY, name text)")
    engine.dispose()
    code, made = _run(capsys, empty_database_url, tmp_path / "data", "init")
    assert code == 0, made
    if backend == "postgresql":
        assert made["data"]["journalMode"] is None
        return
    assert made["data"]["journalMode"] == {"before": "delete", "now": "wal"}
    assert main(["--db", empty_database_url, "--data-dir", str(tmp_path / "data"), "init"]) == 0
    assert "journal mode" not in capsys.readouterr().out  # already set up: nothing switched
    fresh = tmp_path / "fresh.db"
    with closing(sqlite3.connect(fresh)) as file:
        file.execute("CREATE TABLE patients (id integer PRIMARY KEY, name text)")
    assert main(["--db", f"sqlite:///{fresh}", "--data-dir", str(tmp_path / "fresh-data"), "init"]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert "The file's journal mode was delete; it is wal now, and stays so with the file" in said
