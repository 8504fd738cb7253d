"""Single values drawn from the demo's one seeded RNG: counts, dates, timestamps, phone numbers,
e-mail addresses and free text, with a share of NULLs and empty texts mixed in, as real records
have them.

Every draw goes through the same ``random.Random`` in a fixed order, so a seed always gives the
same values.
"""

from __future__ import annotations

import random
from bisect import bisect
from collections.abc import Sequence
from datetime import date, datetime
from typing import TypeVar

from tui_migrator.demo.people import ASCII_NAMES, MAIL_DOMAINS
from tui_migrator.demo.places import Region

T = TypeVar("T")

# Share of nullable sensitive values left NULL, and of free-text values left as "".
NULL_RATE = 0.07
EMPTY_TEXT_RATE = 0.04
# Share of timestamps that carry microseconds (the rest are whole seconds, as many systems store).
MICROSECOND_RATE = 0.3

# Fixed reference date: the data must never depend on when it was built.
BASE_DAY = date(2024, 1, 1).toordinal()


class RandomValues:
    """Draws values from ``rng``; NULLs and empty texts at the demo's rates unless ``complete``."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._null_rate = NULL_RATE
        self._empty_rate = EMPTY_TEXT_RATE

    @property
    def rng(self) -> random.Random:
        return self._rng

    def set_complete(self, complete: bool) -> None:
        """A complete record has no NULL and no empty text (patient 1 is, so there is always a
        full example)."""
        self._null_rate = 0.0 if complete else NULL_RATE
        self._empty_rate = 0.0 if complete else EMPTY_TEXT_RATE

    def count(self, thresholds: Sequence[float]) -> int:
        return bisect(thresholds, self._rng.random())

    def maybe(self, value: T) -> T | None:
        """The value, or NULL for a share of NULL_RATE."""
        return None if self._rng.random() < self._null_rate else value

    def text(self, pool: Sequence[str]) -> str | None:
        """A free-text value from the pool, sometimes NULL or empty; now and then two lines."""
        rng = self._rng
        draw = rng.random()
        if draw < self._null_rate:
            return None
        if draw < self._null_rate + self._empty_rate:
            return ""
        text = rng.choice(pool)
        if draw > 0.9:
            text += "\n" + rng.choice(pool)
        return text

    def day_since(self, first_day: int) -> date:
        return date.fromordinal(self._rng.randrange(first_day, BASE_DAY + 1))

    def timestamp_since(self, first_day: int) -> datetime:
        """A daytime timestamp between first_day and the base date, sometimes with microseconds."""
        rng = self._rng
        day = date.fromordinal(rng.randrange(first_day, BASE_DAY + 1))
        micro = rng.randrange(1, 1_000_000) if rng.random() < MICROSECOND_RATE else 0
        return datetime(
            day.year,
            day.month,
            day.day,
            rng.randrange(7, 20),
            rng.randrange(60),
            rng.randrange(60),
            micro,
        )

    def phone(self, region: Region) -> str:
        rng = self._rng
        subscriber = rng.randrange(100_000, 9_999_999)
        if rng.random() < 0.15:  # written the local way, with the trunk prefix in brackets
            return f"{region.phone_prefix} (0){rng.randrange(10, 99)} {subscriber}"
        return f"{region.phone_prefix} {rng.randrange(10, 999)} {subscriber}"

    def email(self, first_name: str, last_name: str) -> str | None:
        rng = self._rng
        draw = rng.random()
        if draw < self._null_rate:
            return None
        if draw < self._null_rate + self._empty_rate:
            return ""
        if draw > 0.95:  # an internationalised address keeps the name's own letters
            local = f"{first_name}.{last_name}".lower().replace(" ", "")
        else:
            local = f"{ASCII_NAMES[first_name]}.{ASCII_NAMES[last_name]}"
            if draw > 0.6:
                local += str(rng.randrange(1, 99))
        return f"{local}@{rng.choice(MAIL_DOMAINS)}"
