"""A status word an operator types is checked against the real statuses."""

from __future__ import annotations

import pytest

from tui_migrator.common.errors import BadInput
from tui_migrator.storage.migration_status import Status, parse_status


def test_a_status_word_parses_to_its_status() -> None:
    assert parse_status("rolled_back") is Status.ROLLED_BACK


def test_an_unknown_status_word_is_refused_listing_the_real_ones() -> None:
    with pytest.raises(BadInput, match="'done' is not a migration status") as refused:
        parse_status("done")
    assert refused.value.hint is not None and "rolled_back" in refused.value.hint
