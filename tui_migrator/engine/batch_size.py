"""The one batch-size policy: the configured size, or for ``auto`` a size that adapts towards
batches of about half a second (like pt-online-schema-change's chunk-time), and the seed's
guideline for a dataset of a given size.

The runner starts from :func:`initial` and moves with :func:`adapt`; a worker that joins starts
where the migration runs now; the estimate assumes the size :func:`steady` settles at; the
estimate's recommendation is :func:`recommended`.
"""

from __future__ import annotations

from tui_migrator.common.migration_config import MigrationConfig

AUTO_TARGET_SECONDS = 0.5
AUTO_INITIAL = 100
AUTO_MIN = 10
AUTO_MAX = 1000


def initial(config: MigrationConfig, *, running_size: int | None = None) -> int:
    """The first batch size: the configured one, or for ``auto`` the size the migration runs
    at now (``running_size``, for a worker that joins it), else a small start."""
    if not config.auto_batch_size:
        return int(config.batch_size)
    return running_size or AUTO_INITIAL


def adapt(current: int, *, rows: int, seconds: float) -> int:
    """The ``auto`` size after a batch of ``rows`` took ``seconds``.

    It moves half way towards the target each batch, so one slow batch does not whipsaw it."""
    if not rows or seconds <= 0:
        return current
    wanted = AUTO_TARGET_SECONDS / (seconds / rows)
    return _bounded((current + wanted) / 2)


def largest(config: MigrationConfig) -> int:
    """The most rows a batch of the migration may hold: its size, or for ``auto`` the largest."""
    return AUTO_MAX if config.auto_batch_size else int(config.batch_size)


def steady(config: MigrationConfig, per_row_seconds: float) -> int:
    """The size the migration settles at when each row takes ``per_row_seconds``."""
    if not config.auto_batch_size:
        return int(config.batch_size)
    return _bounded(AUTO_TARGET_SECONDS / per_row_seconds) if per_row_seconds else AUTO_MAX


def recommended(rows: int) -> int:
    """The seed's guideline: small batches for small datasets, the largest from 10,000 rows."""
    if rows < 1_000:
        return 100
    if rows <= 10_000:
        return 500
    return 1000


def _bounded(size: float) -> int:
    return int(max(AUTO_MIN, min(AUTO_MAX, size)))
