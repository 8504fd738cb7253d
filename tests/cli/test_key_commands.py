"""`keys rotate` and `keys rotate-master` from the command line: what they print, what they
refuse (exit 2, nothing written), and that the database then opens with the new master key only."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import run, where
from tests.support.databases import BOTH_BACKENDS
from tui_migrator.cli.main import main
from tui_migrator.common.settings import Settings
from tui_migrator.crypto.keys import generate_master_key, write_key_file

pytestmark = BOTH_BACKENDS


def _encrypt(settings: Settings, capsys: pytest.CaptureFixture[str]) -> str:
    code, started = run(
        settings, capsys, "start", "--yes", "--batch-size", "50", "--category", "DEMOGRAPHICS"
    )
    assert code == 0, started
    return str(started["data"]["id"])


def test_keys_rotate_runs_a_rotation_and_keys_list_shows_the_generations(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    _encrypt(settings, capsys)
    code, rotated = run(settings, capsys, "keys", "rotate", "--yes", "--batch-size", "25")
    assert code == 0, rotated
    data = rotated["data"]
    assert (data["status"], data["kind"]) == ("completed", "rotation")
    assert data["progress"]["encryptedRecords"] == data["progress"]["totalRecords"] > 0
    assert data["verification"]["passed"] and not data["canRollback"]
    assert data["sweep"]["summary"].startswith("not needed: a key rotation")

    code, listed = run(settings, capsys, "keys", "list")
    assert code == 0
    by_generation: dict[int, set[str]] = {}
    for key in listed["data"]["dataKeys"]:
        by_generation.setdefault(key["generation"], set()).add(key["status"])
    assert by_generation == {1: {"retired"}, 2: {"active"}}

    assert main(["status", data["id"], *where(settings)]) == 0
    text = capsys.readouterr().out
    assert f"{data['id']} (key rotation): completed" in text and "re-sealed" in text


def test_keys_rotate_refuses_an_organization_without_keys(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    _encrypt(settings, capsys)
    code, refused = run(settings, capsys, "keys", "rotate", "--yes", "--organization", "org_nowhere")
    assert code == 2 and refused["errorCode"] == "bad_input"
    assert "No data key to rotate for org_nowhere" in refused["error"]
    code, listed = run(settings, capsys, "list")
    assert len(listed["data"]["migrations"]) == 1


def test_keys_rotate_master_then_only_the_new_key_opens_the_database(
    settings: Settings, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    _encrypt(settings, capsys)
    new_key = tmp_path / "new.key"
    write_key_file(new_key, generate_master_key())
    code, rotated = run(settings, capsys, "keys", "rotate-master", "--new-key-file", str(new_key), "--yes")
    assert code == 0, rotated
    data = rotated["data"]
    assert data["dataKeysRewrapped"] > 0 and data["oldFingerprint"] != data["newFingerprint"]
    assert f"--master-key-file {new_key}" in data["message"]
    assert generate_master_key() not in str(rotated)  # (no key material printed at all)
    assert new_key.read_text().strip() not in str(rotated)

    code, refused = run(settings, capsys, "keys", "list")
    assert code == 2 and refused["errorCode"] == "wrong_master_key"
    code, listed = run(settings, capsys, "keys", "list", "--master-key-file", str(new_key))
    assert code == 0 and listed["data"]["masterKeyFingerprint"] == data["newFingerprint"]
    code, verified = run(settings, capsys, "audit", "--verify", "--master-key-file", str(new_key))
    assert code == 0 and verified["data"]["verification"]["intact"], verified


def test_keys_rotate_master_refuses_a_missing_file(
    settings: Settings, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, refused = run(
        settings, capsys, "keys", "rotate-master", "--new-key-file", str(tmp_path / "no.key"), "--yes"
    )
    assert code == 2 and refused["errorCode"] == "bad_input"
    assert "keys generate --output" in refused["hint"]
    code, _listed = run(settings, capsys, "keys", "list")
    assert code == 0  # the database still opens with its key
