"""Progress inside verification, the one phase over every row that is not batch processing, so
the monitor and ``status`` show it moving rather than at 0 or at 100 % all along (the backup
stage only makes the backup tables: each batch backs up its own rows).

The phase counts rows as it goes, in the worker thread that does the work. The count, the total
the phase covers and its rate over the last few seconds go to the migration's ``phase_progress``
at most once a second: one small UPDATE beside the phase's own reads and writes. When the phase
ends the figures are cleared. Only the worker that owns a migration writes them (a worker that
joins it may do windows of the verification, which the owner adds up: see joiner.py), so the
figures have one writer and each write replaces the last.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from tui_migrator.engine.progress import RateWindow
from tui_migrator.storage.migration_records import PhaseProgress
from tui_migrator.storage.migration_status import Phase
from tui_migrator.storage.tables import utc_now

# The monitor polls once a second; writing more often would only add UPDATEs nobody reads.
WRITE_EVERY_SECONDS = 1.0

WritePhaseProgress = Callable[[PhaseProgress | None], None]


class PhaseMeter:
    """Counts one phase's rows and writes its figures, at most once a second."""

    def __init__(self, phase: Phase, write: WritePhaseProgress) -> None:
        self.phase = phase
        self._write = write
        self._total = 0
        self.done = 0
        self._rate = RateWindow()
        self._written_at = 0.0

    def begin(self, total_rows: int) -> None:
        """Count from zero towards ``total_rows`` (again, when a retry reads everything anew);
        written at once, so the phase shows from its first second."""
        self._total = total_rows
        self.done = 0
        self.restart_rate()
        self._flush()

    def add(self, rows: int) -> None:
        """``rows`` more rows through the phase."""
        self.done += rows
        self._rate.add(rows)
        if time.monotonic() - self._written_at >= WRITE_EVERY_SECONDS:
            self._flush()

    def restart_rate(self) -> None:
        """Measure the rate from now on: after a pause, the paused time must not count."""
        self._rate.clear()
        self._rate.add(0)

    def end(self) -> None:
        self._write(None)

    def _flush(self) -> None:
        rate = self._rate.rate()
        done = self.done
        self._write(
            PhaseProgress(
                phase=self.phase.value,
                done=done,
                # Rows written since the total was counted are verified too.
                total=max(self._total, done),
                rate_per_second=None if rate is None else round(rate, 1),
                at=utc_now(),
            )
        )
        self._written_at = time.monotonic()
