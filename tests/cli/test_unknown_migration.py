"""An id no migration of the database has is one error everywhere it can be given: exit code 2,
the code `unknown_migration` (HTTP 404), the id named, the list command suggested — and nothing
written."""

from __future__ import annotations

import pytest

from tests.support.cli import run
from tests.support.migration_helpers import raw_dump
from tui_migrator.common.settings import Settings
from tui_migrator.service.facade import MigratorService


@pytest.mark.parametrize(
    "argv",
    [
        ["status", "nope"],
        ["audit", "--migration", "nope"],
        ["failed", "nope"],
        ["report", "nope"],
        ["cancel", "nope", "--reason", "why"],
        ["pause", "nope"],
        ["continue", "nope"],
        ["resume", "nope", "--yes"],
        ["rollback", "nope", "--confirm"],
        ["purge-backups", "nope", "--confirm"],
        ["sweep", "nope"],
    ],
)
def test_an_unknown_id_is_the_same_error_everywhere(
    settings: Settings, service: MigratorService, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    before = raw_dump(service.engine)
    code, payload = run(settings, capsys, *argv)
    assert code == 2, payload
    assert payload["errorCode"] == "unknown_migration"
    assert "'nope'" in payload["error"] and "tui-migrator" in payload["hint"] and " list" in payload["hint"]
    assert raw_dump(service.engine) == before
