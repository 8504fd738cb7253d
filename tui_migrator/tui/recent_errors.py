"""The error notifications the app showed this session, so an operator who missed or dismissed
one can read it again in the log view.

A failure that keeps recurring (the monitor polls every second; a lost database fails every
poll) is one entry counted again, not a new notification each time: error notifications stay
until dismissed, and a screen filling with the same one would hide everything else.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

# Kept in memory only, and only the newest: enough to look back over a working session.
KEPT = 50
# A recurrence this soon after the last is the same failure going on; later, it is news again.
QUIET_AFTER_REPEAT = timedelta(seconds=60)


@dataclass
class ShownError:
    title: str
    message: str
    # What makes two errors the same one: the service's message, or an unexpected error's class.
    cause: str
    first_seen: datetime
    last_seen: datetime
    times: int = 1


class RecentErrors:
    def __init__(self) -> None:
        self._errors: deque[ShownError] = deque(maxlen=KEPT)

    def repeated(self, title: str, cause: str, *, now: datetime | None = None) -> bool:
        """Count a recurrence of an error last seen less than a minute before, and say so; False
        when this error is news (show it, then ``add`` it)."""
        now = now or datetime.now(UTC)
        for shown in self._errors:
            if (shown.title, shown.cause) == (title, cause) and now - shown.last_seen < QUIET_AFTER_REPEAT:
                shown.times += 1
                shown.last_seen = now
                return True
        return False

    def add(self, title: str, cause: str, message: str, *, now: datetime | None = None) -> None:
        now = now or datetime.now(UTC)
        self._errors.append(ShownError(title, message, cause, first_seen=now, last_seen=now))

    def newest_first(self) -> Iterator[ShownError]:
        return reversed(self._errors)

    def __len__(self) -> int:
        return len(self._errors)
