"""The SQLite library's WAL-reset bug (storage/sqlite_library.py): named in the health report of
a SQLite database when the linked library has it, with the way out; never on PostgreSQL, and
never for a library that is fixed or older than write-ahead logs."""

from __future__ import annotations

import sqlite3

import pytest

from tests.support.databases import BOTH_BACKENDS
from tui_migrator.service.facade import MigratorService
from tui_migrator.storage import sqlite_library


@pytest.mark.parametrize(
    ("version", "affected"),
    [
        ((3, 6, 23), False),  # before write-ahead logs
        ((3, 7, 0), True),
        ((3, 40, 1), True),
        ((3, 51, 2), True),
        ((3, 51, 3), False),
        ((3, 52, 0), False),
        ((4, 0, 0), False),
    ],
)
def test_the_affected_releases_are_3_7_0_to_3_51_2(version: tuple[int, int, int], affected: bool) -> None:
    warning = sqlite_library.wal_reset_bug_warning(version)
    assert (warning is not None) is affected
    if warning is not None:
        assert sqlite_library.version_text(version) in warning and "3.51.3" in warning
        assert "The SQLite library" in warning  # the README section that says what to do


def test_the_linked_version_is_the_librarys_not_the_modules() -> None:
    assert sqlite_library.version_text(sqlite_library.linked_version()) == sqlite3.sqlite_version


@BOTH_BACKENDS
@pytest.mark.parametrize("linked", [(3, 40, 1), (3, 51, 3)])
def test_health_names_an_affected_library_on_sqlite_only(
    service: MigratorService, monkeypatch: pytest.MonkeyPatch, linked: tuple[int, int, int]
) -> None:
    monkeypatch.setattr(sqlite_library, "linked_version", lambda: linked)
    report = service.health()
    named = [line for line in report.recommendations if "WAL-reset bug" in line]
    if service.engine.dialect.name == "sqlite":
        assert report.system_health.sqlite_version == sqlite_library.version_text(linked)
        # First when there (no sweep is put off): before the routine advice, where an operator looks.
        affected = linked < sqlite_library.WAL_RESET_BUG_FIXED
        assert report.recommendations[:1] == named if affected else named == []
    else:
        assert report.system_health.sqlite_version is None and named == []
