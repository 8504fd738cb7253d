"""Progress inside the phases that are not batch processing, the backup and the verification, so
the monitor and ``status`` show them moving rather than at 0 or at 100 % all along.

The phase counts rows as it goes, in the worker thread that does the work. The count, the total
the phase covers and its rate over the last few seconds go to the migration's ``phase_progress``
at most once a second: one small UPDATE beside the phase's own reads and writes. When the phase
ends the figures are cleared. Only the worker that owns a migration backs up and verifies (a
worker that joins it shares batch processing only, see joiner.py), so the figures have one writer
and each write replaces the last.
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
    """Counts one phase's rows and writes its figures, at most once a second.

    ``passes`` is how many times the phase goes over each row: the backup copies every row and
    then reads the copy back to prove it, so a row is done once both passes have been over it.
    The done count moves with the work of either pass, and so does the rate, so the bar does not
    stop at 100 % while the copies are checked, and the ETA covers the checking too."""

    def __init__(self, phase: Phase, write: WritePhaseProgress, *, passes: int = 1) -> None:
        self.phase = phase
        self.passes = passes
        self._write = write
        self._total = 0
        self._steps = 0
        self._rate = RateWindow()
        self._written_at = 0.0

    @property
    def done(self) -> int:
        return self._steps // self.passes

    def begin(self, total_rows: int) -> None:
        """Count from zero towards ``total_rows`` (again, when a retry reads everything anew);
        written at once, so the phase shows from its first second."""
        self._total = total_rows
        self._steps = 0
        self.restart_rate()
        self._flush()

    def add(self, rows: int) -> None:
        """``rows`` more rows through one of the phase's passes."""
        self._steps += rows
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
                # Rows written since the total was counted are backed up or verified too.
                total=max(self._total, done),
                rate_per_second=None if rate is None else round(rate / self.passes, 1),
                at=utc_now(),
            )
        )
        self._written_at = time.monotonic()
