"""What a running migration measures about itself: its recent rate, its current batch size and
how late its event loop runs. The heartbeat publishes them; the runner's batches feed them."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from tui_migrator.common.migration_config import MigrationConfig
from tui_migrator.engine import batch_size
from tui_migrator.engine.batches import BatchResult

RATE_WINDOW_SECONDS = 20.0
# The event-loop watchdog's timer: a timer that fires late means something blocked the loop.
LOOP_LAG_INTERVAL = 0.25


@dataclass
class RateWindow:
    """Rows per second over the last few seconds of running (paused time never counts)."""

    samples: deque[tuple[float, int]] = field(default_factory=deque)

    def add(self, rows: int) -> None:
        now = time.monotonic()
        self.samples.append((now, rows))
        while self.samples and now - self.samples[0][0] > RATE_WINDOW_SECONDS:
            self.samples.popleft()

    def clear(self) -> None:
        self.samples.clear()

    def rate(self) -> float | None:
        if len(self.samples) < 2:
            return None
        span = self.samples[-1][0] - self.samples[0][0]
        rows = sum(rows for _, rows in list(self.samples)[1:])
        return rows / span if span > 0 else None


class RunMeter:
    """The figures of one run: rate, batch size, pause state and the event loop's worst lag."""

    def __init__(self, config: MigrationConfig) -> None:
        self.config = config
        self.rate = RateWindow()
        self.batch_size = batch_size.initial(config)
        self.paused = False
        self.max_loop_lag = 0.0
        self._paused_before = 0.0
        self._paused_since = 0.0

    def batch_done(self, result: BatchResult) -> None:
        """Count a committed batch, and let an ``auto`` batch size follow its speed."""
        self.rate.add(result.rows)
        if self.config.auto_batch_size:
            self.batch_size = batch_size.adapt(self.batch_size, rows=result.rows, seconds=result.seconds)

    def pause(self, paused_before: float) -> None:
        """Paused now, after ``paused_before`` seconds of earlier pauses and stops."""
        self.paused = True
        self._paused_before = paused_before
        self._paused_since = time.monotonic()
        self.rate.clear()

    def resume(self) -> float:
        """Running again; the seconds paused in all, this pause included."""
        total = self.paused_seconds()
        self.paused = False
        return total

    def paused_seconds(self) -> float:
        return self._paused_before + time.monotonic() - self._paused_since

    def heartbeat_values(self) -> dict[str, Any]:
        """The migration record's live figures. A paused run keeps its last rate on record, and
        its paused time grows with each beat, so its elapsed (active) time stands still."""
        values: dict[str, Any] = {"batch_size_current": self.batch_size}
        if self.paused:
            values["paused_seconds"] = self.paused_seconds()
        else:
            values["rate_per_second"] = self.rate.rate()
        return values

    async def watch_loop_lag(self) -> None:
        """How late a 250 ms timer fires: proof that no CPU work runs on the event loop."""
        while True:
            started = time.monotonic()
            await asyncio.sleep(LOOP_LAG_INTERVAL)
            self.max_loop_lag = max(self.max_loop_lag, time.monotonic() - started - LOOP_LAG_INTERVAL)
