"""The database failing under a command — its server restarting, its connection lost, its disk
full — is said in its words by every face, not as an internal error to report: the CLI (exit 1,
errorCode database_error), the HTTP API (503) and the TUI's notification. Any other exception
stays unexpected (its class only: a driver's message may quote a record's value)."""

from __future__ import annotations

import sqlite3

import pytest
import sqlalchemy as sa

from tests.support.cli import run
from tests.support.faults import server_restarting
from tui_migrator.common.errors import DatabaseUnavailable
from tui_migrator.common.settings import Settings
from tui_migrator.service import failures
from tui_migrator.service.facade import MigratorService

RESTARTING = server_restarting()


def disk_full() -> sa.exc.OperationalError:
    full = sqlite3.OperationalError("database or disk is full")
    full.sqlite_errorcode = sqlite3.SQLITE_FULL  # as SQLite's own error carries it
    return sa.exc.OperationalError("INSERT", {}, full)


def raising(error: BaseException) -> object:
    def fail(*_args: object, **_options: object) -> None:
        raise error

    return fail


def test_an_operational_error_is_said_plainly_and_nothing_else_is() -> None:
    said = failures.plain(RESTARTING)
    assert isinstance(said, DatabaseUnavailable)
    assert said.message == "The database failed: terminating connection due to administrator command."
    assert said.hint is not None and "run the command again" in said.hint
    full = failures.plain(disk_full())
    assert full is not None and full.message == "The database's disk is full (database or disk is full)."
    assert full.hint is not None and "Free space" in full.hint
    # What may quote a value stays unexpected: a constraint's or a type's refusal, anything else.
    refused = sa.exc.IntegrityError("UPDATE", {}, Exception("Key (ssn)=(078-05-1120) already exists"))
    assert failures.plain(refused) is None
    assert failures.plain(RuntimeError("boom")) is None


def test_the_cli_says_the_database_failed_and_exits_1(
    settings: Settings,
    service: MigratorService,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(MigratorService, "list_migrations", raising(RESTARTING))
    code, payload = run(settings, capsys, "list")
    assert code == 1
    assert payload["errorCode"] == "database_error"
    assert payload["error"] == "The database failed: terminating connection due to administrator command."
    assert "run the command again" in payload["hint"]

    monkeypatch.setattr(MigratorService, "list_migrations", raising(RuntimeError("boom")))
    code, payload = run(settings, capsys, "list")
    assert (code, payload["error"]) == (1, "Internal error (RuntimeError).")
