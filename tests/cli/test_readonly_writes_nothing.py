"""Read-only means read-only: every command, run by a viewer or with --readonly, leaves the
database as it was — on SQLite every byte of the file — apart from the audit entry of a
refusal. The one exception is a viewer's own API token, which a viewer (without --readonly) may
create: that writes its row and its audit entry, nothing else. The list of commands is checked
against the CLI's own, so a new command must join it."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.support.cli import where
from tests.support.databases import ADMIN, BOTH_BACKENDS
from tests.support.db_state import database_state, sqlite_file_bytes, without_audit_head
from tui_migrator.cli.main import main
from tui_migrator.cli.parser import build_parser
from tui_migrator.common.settings import Settings
from tui_migrator.crypto.keys import generate_master_key, write_key_file
from tui_migrator.service.facade import MigratorService
from tui_migrator.storage.audit_operations import AuditOperation
from tui_migrator.storage.tables import api_tokens_table

pytestmark = BOTH_BACKENDS

MIGRATION = "{migration}"
ADMIN_TOKEN = "{admin_token}"
# Commands that only read: they succeed and change nothing at all.
READS = [
    ["health"],
    ["audit"],
    ["audit", "--verify"],
    ["list"],
    ["status", MIGRATION],
    ["failed", MIGRATION],
    ["report", MIGRATION],
    # The evidence bundle is written outside the database; a viewer's or a read-only export is
    # not even recorded in the trail (as audit --verify is not).
    ["report", MIGRATION, "--evidence", "{evidence}"],
    ["estimate", "--batch-size", "50"],
    ["operators", "list"],
    ["tokens", "list"],
    ["keys", "list"],
    ["mapping"],
    ["init"],  # on a database already set up: says so, changes nothing
]
# Commands that change something: refused, with the refusal audited and nothing else written.
CHANGES = [
    ["start", "--yes", "--batch-size", "50"],
    ["pause", MIGRATION],
    ["continue", MIGRATION],
    ["cancel", MIGRATION, "--reason", "Trying as a viewer"],
    ["resume", MIGRATION, "--yes"],
    ["rollback", MIGRATION, "--confirm"],
    ["purge-backups", MIGRATION, "--confirm"],
    ["sweep", MIGRATION, "--yes"],
    ["worker", MIGRATION],
    ["operators", "grant", "mallory", "super_admin"],
    ["operators", "revoke", ADMIN],
    ["tokens", "revoke", ADMIN_TOKEN],
    ["demo", "--yes", "--patients", "10", "--organizations", "2"],
    ["audit", "--restore-triggers"],
    ["keys", "rotate", "--yes"],
    ["keys", "rotate-master", "--new-key-file", "{new_key}", "--yes"],
]
# A viewer's own credentials: refused under --readonly like any change; without it, a viewer may
# hold API tokens (each acts with the viewer's own role), and creating one writes its row only.
OWN_TOKENS = [["tokens", "create", "--expires", "30"]]
# Commands outside the database: keys generate writes a key file only where it is told to;
# serve runs until stopped, each request an operation of its token's operator (tests/http);
# evidence verify reads a bundle's files with the master key alone (tests/cli/test_evidence.py).
OUTSIDE = {"keys generate", "serve", "evidence verify"}
WHO = [("vera", False), ("vera", True), (ADMIN, True)]


def _cli_commands() -> set[str]:
    """Every command (and sub-action) the CLI offers."""
    names: set[str] = set()
    for action in build_parser()._subparsers._group_actions:  # type: ignore[union-attr]
        assert isinstance(action, argparse._SubParsersAction)
        for name, parser in action.choices.items():
            nested = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
            names |= {f"{name} {sub}" for sub in nested[0].choices} if nested else {name}
    return names


def _name(argv: list[str]) -> str:
    return f"{argv[0]} {argv[1]}" if argv[0] in ("operators", "keys", "tokens", "evidence") else argv[0]


def test_every_command_is_in_this_test() -> None:
    assert {_name(argv) for argv in READS + CHANGES + OWN_TOKENS} | OUTSIDE == _cli_commands()


@pytest.fixture
def prepared(service: MigratorService, settings: Settings, tmp_path: Path) -> dict[str, str]:
    """A completed migration and the administrator's API token to act on, a viewer, a folder
    for an evidence bundle and a new master key's file."""
    record = service.start({"batch_size": 50, "data_categories": ["DEMOGRAPHICS"]})
    write_key_file(tmp_path / "new.key", generate_master_key())
    _, admin_token = service.create_api_token(None)
    service.grant("vera", "viewer")
    return {
        "migration": record.id,
        "admin_token": admin_token.token_id,
        "evidence": str(tmp_path / "evidence"),
        "new_key": str(tmp_path / "new.key"),
    }


@pytest.mark.parametrize(("user", "readonly"), WHO, ids=["viewer", "viewer-readonly", "admin-readonly"])
def test_no_command_of_a_viewer_or_a_readonly_session_writes(
    settings: Settings,
    prepared: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    user: str,
    readonly: bool,
) -> None:
    monkeypatch.setattr("tui_migrator.storage.operators.current_os_user", lambda: user)
    options = [*where(settings), "--json", *(["--readonly"] if readonly else [])]
    for argv in READS:
        command = [part.format(**prepared) for part in argv]
        before, before_bytes = database_state(settings), sqlite_file_bytes(settings)
        code = main([*command, *options])
        output = capsys.readouterr().out
        assert code == 0, (command, output)
        assert database_state(settings) == before, command
        assert sqlite_file_bytes(settings) == before_bytes, command
    refused = CHANGES if not readonly else CHANGES + OWN_TOKENS
    for argv in refused:
        command = [part.format(**prepared) for part in argv]
        before = database_state(settings)
        code = main([*command, *options])
        refusal = json.loads(capsys.readouterr().out)
        assert code == 3, (command, refusal)
        assert refusal["errorCode"] == "permission_denied", (command, refusal)
        after = database_state(settings)
        assert without_audit_head(after) == without_audit_head(before), command
        new_entries = after["audit"][len(before["audit"]) :]
        assert after["audit"][: len(before["audit"])] == before["audit"], command
        assert [operation for _, operation in new_entries] == [AuditOperation.PERMISSION_DENIED], command
    if readonly:
        return
    for argv in OWN_TOKENS:
        before = database_state(settings)
        code = main([*argv, *options])
        created = json.loads(capsys.readouterr().out)
        assert code == 0 and created["data"]["operator"] == user, (argv, created)
        after = database_state(settings)
        changed = {
            name
            for name, rows in without_audit_head(after).items()
            if rows != without_audit_head(before).get(name)
        }
        assert changed == {api_tokens_table.name}, argv
        new_entries = after["audit"][len(before["audit"]) :]
        assert [operation for _, operation in new_entries] == [AuditOperation.API_TOKEN_CREATED], argv


@pytest.mark.backends("sqlite")
def test_a_readonly_session_leaves_a_sqlite_files_journal_mode_as_it_is(
    settings: Settings, service: MigratorService, prepared: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """The tool's connections switch a SQLite file to WAL (README, 'The SQLite library'); one an
    application switched back to a rollback journal stays so under --readonly, byte for byte."""
    file = Path(settings.effective_database_url.removeprefix("sqlite:///"))
    service.engine.dispose()  # the switch back needs the file to itself
    engine = sa.create_engine(settings.effective_database_url)
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode = DELETE").scalar_one() == "delete"
    engine.dispose()
    options = [*where(settings), "--json", "--readonly"]
    for argv in READS:
        command = [part.format(**prepared) for part in argv]
        before = sqlite_file_bytes(settings)
        code = main([*command, *options])
        assert code == 0, (command, capsys.readouterr().out)
        assert sqlite_file_bytes(settings) == before, command
        assert not Path(f"{file}-wal").exists(), command
    capsys.readouterr()
