"""The application's writes at the moment verification counts what is left (the tests of
engine/runner.py's SEAL_AGAIN_ROUNDS and of rows written with a NULL key during a run)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tui_migrator.engine import verification


def write_before_each_verification(
    monkeypatch: pytest.MonkeyPatch, write: Callable[[int], None], *, times: int
) -> list[dict[str, Any]]:
    """Run ``write`` (the application's) before each of the first ``times`` verifications; the
    results of every verification, in order."""
    real = verification.verify_migration
    results: list[dict[str, Any]] = []

    def verify(*args: Any, **kwargs: Any) -> verification.VerificationResult:
        if len(results) < times:
            write(len(results))
        result = real(*args, **kwargs)
        results.append(result.to_json())
        return result

    monkeypatch.setattr(verification, "verify_migration", verify)
    return results
