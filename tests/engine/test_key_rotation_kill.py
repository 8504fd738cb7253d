"""A key rotation killed with SIGKILL part-way: every token in the database is under a key that
is stored (each new generation is persisted before its first use), every value still reads back
byte for byte, and resume finishes the rotation."""

from __future__ import annotations

import os
import signal

import pytest

from tests.engine.test_key_rotation import _key_of, _keys, _tokens
from tests.support.databases import BOTH_BACKENDS
from tests.support.migration_helpers import (
    assert_fully_encrypted,
    process_alive,
    raw_dump,
    wait_for,
    worker_pid,
)
from tui_migrator.common.settings import Settings
from tui_migrator.service.facade import MigratorService
from tui_migrator.storage import migration_records as migrations
from tui_migrator.storage.keyring import KEY_STATUS_ACTIVE, KEY_STATUS_RETIRED, KEY_STATUS_RETIRING
from tui_migrator.storage.migration_status import MigrationKind, Status

pytestmark = BOTH_BACKENDS


def test_a_rotation_killed_part_way_leaves_every_token_readable_and_resumes(
    bigger: tuple[Settings, MigratorService],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _settings, service = bigger
    before = raw_dump(service.engine)
    encryption = service.start({"batch_size": 200, "max_concurrency": 2})
    assert encryption.status is Status.COMPLETED, encryption.error_message
    old_keys = set(_keys(service))
    monkeypatch.setattr(migrations, "HEARTBEAT_STALE_SECONDS", 2.0)

    started = service.rotate_keys([], {"batch_size": 8, "max_concurrency": 1}, detach=True)
    wait_for(lambda: service.status(started.id).encrypted_records > 30, timeout=60)
    pid = worker_pid(service.status(started.id))
    assert pid is not None and pid != os.getpid()
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not process_alive(pid), timeout=10)
    wait_for(lambda: service.status(started.id).status is Status.INTERRUPTED, timeout=10)

    killed = service.status(started.id)
    assert killed.kind is MigrationKind.ROTATION
    assert 0 < killed.encrypted_records < killed.total_records
    keys = _keys(service)
    generations = {_key_of(token) for token in _tokens(service).values()}
    # Both generations are in use, and every key a token names is stored.
    assert generations & old_keys and generations - old_keys
    assert generations <= set(keys)
    assert {keys[key_id][2] for key_id in old_keys} == {KEY_STATUS_RETIRING}
    assert assert_fully_encrypted(service, service.mapping(), before) == encryption.total_records

    resumed = service.resume(started.id)

    assert resumed.status is Status.COMPLETED, resumed.error_message
    assert resumed.verification and resumed.verification["passed"]
    keys = _keys(service)
    assert {_key_of(token) for token in _tokens(service).values()} == {
        key_id for key_id, (_org, _generation, status) in keys.items() if status == KEY_STATUS_ACTIVE
    }
    assert {keys[key_id][2] for key_id in old_keys} == {KEY_STATUS_RETIRED}
    assert assert_fully_encrypted(service, service.mapping(), before) == encryption.total_records
    service.rollback(encryption.id, confirm=True)
    assert raw_dump(service.engine) == before
