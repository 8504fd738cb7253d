"""Drawing one of several outcomes with given probabilities from a single ``random()`` call.

One draw per choice keeps the seeded RNG's sequence, and hence the whole demo dataset, the
same for a seed whatever else changes around it.
"""

from __future__ import annotations

from itertools import accumulate


def thresholds(*probabilities: float) -> tuple[float, ...]:
    """Bisect boundaries for drawing outcome i with probabilities[i] from one random().

    The last boundary is left out, so rounding in the running sum can never yield an index
    past the end.
    """
    return tuple(accumulate(probabilities))[:-1]
