"""The estimate's concurrency advice: the seed's figures, and past how many cores more
concurrency adds no worker processes with this tool (one per usable core)."""

from __future__ import annotations

from tui_migrator.service.report import recommendations


def test_postgresql_advice_says_where_more_concurrency_adds_batches_not_processes() -> None:
    advice = recommendations(100_000, "postgresql")
    assert advice.recommended_concurrency == 5  # the seed's production range starts there
    assert "one per core this machine lets the tool use" in advice.concurrency_note
    assert "past those cores, more adds batches in flight" in advice.concurrency_note


def test_sqlite_advice_is_two_for_its_one_writer() -> None:
    advice = recommendations(100_000, "sqlite")
    assert advice.recommended_concurrency == 2
    assert "one writer at a time" in advice.concurrency_note
