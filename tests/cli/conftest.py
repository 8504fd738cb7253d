"""Fixtures of the CLI tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from tui_migrator.common.settings import Settings


@pytest.fixture
def engine(settings: Settings) -> Iterator[sa.Engine]:
    """A plain engine on the test's database, for checking what the CLI wrote."""
    created = sa.create_engine(settings.effective_database_url)
    yield created
    created.dispose()
