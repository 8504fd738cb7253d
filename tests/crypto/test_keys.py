"""The master key: where it comes from, how it is kept, and what a wrong one gets."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest
from pydantic import SecretStr

from tests.support.databases import ADMIN, BOTH_BACKENDS, dump_database, make_settings
from tui_migrator.cli.main import main
from tui_migrator.common.errors import ConfigError, WrongMasterKey
from tui_migrator.common.settings import ENV_MASTER_KEY, Settings
from tui_migrator.crypto import keys as keys_module
from tui_migrator.crypto.ciphers import RowContext
from tui_migrator.crypto.keys import generate_master_key, load_master_key
from tui_migrator.service.facade import MigratorService

pytestmark = BOTH_BACKENDS


def test_key_file_is_created_with_mode_0600(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    load_master_key(settings, create_if_missing=True)
    key_file = settings.effective_master_key_file
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(base64.b64decode(key_file.read_text().strip())) == 32


def test_key_file_readable_by_others_is_refused(settings: Settings) -> None:
    os.chmod(settings.effective_master_key_file, 0o644)
    with pytest.raises(ConfigError, match=r"permissions 0644.*chmod 600"):
        MigratorService.open(settings, user=ADMIN)


@pytest.mark.parametrize(
    "bad", ["not base64!!", base64.b64encode(b"short").decode(), base64.b64encode(b"k" * 33).decode()]
)
def test_malformed_environment_key_is_refused_without_echoing_it(tmp_path: Path, bad: str) -> None:
    settings = Settings.resolve({"data_dir": tmp_path}, environ={ENV_MASTER_KEY: bad})
    with pytest.raises(ConfigError) as raised:
        load_master_key(settings, create_if_missing=True)
    assert "32 bytes" in str(raised.value)
    assert bad not in str(raised.value)


def test_environment_key_takes_precedence_over_key_file(tmp_path: Path) -> None:
    key = generate_master_key()
    settings = Settings.resolve({"data_dir": tmp_path}, environ={ENV_MASTER_KEY: key})
    loaded = load_master_key(settings, create_if_missing=True)
    assert "environment" in loaded.source
    assert not settings.effective_master_key_file.exists()


def test_repr_of_master_key_shows_no_material(tmp_path: Path) -> None:
    key = generate_master_key()
    loaded = load_master_key(
        Settings.resolve({"data_dir": tmp_path}, environ={ENV_MASTER_KEY: key}), create_if_missing=False
    )
    assert key not in repr(loaded)
    assert base64.b64decode(key).hex() not in repr(loaded)


def test_wrong_master_key_is_refused_before_anything_is_written(settings: Settings) -> None:
    with MigratorService.open(settings, user=ADMIN) as service:
        service.value_cipher().encrypt("x", RowContext("demographics", "notes", (1,), "org_pitie_paris"))
    before = dump_database(settings.effective_database_url)
    wrong = settings.model_copy(update={"master_key": _secret(generate_master_key())})
    with pytest.raises(WrongMasterKey, match="not the key the database .* was set up with"):
        MigratorService.open(wrong, user=ADMIN)
    assert dump_database(settings.effective_database_url) == before


def test_wrong_key_with_matching_fingerprint_still_cannot_unwrap_data_keys(settings: Settings) -> None:
    """Even if the stored fingerprint were replaced, the data keys themselves refuse the key."""
    import sqlalchemy as sa

    from tui_migrator.crypto.keys import MasterKey
    from tui_migrator.storage.tables import META_KEY_FINGERPRINT, meta_table

    with MigratorService.open(settings, user=ADMIN) as service:
        service.value_cipher().encrypt("x", RowContext("demographics", "notes", (1,), "org_pitie_paris"))
        engine = service.engine
        wrong_key = generate_master_key()
        fingerprint = MasterKey(base64.b64decode(wrong_key), source="test").fingerprint
        with engine.begin() as connection:
            connection.execute(
                sa.update(meta_table)
                .where(meta_table.c.name == META_KEY_FINGERPRINT)
                .values(value=fingerprint)
            )
    before = dump_database(settings.effective_database_url)
    with pytest.raises(WrongMasterKey, match="cannot unwrap data key"):
        MigratorService.open(settings.model_copy(update={"master_key": _secret(wrong_key)}), user=ADMIN)
    assert dump_database(settings.effective_database_url) == before


def test_missing_key_file_for_a_set_up_database_is_an_error_and_no_new_key_is_made(
    settings: Settings,
) -> None:
    settings.effective_master_key_file.unlink()
    with pytest.raises(ConfigError, match="No master key"):
        MigratorService.open(settings, user=ADMIN)
    assert not settings.effective_master_key_file.exists()


def test_cli_reports_wrong_key_with_exit_code_2(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(ENV_MASTER_KEY, generate_master_key())
    code = main(
        ["health", "--json", "--db", settings.effective_database_url, "--data-dir", str(settings.data_dir)]
    )
    assert code == 2
    assert '"errorCode": "wrong_master_key"' in capsys.readouterr().out


def test_keys_generate_writes_a_0600_file_and_refuses_to_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "new.key"
    assert main(["keys", "generate", "--output", str(target)]) == 0
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    content = target.read_text()
    assert content.strip() not in capsys.readouterr().out
    assert main(["keys", "generate", "--output", str(target)]) == 2
    assert target.read_text() == content


def _secret(value: str) -> SecretStr:
    return SecretStr(value)


@pytest.mark.backends("sqlite")
def test_a_key_file_another_process_creates_first_is_the_one_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two processes setting up at once: the one that loses the race uses the winner's key."""
    settings = make_settings(tmp_path)
    path = settings.effective_master_key_file
    winner = generate_master_key()
    real_generate = keys_module.generate_master_key

    def other_process_wins_meanwhile() -> str:
        keys_module.write_key_file(path, winner)
        return real_generate()

    monkeypatch.setattr(keys_module, "generate_master_key", other_process_wins_meanwhile)
    key = load_master_key(settings, create_if_missing=True)
    assert key.fingerprint == keys_module.MasterKey(base64.b64decode(winner), source="winner").fingerprint
    assert path.read_text().strip() == winner
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left
