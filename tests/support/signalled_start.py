"""`start` run as a terminal's foreground job, and a signal sent to the whole job mid-run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from tests.support.cli import where
from tests.support.migration_helpers import latest, wait_for
from tui_migrator.common.settings import Settings
from tui_migrator.service.facade import MigratorService


def start_signalled_mid_run(
    settings: Settings, service: MigratorService, number: signal.Signals
) -> subprocess.CompletedProcess[str]:
    """`start --json` in a process group of its own (as a terminal runs its foreground job),
    with small batches on two worker processes; once batches are in flight ``number`` goes to
    every process of the group, as a terminal's Ctrl-C or hang-up does. Its exit and output.

    Batches of one row: the signal must land before the last batch, and the run stops soon
    after it whatever their size, so small ones cost nothing and widen the moment. With five
    rows a batch, a CI run on a busy machine saw every row sealed before the signal arrived."""
    command = ["start", "--yes", "--batch-size", "1", "--max-concurrency", "2", "--json"]
    process = subprocess.Popen(
        [sys.executable, "-m", "tui_migrator", *command, *where(settings)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:

        def batches_in_flight() -> bool:
            record = latest(service)
            return record is not None and record.encrypted_records > 0

        wait_for(batches_in_flight, timeout=120, interval=0.02)
        os.killpg(process.pid, number)
        stdout, stderr = process.communicate(timeout=180)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
