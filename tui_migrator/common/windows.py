"""Maintenance windows and scheduled starts: when a migration may take batches.

A window is a daily span of wall-clock time in one time zone, "01:00-05:00", and may cross
midnight ("22:00-04:00"). Everything here is a pure function of the instant it is given (an
aware datetime), so callers inject their clock and tests need no real waiting.

Wall-clock semantics decide across DST changes: the window is open while the zone's local time
is inside it. On the night the clocks go forward a window may open late (at the change) or not
at all that day; on the night they go back it may close and open again within the repeated hour.
The window opens either where the local time reaches its start (:func:`_wall_instants`) or at a
change of the zone's offset (:func:`_offset_changes`), so those are the only candidates.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# A window opens at least once in any few days: looking this far ahead always finds it.
_HORIZON = timedelta(days=3)
_WINDOW_TEXT = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
DEFAULT_ZONE = "UTC"

OUTSIDE_WINDOW = "outside the maintenance window"
BEFORE_START = "waiting for its scheduled start"


@dataclass(frozen=True)
class MaintenanceWindow:
    """A daily span of local time, [start, end), in ``zone``; start != end."""

    start: time
    end: time
    zone: ZoneInfo

    @property
    def text(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"

    @property
    def crosses_midnight(self) -> bool:
        return self.end < self.start

    @property
    def length(self) -> timedelta:
        """The nominal length (a DST change can make one day's window an hour longer or shorter)."""
        minutes = (_minutes(self.end) - _minutes(self.start)) % (24 * 60)
        return timedelta(minutes=minutes)

    def is_open(self, now: datetime) -> bool:
        local = _aware(now).astimezone(self.zone).time().replace(tzinfo=None)
        if self.crosses_midnight:
            return local >= self.start or local < self.end
        return self.start <= local < self.end

    def next_opening(self, now: datetime) -> datetime:
        """``now`` when the window is open; otherwise the first instant after ``now`` that it is."""
        if self.is_open(now):
            return _aware(now).astimezone(UTC)
        return _first(now, self._candidates(now, self.start), self.is_open)

    def closes_at(self, now: datetime) -> datetime:
        """When the opening that holds ``now`` (or the next one) closes."""
        opening = self.next_opening(now)
        return _first(opening, self._candidates(opening, self.end), lambda at: not self.is_open(at))

    def _candidates(self, now: datetime, wall: time) -> list[datetime]:
        day = _aware(now).astimezone(self.zone).date()
        instants = [
            at
            for offset in range(-1, _HORIZON.days + 1)
            for at in _wall_instants(day + timedelta(days=offset), wall, self.zone)
        ]
        return instants + _offset_changes(now, now + _HORIZON, self.zone)


@dataclass(frozen=True)
class Schedule:
    """When a migration may take batches: not before ``not_before``, and only inside ``window``."""

    window: MaintenanceWindow | None
    not_before: datetime | None
    zone: ZoneInfo

    def may_run(self, now: datetime) -> bool:
        return self.wait_reason(now) is None

    def wait_reason(self, now: datetime) -> str | None:
        """Why it must wait at ``now`` (the words status shows), or None when it may run."""
        if self.not_before is not None and now < self.not_before:
            return BEFORE_START
        if self.window is not None and not self.window.is_open(now):
            return OUTSIDE_WINDOW
        return None

    def runs_from(self, now: datetime) -> datetime:
        """The first instant from ``now`` on at which it may run: the first opening after the
        scheduled start."""
        at = now if self.not_before is None else max(now, self.not_before)
        return at if self.window is None else self.window.next_opening(at)


def parse_window(text: str, zone: ZoneInfo) -> MaintenanceWindow:
    """ "HH:MM-HH:MM" (24-hour), raising ValueError in words that say how to write it."""
    found = _WINDOW_TEXT.match(text)
    if found is None:
        raise ValueError(f"must be a daily span HH:MM-HH:MM, like 01:00-05:00 or 22:00-04:00, not {text!r}")
    hours_a, minutes_a, hours_b, minutes_b = (int(part) for part in found.groups())
    for hours, minutes in ((hours_a, minutes_a), (hours_b, minutes_b)):
        if hours > 23 or minutes > 59:
            raise ValueError(f"{hours:02d}:{minutes:02d} is not a time of day (00:00 to 23:59) in {text!r}")
    start, end = time(hours_a, minutes_a), time(hours_b, minutes_b)
    if start == end:
        raise ValueError(
            f"starts and ends at {start:%H:%M}: a window needs a length (for all day, give none)"
        )
    return MaintenanceWindow(start, end, zone)


def zone_named(name: str) -> ZoneInfo:
    """The IANA zone ``name``, raising ValueError naming it when there is no such zone."""
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError, IsADirectoryError):
        raise ValueError(
            f"{name!r} is not a known time zone; give an IANA name like Europe/Berlin or UTC"
        ) from None


def parse_not_before(text: str, zone: ZoneInfo) -> datetime:
    """An ISO date-time; one without an offset is the local time in ``zone``."""
    try:
        at = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"must be an ISO date and time like 2026-12-24T01:00 or 2026-12-24T01:00+01:00, not {text!r}"
        ) from None
    return (at.replace(tzinfo=zone) if at.tzinfo is None else at).astimezone(UTC)


def local_zone_name() -> str:
    """This machine's IANA zone: $TZ, else where /etc/localtime points, else /etc/timezone, else UTC."""
    candidates = [os.environ.get("TZ", "").removeprefix(":")]
    localtime = Path("/etc/localtime")
    if localtime.is_symlink():
        target = str(localtime.resolve())
        if "zoneinfo/" in target:
            candidates.append(target.split("zoneinfo/", 1)[1])
    with contextlib.suppress(OSError):
        candidates.append(Path("/etc/timezone").read_text(encoding="utf-8").strip())
    for name in candidates:
        if name:
            try:
                zone_named(name)
            except ValueError:
                continue
            return name
    return DEFAULT_ZONE


def _minutes(at: time) -> int:
    return at.hour * 60 + at.minute


def _aware(now: datetime) -> datetime:
    if now.tzinfo is None:
        raise ValueError("a window needs an aware datetime (with its zone), not a naive one")
    return now


def _wall_instants(day: date, wall: time, zone: tzinfo) -> list[datetime]:
    """The instants (in UTC) whose local time in ``zone`` is ``wall`` on ``day``: the hour
    repeated when the clocks go back has two; for a time skipped when they go forward these are
    the readings on either side of the gap (the offset change itself is a candidate of its own)."""
    return [datetime.combine(day, wall, tzinfo=zone).replace(fold=fold).astimezone(UTC) for fold in (0, 1)]


def _offset_changes(start: datetime, end: datetime, zone: tzinfo) -> list[datetime]:
    """The instants (in UTC) in (start, end] at which ``zone``'s offset changes, to the second."""

    def offset(seconds: int) -> timedelta | None:
        return datetime.fromtimestamp(seconds, zone).utcoffset()

    changes: list[datetime] = []
    at, last = int(_aware(start).timestamp()), int(end.timestamp())
    while at < last:
        following = at + 3600
        if offset(at) != offset(following):
            low, high = at, following
            while high - low > 1:
                middle = (low + high) // 2
                low, high = (middle, high) if offset(middle) == offset(low) else (low, middle)
            changes.append(datetime.fromtimestamp(high, UTC))
        at = following
    return changes


def _first(after: datetime, candidates: list[datetime], holds: Callable[[datetime], bool]) -> datetime:
    """The earliest candidate later than ``after`` at which ``holds`` is true (compared in UTC:
    two datetimes of one zone compare by wall time, whatever their fold)."""
    moment = _aware(after).astimezone(UTC)
    found = sorted(at for at in candidates if at > moment and holds(at))
    if not found:
        raise ValueError("no such moment within the next few days")
    return found[0]
