"""``keys rotate-master``: every data key and the derivation root re-wrapped under a new master
key in one transaction. Afterwards the database opens with the new key only, and everything
derived before — tokens, digests, the audit chain, backups, operator roles, API tokens — still
works; a crash in the middle leaves every key readable under exactly one master."""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tests.support.cli import where
from tests.support.databases import ADMIN, BOTH_BACKENDS
from tests.support.migration_helpers import FAST, assert_fully_encrypted, raw_dump, wait_for
from tui_migrator.common.errors import BadInput, StateConflict, WrongMasterKey
from tui_migrator.common.settings import Settings
from tui_migrator.crypto.keys import MasterKey, Purpose, generate_master_key, read_key_file, write_key_file
from tui_migrator.service.evidence_bundle import verify_bundle
from tui_migrator.service.facade import MigratorService
from tui_migrator.storage import master_key_rotation
from tui_migrator.storage.keyring import unwrap_data_key
from tui_migrator.storage.tables import META_KEY_FINGERPRINT, data_keys_table, read_meta

pytestmark = BOTH_BACKENDS


def _new_key_file(tmp_path: Path, name: str = "new.key") -> Path:
    path = tmp_path / name
    write_key_file(path, generate_master_key())
    return path


def _with_key(settings: Settings, key_file: Path) -> Settings:
    return settings.model_copy(update={"master_key_file": key_file})


def _unwrappable_under(engine: sa.Engine, key: MasterKey) -> tuple[int, int]:
    """(data keys that unwrap under ``key``, data keys in all)."""
    wrapper = AESGCM(key.derive(Purpose.KEY_WRAPPING))
    opened = 0
    with engine.connect() as connection:
        rows = connection.execute(sa.select(data_keys_table)).mappings().all()
    for row in rows:
        try:
            unwrap_data_key(wrapper, row)
            opened += 1
        except WrongMasterKey:
            pass
    return opened, len(rows)


def test_after_rotation_only_the_new_key_opens_the_database_and_everything_still_works(
    service: MigratorService, settings: Settings, tmp_path: Path
) -> None:
    before = raw_dump(service.engine)
    record = service.start(FAST)
    token, _info = service.create_api_token(None)
    service.export_evidence(record.id, tmp_path / "evidence-before")
    old_key = MasterKey(read_key_file(settings.effective_master_key_file), "old")
    new_file = _new_key_file(tmp_path)

    rotation = service.rotate_master_key(new_file)

    new_key = MasterKey(read_key_file(new_file), "new")
    assert rotation.new_fingerprint == new_key.fingerprint != rotation.old_fingerprint
    assert rotation.data_keys == len(service.data_keys()) > 0
    assert _unwrappable_under(service.engine, new_key) == (rotation.data_keys, rotation.data_keys)
    assert _unwrappable_under(service.engine, old_key) == (0, rotation.data_keys)
    # This session goes on under the new key.
    assert service.master_key_fingerprint == new_key.fingerprint
    assert service.verify_audit().intact
    with pytest.raises(WrongMasterKey):
        MigratorService.open(settings, user=ADMIN)

    with MigratorService.open(_with_key(settings, new_file), user=ADMIN) as reopened:
        assert reopened.verify_audit().intact  # proofs derived before the rotation
        assert reopened.authenticate_api_token(f"Bearer {token}").operator == ADMIN
        assert reopened.role() is not None  # role proofs derived before the rotation
        assert assert_fully_encrypted(reopened, reopened.mapping(), before) == record.total_records
        # A new organization's key is wrapped under the new master.
        reopened.rollback(record.id, confirm=True)  # backups sealed before the rotation open
        assert raw_dump(reopened.engine) == before
        entries = reopened.audit_entries(limit=None).entries
        rotated = [e for e in entries if e.operation == "master_key_rotated"]
        assert len(rotated) == 1
        assert rotated[0].details["newFingerprint"] == new_key.fingerprint
    # An evidence bundle is signed by the master key itself: the old key still verifies the
    # bundles it signed, the new one does not.
    assert verify_bundle(tmp_path / "evidence-before", old_key).intact
    assert not verify_bundle(tmp_path / "evidence-before", new_key).intact


def test_a_second_rotation_keeps_the_first_root(
    service: MigratorService, settings: Settings, tmp_path: Path
) -> None:
    before = raw_dump(service.engine)
    record = service.start(FAST)
    first, second = _new_key_file(tmp_path, "first.key"), _new_key_file(tmp_path, "second.key")
    service.rotate_master_key(first)
    service.rotate_master_key(second)
    with MigratorService.open(_with_key(settings, second), user=ADMIN) as reopened:
        assert reopened.verify_audit().intact
        assert assert_fully_encrypted(reopened, reopened.mapping(), before) == record.total_records
    with pytest.raises(WrongMasterKey):
        MigratorService.open(_with_key(settings, first), user=ADMIN)


def test_bad_new_keys_and_running_migrations_are_refused_and_nothing_changes(
    service: MigratorService, settings: Settings, tmp_path: Path
) -> None:
    service.start(FAST)
    old_key = MasterKey(read_key_file(settings.effective_master_key_file), "old")
    with pytest.raises(BadInput, match="no key file"):
        service.rotate_master_key(tmp_path / "missing.key")
    with pytest.raises(BadInput, match="current master key"):
        service.rotate_master_key(settings.effective_master_key_file)
    loose = tmp_path / "loose.key"
    loose.write_text(generate_master_key() + "\n")
    loose.chmod(0o644)
    with pytest.raises(BadInput, match="chmod 600"):
        service.rotate_master_key(loose)
    # The detached worker acts as the operating-system user running the suite.
    service.grant(pwd.getpwuid(os.geteuid()).pw_name, "super_admin")
    waiting = service.start({**FAST, "not_before": "2999-01-01T00:00"}, detach=True)
    wait_for(lambda: service.status(waiting.id).worker_alive, timeout=60)
    with pytest.raises(StateConflict, match=waiting.id):
        service.rotate_master_key(_new_key_file(tmp_path))
    service.cancel(waiting.id, "test over")
    opened, total = _unwrappable_under(service.engine, old_key)
    assert opened == total > 0
    with service.engine.connect() as connection:
        assert read_meta(connection, META_KEY_FINGERPRINT) == old_key.fingerprint


def test_a_failure_in_the_middle_leaves_every_key_under_the_old_master(
    service: MigratorService, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    service.start(FAST)
    old_key = MasterKey(read_key_file(settings.effective_master_key_file), "old")
    new_file = _new_key_file(tmp_path)
    new_key = MasterKey(read_key_file(new_file), "new")
    real_write_meta = master_key_rotation.write_meta

    def fail_on_the_fingerprint(connection: sa.Connection, name: str, value: str) -> None:
        if name == META_KEY_FINGERPRINT:
            raise RuntimeError("the process died here")
        real_write_meta(connection, name, value)

    monkeypatch.setattr(master_key_rotation, "write_meta", fail_on_the_fingerprint)
    with pytest.raises(RuntimeError):
        service.rotate_master_key(new_file)
    opened, total = _unwrappable_under(service.engine, old_key)
    assert opened == total > 0
    assert _unwrappable_under(service.engine, new_key) == (0, total)
    with MigratorService.open(settings, user=ADMIN) as reopened:
        assert reopened.verify_audit().intact


@pytest.mark.backends("postgresql")
def test_sigkill_in_the_middle_of_the_transaction_leaves_every_key_under_exactly_one_master(
    service: MigratorService, settings: Settings, tmp_path: Path
) -> None:
    """The rotation's process is killed while its transaction has re-wrapped every data key and
    waits on a lock the test holds (on the fingerprint's row): the server rolls it all back."""
    service.start(FAST)
    old_key = MasterKey(read_key_file(settings.effective_master_key_file), "old")
    new_file = _new_key_file(tmp_path)
    new_key = MasterKey(read_key_file(new_file), "new")
    blocker = service.engine.connect()
    blocker.begin()
    blocker.execute(
        sa.text("SELECT value FROM tm_meta WHERE name = :name FOR UPDATE"), {"name": META_KEY_FINGERPRINT}
    )
    command = [
        sys.executable,
        "-m",
        "tui_migrator",
        "keys",
        "rotate-master",
        "--new-key-file",
        str(new_file),
        "--yes",
        *where(settings),
    ]
    # The subprocess acts as the operating-system user running the suite.
    service.grant(pwd.getpwuid(os.geteuid()).pw_name, "super_admin")
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:

        def waits_on_the_lock() -> bool:
            with service.engine.connect() as connection:
                return bool(
                    connection.execute(
                        sa.text(
                            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                            "AND query LIKE 'UPDATE tm_meta%'"
                        )
                    ).scalar_one()
                )

        wait_for(waits_on_the_lock, timeout=60)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
        blocker.rollback()
        blocker.close()
    opened, total = _unwrappable_under(service.engine, old_key)
    assert opened == total > 0
    assert _unwrappable_under(service.engine, new_key) == (0, total)
    with MigratorService.open(settings, user=ADMIN) as reopened:
        assert reopened.verify_audit().intact
        assert reopened.master_key_fingerprint == old_key.fingerprint
