"""A running rollback's writer of its own progress record (storage.rollback_progress): its
heartbeat, fenced by the rollback's claim."""

from __future__ import annotations

import time
from dataclasses import replace

from sqlalchemy.engine import Connection, Engine

from tui_migrator.storage import migration_claims, rollback_progress
from tui_migrator.storage.database import serialized_write
from tui_migrator.storage.rollback_progress import RollbackProgress
from tui_migrator.storage.tables import utc_now


class ProgressWriter:
    """Keeps a rollback's record current: every step is noted, and written at most once a
    second (and always at the end), which doubles as the rollback's heartbeat.

    Written only while the rollback still holds its claim (``epoch``): one whose heartbeat went
    stale may have been taken over by another rollback, whose record this one must not write
    over; its next write raises ClaimLost instead, and it stops."""

    def __init__(self, engine: Engine, migration_id: str, progress: RollbackProgress, *, epoch: int) -> None:
        """``progress``: as stored already, by the transaction that claimed the rollback."""
        self._engine = engine
        self._migration_id = migration_id
        self._epoch = epoch
        self.progress = progress
        self._written_at = time.monotonic()

    def step(self, *, restored_rows: int, table: str, tables_done: int) -> None:
        self.progress = replace(
            self.progress,
            restored_rows=restored_rows,
            table=table,
            tables_done=tables_done,
            heartbeat_at=utc_now(),
        )
        if time.monotonic() - self._written_at >= rollback_progress.WRITE_EVERY_SECONDS:
            self._flush()

    def finish(self, connection: Connection, *, restored_rows: int) -> None:
        """Written in ``connection``'s transaction, with the status it finishes."""
        self.progress = replace(
            self.progress,
            restored_rows=restored_rows,
            tables_done=self.progress.tables_total,
            table=None,
            finished=True,
            heartbeat_at=utc_now(),
        )
        rollback_progress.write_on(connection, self._migration_id, self.progress)

    def fail(self, error: str) -> None:
        self.progress = replace(self.progress, error=error, heartbeat_at=utc_now())
        self._flush()

    def _flush(self) -> None:
        with serialized_write(self._engine) as connection:
            migration_claims.check_epoch(connection, self._migration_id, self._epoch)
            rollback_progress.write_on(connection, self._migration_id, self.progress)
        self._written_at = time.monotonic()
