"""``status`` in words says what a rollback of the migration is doing: running (how far), stopped
part-way (why, or where its log is, and the command that runs it again) or done."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from tests.support.cli import text_of
from tests.support.databases import BOTH_BACKENDS
from tests.support.migration_helpers import FAST
from tui_migrator.common.settings import Settings
from tui_migrator.engine.log_files import log_path
from tui_migrator.service.facade import MigratorService
from tui_migrator.storage import rollback_progress
from tui_migrator.storage.tables import utc_now

pytestmark = BOTH_BACKENDS


def test_status_says_a_rollback_runs_stopped_or_finished(
    settings: Settings, service: MigratorService, capsys: pytest.CaptureFixture[str]
) -> None:
    record = service.start(FAST)
    rows = record.encrypted_records
    running = replace(
        rollback_progress.starting(rows, len(record.tables)),
        restored_rows=120,
        table="patients",
        tables_done=1,
    )
    rollback_progress.write(service.engine, record.id, running)
    text = text_of(settings, capsys, "status", record.id)
    assert f"ROLLING BACK: 120 of {rows:,} rows restored; table patients, 1 of" in text
    assert "run it again" not in text

    # Its heartbeat gone stale without a word: where its log is, and how to run it again.
    silent = replace(running, heartbeat_at=utc_now() - timedelta(minutes=5))
    rollback_progress.write(service.engine, record.id, silent)
    text = text_of(settings, capsys, "status", record.id)
    assert f"ROLLBACK STOPPED (120 of {rows:,} rows restored): its process stopped without finishing" in text
    # (A path longer than the terminal is folded: compared without the folds.)
    assert f"; its log: {log_path(settings, record.id)} — run it again:".replace(" ", "") in text.replace(
        " ", ""
    )
    assert f"rollback {record.id} --confirm" in text

    # Stopped with its reason: the reason, no log.
    failed = replace(silent, error="The database went away.")
    rollback_progress.write(service.engine, record.id, failed)
    text = text_of(settings, capsys, "status", record.id)
    assert f"ROLLBACK STOPPED (120 of {rows:,} rows restored): The database went away." in text
    assert "its log:" not in text

    service.rollback(record.id, confirm=True)
    text = text_of(settings, capsys, "status", record.id)
    assert f": {rows:,} rows restored; every value it encrypted is plaintext again." in text
    assert text.startswith(f"{record.id}: rolled_back") and "Rolled back in " in text
    assert "ROLLBACK STOPPED" not in text and "ROLLING BACK" not in text
