"""Ctrl-C at the terminal during `start`: the first press stops the migration safely (the
batches in flight finish) — with nothing on the terminal but the tool's own words.

A terminal's Ctrl-C sends SIGINT to every process of its foreground group: the tool's process,
its fork server and its worker processes. Only the tool's process decides what it means; the
workers, which hold the batches in flight, ignore it (engine/cpu_pool.py). Unhandled there, it
killed them mid-batch, each printing a KeyboardInterrupt traceback on the operator's terminal,
and the run reported a worker "killed by a signal, such as the out-of-memory killer's".
"""

from __future__ import annotations

import json
import signal

from tests.support.databases import BOTH_BACKENDS
from tests.support.signalled_start import start_signalled_mid_run
from tui_migrator.common.settings import Settings
from tui_migrator.service.facade import MigratorService
from tui_migrator.storage.migration_status import Status

pytestmark = BOTH_BACKENDS


def test_ctrl_c_during_start_cancels_safely_with_no_traceback_on_the_terminal(
    bigger: tuple[Settings, MigratorService],
) -> None:
    settings, service = bigger
    ended = start_signalled_mid_run(settings, service, signal.SIGINT)
    stdout, stderr = ended.stdout, ended.stderr

    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr
    assert "worker process died" not in stderr, stderr
    assert "Stopping after the in-flight batches" in stderr
    payload = json.loads(stdout)
    assert ended.returncode == 1, payload
    assert payload["data"]["status"] == Status.CANCELLED.value
    record = service.status(payload["data"]["id"])
    assert 0 < record.encrypted_records < record.total_records and record.can_rollback
