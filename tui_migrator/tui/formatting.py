"""Times and numbers as an operator reads them: local time zone, thousands separators, status in words."""

from __future__ import annotations

from datetime import datetime


def local_time(moment: datetime | str | None, *, seconds: bool = True) -> str:
    """An aware UTC time (or ISO text) in the operator's local time zone; "" for None."""
    if moment is None:
        return ""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    pattern = "%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M"
    return moment.astimezone().strftime(pattern)


def duration(seconds: float | None) -> str:
    """1:02:03, 2:03 or 5 s."""
    if seconds is None:
        return "-"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}:{minutes:02d}:{secs:02d}"
    if minutes:
        return f"{minutes}:{secs:02d}"
    return f"{secs} s"


def count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"
