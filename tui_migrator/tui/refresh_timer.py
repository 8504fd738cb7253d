"""Reloading a screen's data every few seconds while it is shown, and never while it is not.

A screen's load runs in a worker; when it finishes (done or failed) the screen schedules the next
one. The timer is stopped whenever the screen stops being shown (another mode, a screen on top),
so a hidden screen never polls the database (and never audits a refused read every few seconds).
"""

from __future__ import annotations

from collections.abc import Callable

from textual.screen import Screen
from textual.timer import Timer


class RefreshTimer:
    """The next load of ``screen``'s data, ``seconds`` after the last one finished."""

    def __init__(self, screen: Screen[object], seconds: float, load: Callable[[], object]) -> None:
        self._screen = screen
        self.seconds = seconds
        self._load = load
        self._timer: Timer | None = None

    def schedule(self) -> None:
        """After a load finished: the next one in ``seconds``, if the screen is shown."""
        self.stop()
        if self._screen.is_current:
            self._timer = self._screen.set_timer(self.seconds, self._fire)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None

    def _fire(self) -> None:
        self._timer = None
        if self._screen.is_current:
            self._load()
