"""How many cores this process may run on."""

from __future__ import annotations

import os


def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity where the platform tells it (a
    ``taskset``, a container's cpuset: a 64-core host may give it 2), else the machine's count.
    (A CPU quota, such as ``docker --cpus``, is time on every core, not fewer cores: not seen.)"""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1
