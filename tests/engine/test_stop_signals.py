"""A shutdown or `kill PID` (SIGTERM) and a terminal or SSH connection that goes away (SIGHUP)
stop a migration as Ctrl-C does (tests/engine/test_ctrl_c.py): the batches in flight finish,
the migration is cancelled with the signal as its reason, and resume finishes it. By default
both killed the process where it stood, with nothing in the record but a heartbeat going stale.
"""

from __future__ import annotations

import json
import os
import signal

from tests.support.databases import BOTH_BACKENDS
from tests.support.migration_helpers import (
    process_alive,
    raw_dump,
    wait_for,
    worker_pid,
)
from tests.support.signalled_start import start_signalled_mid_run
from tui_migrator.cli.stop_signals import REASONS
from tui_migrator.common.settings import Settings
from tui_migrator.engine.log_files import log_path
from tui_migrator.service.facade import MigratorService
from tui_migrator.storage.migration_status import Status

pytestmark = BOTH_BACKENDS


def test_sigterm_stops_a_detached_worker_safely(
    bigger: tuple[Settings, MigratorService],
) -> None:
    settings, service = bigger
    before = raw_dump(service.engine)
    started = service.start({"batch_size": 8, "max_concurrency": 2}, detach=True)
    wait_for(lambda: service.status(started.id).encrypted_records > 30, timeout=60)
    pid = worker_pid(service.status(started.id))
    assert pid is not None and pid != os.getpid()

    os.kill(pid, signal.SIGTERM)

    wait_for(lambda: not process_alive(pid), timeout=60)
    stopped = service.status(started.id)
    assert stopped.status is Status.CANCELLED, stopped.status
    assert stopped.cancel_reason == REASONS[signal.SIGTERM]
    assert 0 < stopped.encrypted_records < stopped.total_records
    log = log_path(settings, started.id).read_text()
    assert "Stopping after the in-flight batches" in log
    assert "Traceback" not in log and "worker process died" not in log, log

    # Cancelled as from another process (tests/engine/test_detached.py resumes that), it can
    # resume; and what it wrote comes back byte for byte.
    assert stopped.can_resume
    service.rollback(started.id, confirm=True)
    assert raw_dump(service.engine) == before


def test_a_hang_up_stops_a_foreground_start_safely(bigger: tuple[Settings, MigratorService]) -> None:
    settings, service = bigger
    before = raw_dump(service.engine)
    # The whole job, as the terminal's hang-up does: the helper processes get it too.
    ended = start_signalled_mid_run(settings, service, signal.SIGHUP)
    stdout, stderr = ended.stdout, ended.stderr

    assert "Traceback" not in stderr and "worker process died" not in stderr, stderr
    payload = json.loads(stdout)
    assert payload["data"]["status"] == Status.CANCELLED.value, payload
    record = service.status(payload["data"]["id"])
    assert record.cancel_reason == REASONS[signal.SIGHUP]
    assert 0 < record.encrypted_records < record.total_records and record.can_resume
    service.rollback(record.id, confirm=True)
    assert raw_dump(service.engine) == before
