"""The one place where a running migration decides to wait or stop, and keeps its heartbeat.

Pause and cancel are requests in the database, from any process: the runner looks at them
between batches (and between stages), never in the middle of one, so stopping leaves nothing
half-written. The heartbeat tells every other process that this worker is alive and publishes
its live figures. Every database call runs in a worker thread, off the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy.exc import DBAPIError

from tui_migrator.engine.progress import RunMeter
from tui_migrator.engine.work import MigrationWorker
from tui_migrator.storage import migration_records as migrations
from tui_migrator.storage.audit_operations import AuditOperation
from tui_migrator.storage.migration_claims import ClaimLost
from tui_migrator.storage.migration_records import MigrationRecord
from tui_migrator.storage.migration_status import Status
from tui_migrator.storage.tables import utc_now

log = logging.getLogger(__name__)

HEARTBEAT_INTERVAL = 1.0
# How often a paused run looks again for continue or cancel.
PAUSED_POLL_SECONDS = 0.3


class Stop(Exception):
    """A cancel request was seen: stop dispatching, let in-flight batches finish."""


class RunControl:
    """Honours pause and cancel between batches and beats the heartbeat, for one worker."""

    def __init__(
        self,
        worker: MigrationWorker,
        meter: RunMeter,
        *,
        on_progress: Callable[[MigrationRecord], None] | None = None,
    ) -> None:
        self.worker = worker
        self.meter = meter
        self.on_progress = on_progress

    async def between_batches(self, in_flight: set[asyncio.Task[None]] | None = None) -> bool:
        """Honour cancel at once, and wait here while paused; True if it waited.

        A pause lets the batches already in flight commit before the status says paused, so a
        paused migration really writes nothing until it continues.
        """
        requests = await asyncio.to_thread(self.worker.read_requests)
        if requests.cancel_requested:
            raise Stop
        if not requests.pause_requested:
            return False
        if in_flight:
            await asyncio.gather(*in_flight, return_exceptions=True)
        paused_at = time.monotonic()
        # From here the heartbeat writes the growing paused time (see RunMeter.heartbeat_values),
        # so the requests read while waiting hold it too: the total counts from this value.
        self.meter.pause(requests.paused_seconds)
        await asyncio.to_thread(self.worker.update_record, status=Status.PAUSED.value)
        await asyncio.to_thread(self.worker.record_event, AuditOperation.MIGRATION_PAUSED, True, {})
        try:
            requests = await self._until_continued_or_cancelled(requests)
        finally:
            paused_seconds = self.meter.resume()
            await asyncio.to_thread(
                self.worker.update_record, status=Status.RUNNING.value, paused_seconds=paused_seconds
            )
        if requests.cancel_requested:
            raise Stop
        await asyncio.to_thread(
            self.worker.record_event,
            AuditOperation.MIGRATION_CONTINUED,
            True,
            {"pausedSeconds": round(time.monotonic() - paused_at, 1)},
        )
        return True

    async def _until_continued_or_cancelled(self, requests: migrations.Control) -> migrations.Control:
        while requests.pause_requested and not requests.cancel_requested:
            await asyncio.sleep(PAUSED_POLL_SECONDS)
            requests = await asyncio.to_thread(self.worker.read_requests)
        return requests

    async def heartbeat(self) -> None:
        """Beat until cancelled (the runner cancels it when the run ends)."""
        while True:
            await asyncio.sleep(HEARTBEAT_INTERVAL)
            await asyncio.to_thread(self._beat, self.meter.heartbeat_values())

    def _beat(self, figures: dict[str, Any]) -> None:
        try:
            self.worker.write_record(heartbeat_at=utc_now(), **figures)
            record = (
                migrations.get(self.worker.engine, self.worker.migration_id) if self.on_progress else None
            )
        except DBAPIError as error:
            # A missed beat is harmless (a worker is taken for gone only after 15 s of them);
            # the batches themselves retry or fail the migration with the reason.
            log.warning("heartbeat not recorded: %s", type(error).__name__)
            return
        except ClaimLost:
            # Taken over: this worker's next batch write is refused too, and it stops there.
            return
        if self.on_progress is not None and record is not None:
            self.on_progress(record)
