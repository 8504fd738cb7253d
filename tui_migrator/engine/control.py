"""The one place where a running migration decides to wait or stop, and keeps its heartbeat.

Pause and cancel are requests in the database, from any process: the runner looks at them
between batches (and between stages), never in the middle of one, so stopping leaves nothing
half-written. The migration's schedule (a maintenance window, a start not before a time) is
judged at the same place, so waiting for it is a pause like an operator's, with its reason. The
heartbeat tells every other process that this worker is alive and publishes its live figures. Every database call runs in a worker thread, off the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.exc import DBAPIError

from tui_migrator.common.windows import Schedule
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
# How often a paused run looks again for continue or cancel, and at its schedule.
PAUSED_POLL_SECONDS = 0.3
# The wait an operator asked for; it is kept as no reason on the record (pause_requested says it).
OPERATOR_PAUSE = "paused by an operator"


class Stop(Exception):
    """A cancel request was seen: stop dispatching, let in-flight batches finish."""


def wall_clock() -> datetime:
    """The instant the schedule is judged at; tests put a clock of their own here."""
    return utc_now()


class RunControl:
    """Honours pause, cancel and the migration's schedule between batches and beats the
    heartbeat, for one worker."""

    def __init__(
        self,
        worker: MigrationWorker,
        meter: RunMeter,
        *,
        on_progress: Callable[[MigrationRecord], None] | None = None,
        schedule: Schedule | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.worker = worker
        self.meter = meter
        self.on_progress = on_progress
        self.schedule = schedule
        self._clock = clock

    def now(self) -> datetime:
        return (self._clock or wall_clock)()

    async def between_batches(self, in_flight: set[asyncio.Task[None]] | None = None) -> bool:
        """Honour cancel at once, and wait here while paused or outside the schedule; True if
        it waited.

        A pause lets the batches already in flight commit before the status says paused, so a
        paused migration really writes nothing until it continues. The schedule pauses it the
        same way, with its reason on the record, and lets it go on by itself when it may run.
        """
        requests = await asyncio.to_thread(self.worker.read_requests)
        if requests.cancel_requested:
            raise Stop
        reason = self._wait_reason(requests)
        if reason is None:
            return False
        if in_flight:
            await asyncio.gather(*in_flight, return_exceptions=True)
        paused_at = time.monotonic()
        # From here the heartbeat writes the growing paused time (see RunMeter.heartbeat_values),
        # so the requests read while waiting hold it too: the total counts from this value.
        self.meter.pause(requests.paused_seconds)
        await asyncio.to_thread(
            self.worker.update_record, status=Status.PAUSED.value, pause_reason=_stored(reason)
        )
        await asyncio.to_thread(
            self.worker.record_event, AuditOperation.MIGRATION_PAUSED, True, self._pause_details(reason)
        )
        try:
            requests = await self._until_it_may_run(requests, reason)
        finally:
            paused_seconds = self.meter.resume()
            await asyncio.to_thread(
                self.worker.update_record,
                status=Status.RUNNING.value,
                paused_seconds=paused_seconds,
                pause_reason=None,
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

    def _wait_reason(self, requests: migrations.Control) -> str | None:
        """An operator's pause, else the schedule's reason at this instant, else None (run)."""
        if requests.pause_requested:
            return OPERATOR_PAUSE
        return None if self.schedule is None else self.schedule.wait_reason(self.now())

    def _pause_details(self, reason: str) -> dict[str, Any]:
        if reason == OPERATOR_PAUSE or self.schedule is None:
            return {}
        return {"reason": reason, "resumesAt": self.schedule.runs_from(self.now()).isoformat()}

    async def _until_it_may_run(self, requests: migrations.Control, reason: str) -> migrations.Control:
        while not requests.cancel_requested:
            await asyncio.sleep(PAUSED_POLL_SECONDS)
            requests = await asyncio.to_thread(self.worker.read_requests)
            now_reason = self._wait_reason(requests)
            if now_reason is None:
                break
            if now_reason != reason:
                # An operator paused it while it waited for its window, or continued it while
                # the window is still closed: the record says which wait it is now.
                reason = now_reason
                await asyncio.to_thread(self.worker.update_record, pause_reason=_stored(reason))
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


def _stored(reason: str) -> str | None:
    return None if reason == OPERATOR_PAUSE else reason
