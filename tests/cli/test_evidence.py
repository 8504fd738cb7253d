"""``report ID --evidence DIR`` and ``evidence verify DIR`` on the command line: the bundle is
written as a read (nothing but its audit entry, and under --readonly not even that), checked with
the master key alone (no database), and a broken one exits 1 naming what is wrong."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import run, where
from tests.support.databases import BOTH_BACKENDS
from tests.support.db_state import database_state, sqlite_file_bytes
from tests.support.evidence_bundles import BUNDLE_FILES, BuiltBundle, alter_one_byte, build_completed_bundle
from tests.support.migration_helpers import FAST
from tui_migrator.cli.main import main
from tui_migrator.common.settings import ENV_MASTER_KEY, Settings
from tui_migrator.crypto.keys import read_key_file
from tui_migrator.service.facade import MigratorService


@pytest.fixture(scope="module")
def built(demo_template: Path, tmp_path_factory: pytest.TempPathFactory) -> BuiltBundle:
    return build_completed_bundle(demo_template, tmp_path_factory.mktemp("evidence-cli"))


def verify_offline(
    settings: Settings, capsys: pytest.CaptureFixture[str], directory: Path
) -> tuple[int, dict[str, Any]]:
    """``evidence verify`` pointed at a database that does not exist: it must not need one."""
    code = main(
        [
            "evidence",
            "verify",
            str(directory),
            "--json",
            "--db",
            f"sqlite:///{directory.parent / 'no-such-database.db'}",
            "--data-dir",
            str(settings.data_dir),
        ]
    )
    return code, json.loads(capsys.readouterr().out)


@BOTH_BACKENDS
def test_report_writes_the_bundle_and_evidence_verify_passes_without_the_database(
    service: MigratorService, settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record = service.start(FAST)
    directory = tmp_path / "evidence"
    code, payload = run(settings, capsys, "report", record.id, "--evidence", str(directory))
    assert code == 0, payload
    data = payload["data"]
    assert sorted(data["files"]) == sorted(BUNDLE_FILES) and data["recordedInAuditTrail"] is True
    assert data["masterKeyFingerprint"] == service.master_key_fingerprint and data["auditChainIntact"]

    code, verified = verify_offline(settings, capsys, directory)
    assert code == 0, verified
    assert verified["success"] is True
    checked = verified["data"]
    assert checked["intact"] and checked["signatureValid"] and checked["migrationId"] == record.id
    assert checked["altered"] == checked["missing"] == checked["extra"] == []


def test_evidence_verify_reads_the_master_key_from_the_environment_too(
    built: BuiltBundle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    key = base64.b64encode(read_key_file(built.settings.effective_master_key_file)).decode()
    monkeypatch.setenv(ENV_MASTER_KEY, key)
    code = main(["evidence", "verify", str(built.directory), "--data-dir", str(tmp_path / "empty")])
    printed = capsys.readouterr().out
    assert code == 0 and "is intact" in printed and built.migration_id in printed


def test_an_altered_bundle_exits_1_naming_the_file(
    built: BuiltBundle, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = built.copy_to(tmp_path / "bundle")
    alter_one_byte(directory / "evidence.json")
    (directory / "summary.md").unlink()
    (directory / "extra.txt").write_text("not from the tool\n")
    code, payload = verify_offline(built.settings, capsys, directory)
    assert code == 1
    assert payload["success"] is False
    error = str(payload["error"])
    assert "evidence.json" in error and "summary.md" in error and "extra.txt" in error
    data = payload["data"]
    assert data["altered"] == ["evidence.json"] and data["missing"] == ["summary.md"]
    assert data["extra"] == ["extra.txt"] and data["signatureValid"] is True


def test_an_edited_manifest_exits_1_with_an_invalid_signature(
    built: BuiltBundle, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = built.copy_to(tmp_path / "bundle")
    manifest = directory / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"migrationId"', '"migrationId" ', 1))
    code, payload = verify_offline(built.settings, capsys, directory)
    assert code == 1 and "manifest.json" in str(payload["error"])
    assert payload["data"]["signatureValid"] is False
    # In words, for people:
    assert main(["evidence", "verify", str(directory), "--data-dir", str(built.settings.data_dir)]) == 1
    assert "EVIDENCE BUNDLE NOT INTACT" in capsys.readouterr().out


def test_a_folder_that_is_not_a_bundle_exits_2(
    built: BuiltBundle, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "empty").mkdir()
    for directory in (tmp_path / "empty", tmp_path / "nowhere"):
        code, payload = verify_offline(built.settings, capsys, directory)
        assert code == 2 and payload["errorCode"] == "not_an_evidence_bundle", payload


@BOTH_BACKENDS
def test_readonly_export_writes_nothing_to_the_database(
    service: MigratorService, settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record = service.start(FAST)
    before, before_bytes = database_state(settings), sqlite_file_bytes(settings)
    directory = tmp_path / "evidence"
    code, payload = run(settings, capsys, "report", record.id, "--evidence", str(directory), "--readonly")
    assert code == 0, payload
    assert payload["data"]["recordedInAuditTrail"] is False
    assert database_state(settings) == before
    assert sqlite_file_bytes(settings) == before_bytes
    code, verified = verify_offline(settings, capsys, directory)
    assert code == 0, verified


def test_a_folder_in_use_exits_2_with_nothing_written(
    service: MigratorService, settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record = service.start({**FAST, "data_categories": ["DEMOGRAPHICS"]})
    directory = tmp_path / "evidence"
    directory.mkdir()
    (directory / "old-bundle.json").write_text("{}\n")
    before = database_state(settings)
    code, payload = run(settings, capsys, "report", record.id, "--evidence", str(directory))
    assert code == 2 and payload["errorCode"] == "evidence_directory_not_empty", payload
    assert str(directory) in payload["error"] and "nothing was written" in payload["error"]
    assert [path.name for path in directory.iterdir()] == ["old-bundle.json"]
    assert database_state(settings) == before


def test_an_unknown_migration_exits_2_and_writes_no_bundle(
    service: MigratorService, settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = tmp_path / "evidence"
    code, payload = run(settings, capsys, "report", "nope", "--evidence", str(directory))
    assert code == 2 and payload["errorCode"] == "unknown_migration", payload
    assert not directory.exists()


def test_the_report_command_says_where_the_bundle_is_and_how_to_check_it(
    service: MigratorService, settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record = service.start({**FAST, "data_categories": ["DEMOGRAPHICS"]})
    directory = tmp_path / "evidence"
    assert main(["report", record.id, "--evidence", str(directory), *where(settings)]) == 0
    # Rich wraps lines at the terminal's width (and folds a path longer than it): compared
    # without whitespace.
    printed = "".join(capsys.readouterr().out.split())
    assert "".join(f"Evidence bundle of {record.id} written to {directory}".split()) in printed
    assert "".join(f"tui-migrator evidence verify {directory}".split()) in printed
