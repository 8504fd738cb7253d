"""Too many refused tokens from one address: refuse that address for a while, without asking
the service (so without an audit entry each).

Every refused token is audited (service/api_tokens.py), which is what an auditor wants to see
— until a script with a wrong token, or someone guessing, sends thousands of requests and each
one appends to the trail and waits for the database's write lock. After ``limit`` refusals
within ``window`` seconds an address is answered 429 until the window has passed; the refusals
that reached the service are in the trail, the ones turned away here are counted in the
server's log.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

log = logging.getLogger("tui_migrator.http")

REFUSALS_PER_WINDOW = 20
WINDOW_SECONDS = 60.0


class RefusalThrottle:
    def __init__(
        self,
        *,
        limit: int = REFUSALS_PER_WINDOW,
        window: float = WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._refusals: dict[str, deque[float]] = {}
        self._turned_away: dict[str, int] = {}
        self._lock = threading.Lock()

    def wait_seconds(self, address: str) -> float:
        """0 when ``address`` may be heard; else how long until it may be again."""
        with self._lock:
            recent = self._recent(address)
            if recent is None or len(recent) < self.limit:
                return 0.0
            self._turned_away[address] = self._turned_away.get(address, 0) + 1
            if self._turned_away[address] == 1:
                log.warning("refusing requests from %s for a while: %d refused tokens", address, self.limit)
            return max(0.0, recent[0] + self.window - self._clock())

    def refused(self, address: str) -> None:
        """Note a refused token from ``address``."""
        with self._lock:
            self._refusals.setdefault(address, deque()).append(self._clock())

    def _recent(self, address: str) -> deque[float] | None:
        """The address's refusals within the window; None (and forgotten) when there are none."""
        refusals = self._refusals.get(address)
        if refusals is None:
            return None
        horizon = self._clock() - self.window
        while refusals and refusals[0] <= horizon:
            refusals.popleft()
        if refusals:
            return refusals
        del self._refusals[address]
        turned_away = self._turned_away.pop(address, 0)
        if turned_away:
            log.warning("%d requests from %s were turned away unheard", turned_away, address)
        return None
