"""The CLI's contract: JSON shapes, exit codes, first use, and both ways of starting it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli import where
from tests.support.databases import BOTH_BACKENDS
from tui_migrator.cli.main import main
from tui_migrator.common.settings import Settings


@BOTH_BACKENDS
def test_health_json_has_the_seed_shape(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["health", "--json", *where(settings)]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["success"] is True
    data = payload["data"]
    system = data["systemHealth"]
    assert system["migrationEngineOnline"] is True
    assert system["runningMigrations"] == 0
    assert system["encryptionSystemReady"] is True
    assert isinstance(system["backupSystemReady"], bool)
    # Before any migration: the seed's types all the same (text and a number), and no rate.
    assert data["recentActivity"] == {
        "last24Hours": 0,
        "endedLast24Hours": 0,
        "succeededLast24Hours": 0,
        "successRate": "n/a",
        "averageRecordsPerMigration": 0,
    }
    assert isinstance(data["recommendations"], list) and data["recommendations"]
    assert data["lastUpdated"].endswith("Z") or "+00:00" in data["lastUpdated"]
    assert data["operator"] == {"user": "alice", "role": "super_admin", "readonly": False}


def test_global_options_work_before_and_after_the_command(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*where(settings), "--json", "health"]) == 0
    assert json.loads(capsys.readouterr().out)["success"] is True


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["audit", "--limit", "0"], "must be at least 1"),
        (["nonsense"], "invalid choice"),
        (["operators"], "required"),
    ],
)
def test_usage_errors_exit_2_with_a_json_error(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*argv, "--json"]) == 2
    payload = json.loads(capsys.readouterr().out)
    assert payload["success"] is False and payload["errorCode"] == "bad_input"
    assert message in payload["error"]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("not a url", "is not a valid SQLAlchemy URL"),
        ("postgresql+nodriver://host/db", "No database driver is installed"),
        ("nonsense://host/db", "not supported"),
        ("mysql://u:secret@host/db", "not supported"),
        ("postgresql+psycopg://u:secret@host:notaport/db", "is not a valid SQLAlchemy URL"),
        ("postgresql+psycopg://u:secret@[::1/db", "is not a valid SQLAlchemy URL"),
    ],
)
def test_bad_database_url_is_a_clear_error(
    tmp_path: Path, url: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["health", "--db", url, "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "secret" not in err


def test_a_missing_database_file_is_a_clear_error_and_nothing_is_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["health", "--db", f"sqlite:///{tmp_path}/missing-dir/x.db", "--data-dir", str(tmp_path / "data")]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "There is no database file at" in err and "nothing was created" in err
    assert "tui-migrator init --db" in err
    assert not (tmp_path / "missing-dir").exists() and not (tmp_path / "data").exists()


def test_demo_refuses_to_replace_a_database_without_yes(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--patients", "10", *where(settings)]) == 2
    assert "--yes" in capsys.readouterr().err


@BOTH_BACKENDS
def test_demo_refuses_a_database_with_foreign_tables(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(settings.effective_database_url)
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE billing (id INTEGER PRIMARY KEY)")
    engine.dispose()
    assert main(["demo", "--patients", "10", "--yes", *where(settings)]) == 2
    assert "not part of the demo (billing)" in capsys.readouterr().err


@BOTH_BACKENDS
def test_demo_rebuild_resets_data_and_starts_a_new_verified_trail(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(
            [
                "demo",
                "--patients",
                "30",
                "--organizations",
                "2",
                "--seed",
                "3",
                "--yes",
                "--json",
                *where(settings),
            ]
        )
        == 0
    )
    data = json.loads(capsys.readouterr().out)["data"]
    assert data["patients"] == 30 and data["organizations"] == 2
    assert main(["audit", "--verify", "--json", *where(settings)]) == 0
    entries = json.loads(capsys.readouterr().out)["data"]["auditEntries"]
    assert [e["operation"] for e in reversed(entries)][:2] == ["tool_initialized", "demo_database_rebuilt"]


def run_installed(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=120, check=False)


@pytest.fixture
def clean_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUI_MIGRATOR_")}
    env["TUI_MIGRATOR_DATA_DIR"] = str(tmp_path / "data")
    return env


def test_init_creates_the_embedded_demo_database_and_a_0600_key_and_nothing_else_does(
    clean_env: dict[str, str], tmp_path: Path
) -> None:
    # Nothing is set up by a command other than init: not the data dir, not a key, not a file.
    refused = run_installed([sys.executable, "-m", "tui_migrator", "health", "--json"], clean_env)
    assert refused.returncode == 2, refused.stderr
    assert json.loads(refused.stdout)["errorCode"] == "not_set_up"
    assert not (tmp_path / "data").exists()
    created = run_installed([sys.executable, "-m", "tui_migrator", "init", "--json"], clean_env)
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["data"]["alreadySetUp"] is False
    completed = run_installed([sys.executable, "-m", "tui_migrator", "health", "--json"], clean_env)
    assert completed.returncode == 0, completed.stderr
    data = json.loads(completed.stdout)["data"]
    assert data["systemHealth"]["database"].endswith("tui-migrator.db")
    assert (tmp_path / "data" / "tui-migrator.db").exists()
    assert oct((tmp_path / "data" / "master.key").stat().st_mode & 0o777) == "0o600"


def test_console_script_runs(clean_env: dict[str, str]) -> None:
    script = Path(sys.executable).with_name("tui-migrator")
    completed = run_installed([str(script), "--version"], clean_env)
    assert completed.returncode == 0
    assert completed.stdout.startswith("tui-migrator ")
