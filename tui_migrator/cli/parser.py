"""The command line: global options and one subcommand per service operation."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import NoReturn

from tui_migrator import __version__
from tui_migrator.common.config_file import FORMATS
from tui_migrator.common.errors import BadInput
from tui_migrator.common.migration_config import (
    MAX_BATCH_SIZE,
    MAX_CONCURRENCY,
    MIN_BATCH_SIZE,
    MIN_CONCURRENCY,
    MigrationConfig,
)
from tui_migrator.service.key_rotation import DEFAULT_BATCH_SIZE as DEFAULT_ROTATION_BATCH_SIZE


class ArgumentParser(argparse.ArgumentParser):
    """Reports usage errors as :class:`BadInput` so ``--json`` callers get JSON, exit code 2."""

    def error(self, message: str) -> NoReturn:
        raise BadInput(f"{self.prog}: {message}.", hint=f"See: {self.prog} --help")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _global_options(parser: argparse.ArgumentParser, *, top_level: bool) -> None:
    # On subcommands the defaults are SUPPRESS so an option given before the subcommand is not
    # reset by the subcommand's own default.
    default = None if top_level else argparse.SUPPRESS
    flag_default = False if top_level else argparse.SUPPRESS
    group = parser.add_argument_group("global options")
    group.add_argument(
        "--db",
        dest="database_url",
        metavar="URL",
        default=default,
        help="SQLAlchemy database URL (env TUI_MIGRATOR_DB); default: the demo SQLite database",
    )
    group.add_argument(
        "--schema",
        dest="schema_path",
        metavar="FILE",
        default=default,
        help="schema mapping TOML file (env TUI_MIGRATOR_SCHEMA); default: the built-in demo profile",
    )
    group.add_argument(
        "--data-dir",
        dest="data_dir",
        metavar="DIR",
        default=default,
        help="where the demo database and key file live (env TUI_MIGRATOR_DATA_DIR)",
    )
    group.add_argument(
        "--master-key-file",
        dest="master_key_file",
        metavar="FILE",
        default=default,
        help="master key file (env TUI_MIGRATOR_MASTER_KEY_FILE); TUI_MIGRATOR_MASTER_KEY takes precedence",
    )
    group.add_argument(
        "--readonly",
        action="store_true",
        default=flag_default,
        help="refuse every change (the TUI hides mutating actions)",
    )
    group.add_argument(
        "--json",
        action="store_true",
        default=flag_default,
        help='print one JSON object: {"success": ..., "data": ...}',
    )
    group.add_argument(
        "-v", "--verbose", action="store_true", default=flag_default, help="log progress details to stderr"
    )


def _subcommand(
    subparsers: argparse._SubParsersAction[ArgumentParser],
    name: str,
    help_text: str,
) -> argparse.ArgumentParser:
    sub = subparsers.add_parser(name, help=help_text, description=help_text)
    _global_options(sub, top_level=False)
    return sub


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="tui-migrator",
        description="Encrypt plaintext medical records in place. With no command, opens the TUI.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _global_options(parser, top_level=True)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=ArgumentParser)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        return _subcommand(commands, name, help_text)

    command(
        "init",
        "set tui-migrator up on the database: its tables, a master key if there is none, and you "
        "as its first super_admin (with no --db: the demo database)",
    )
    command("health", "engine, keys, backup disk and recent activity")

    audit = command("audit", "show the audit trail, or verify its hash chain")
    audit.add_argument("--limit", type=positive_int, default=50, help="entries to show (default 50)")
    audit.add_argument("--migration", dest="migration_id", metavar="ID", help="only this migration's entries")
    audit.add_argument(
        "--verify",
        action="store_true",
        help="recompute the whole chain; exit 1 and name the first bad entry if broken",
    )
    audit.add_argument(
        "--restore-triggers",
        action="store_true",
        help="put back the triggers that keep tm_audit append-only (super_admin)",
    )

    operators = command("operators", "list, grant or revoke operator roles")
    operator_actions = operators.add_subparsers(
        dest="operators_action", metavar="ACTION", required=True, parser_class=ArgumentParser
    )
    _subcommand(operator_actions, "list", "who has which role")
    grant = _subcommand(operator_actions, "grant", "give USER the role ROLE (super_admin or viewer)")
    grant.add_argument("username", metavar="USER")
    grant.add_argument("role", metavar="ROLE")
    revoke = _subcommand(operator_actions, "revoke", "remove USER's role")
    revoke.add_argument("username", metavar="USER")

    tokens = command("tokens", "create, list or revoke API tokens (each acts as its operator)")
    token_actions = tokens.add_subparsers(
        dest="tokens_action", metavar="ACTION", required=True, parser_class=ArgumentParser
    )
    create_token = _subcommand(
        token_actions, "create", "a new API token for you, shown once (store it at once)"
    )
    create_token.add_argument(
        "--expires",
        dest="expires_days",
        type=int,
        metavar="DAYS",
        help="expire after DAYS days, 1-3650 (default: never)",
    )
    _subcommand(token_actions, "list", "your API tokens (a super_admin's: everyone's), never their secrets")
    revoke_token = _subcommand(token_actions, "revoke", "revoke the API token TOKEN_ID at once")
    revoke_token.add_argument("token_id", metavar="TOKEN_ID")

    demo = command("demo", "(re)create the demo ParkML database")
    demo.add_argument("--patients", type=positive_int, default=2000, help="number of patients (default 2000)")
    demo.add_argument(
        "--organizations", type=positive_int, default=4, help="number of organizations (default 4)"
    )
    demo.add_argument("--seed", type=int, default=7, help="random seed; the same seed gives the same data")
    demo.add_argument(
        "--yes", action="store_true", help="do not ask before replacing an existing demo database"
    )

    keys = command("keys", "list data keys, or generate a master key")
    key_actions = keys.add_subparsers(
        dest="keys_action", metavar="ACTION", required=True, parser_class=ArgumentParser
    )
    _subcommand(key_actions, "list", "data keys per organization (never the key material)")
    generate = _subcommand(key_actions, "generate", "make a new random master key")
    generate.add_argument(
        "--output", metavar="FILE", help="write it to FILE with mode 0600 (default: print it to stdout)"
    )
    rotate = _subcommand(
        key_actions,
        "rotate",
        "a new data key generation per organization, and a rotation that re-seals every older token with it",
    )
    _organization_option(rotate, "rotate this organization's key (repeat for several; default every one)")
    _batch_options(rotate, default_batch_size=DEFAULT_ROTATION_BATCH_SIZE)
    _schedule_options(rotate)
    rotate.add_argument("--yes", action="store_true", help="start without asking for confirmation")
    rotate.add_argument(
        "--detach", action="store_true", help="run in a background worker that survives the terminal closing"
    )
    rotate_master = _subcommand(
        key_actions,
        "rotate-master",
        "re-wrap every data key under a new master key, in one transaction",
    )
    rotate_master.add_argument(
        "--new-key-file",
        type=Path,
        required=True,
        metavar="FILE",
        help="the new master key's file (make it with: keys generate --output FILE)",
    )
    rotate_master.add_argument("--yes", action="store_true", help="rotate without asking for confirmation")

    command("mapping", "show the schema mapping checked against the database")

    estimate = command(
        "estimate", "records, time and storage a migration would take, from a measured calibration"
    )
    _config_options(estimate)

    start = command("start", "start an encryption migration")
    _config_options(start)
    start.add_argument("--yes", action="store_true", help="start without asking for confirmation")
    start.add_argument(
        "--detach", action="store_true", help="run in a background worker that survives the terminal closing"
    )

    status = command("status", "progress and state of one migration")
    status.add_argument("migration_id", metavar="ID")

    listing = command("list", "all migrations, newest first")
    listing.add_argument("--limit", type=positive_int, default=20, help="how many (default 20)")
    listing.add_argument("--status", help="only migrations in this status")

    cancel = command("cancel", "stop a migration after its in-flight batches")
    cancel.add_argument("migration_id", metavar="ID")
    cancel.add_argument("--reason", required=True, help="why (recorded in the audit trail)")

    for name, text in (
        ("pause", "let in-flight batches finish, then wait (heartbeat kept)"),
        ("continue", "continue a paused migration"),
    ):
        paused = command(name, text)
        paused.add_argument("migration_id", metavar="ID")

    resume = command(
        "resume", "continue a cancelled, failed or interrupted migration; retries failed records"
    )
    resume.add_argument("migration_id", metavar="ID")
    resume.add_argument("--yes", action="store_true", help="resume without asking for confirmation")
    resume.add_argument("--detach", action="store_true", help="run in a background worker")

    rollback = command("rollback", "restore every value a migration encrypted")
    rollback.add_argument("migration_id", metavar="ID")
    rollback.add_argument("--confirm", action="store_true", help="required: rollback rewrites data")
    rollback.add_argument(
        "--detach",
        action="store_true",
        help="run in a background process that survives the terminal; follow it with status",
    )
    # Given by a detached rollback's requester to the process it starts (not for operators).
    rollback.add_argument("--ticket", help=argparse.SUPPRESS)

    failed = command("failed", "records a migration could not process, and why")
    failed.add_argument("migration_id", metavar="ID")

    report = command("report", "completion report: counts, timings, throughput, failures, verification")
    report.add_argument("migration_id", metavar="ID")
    report.add_argument(
        "--evidence",
        type=Path,
        metavar="DIR",
        help="write a signed evidence bundle for auditors into DIR (new or empty): JSON, a Markdown "
        "summary, the audit entries with their proofs and a manifest; never record values",
    )

    evidence = command("evidence", "check an evidence bundle written by report --evidence")
    evidence_actions = evidence.add_subparsers(
        dest="evidence_action", metavar="ACTION", required=True, parser_class=ArgumentParser
    )
    verify_evidence = _subcommand(
        evidence_actions,
        "verify",
        "recompute every file's SHA-256 and the manifest's signature with the master key (no "
        "database needed); name any file altered, missing or added",
    )
    verify_evidence.add_argument("directory", type=Path, metavar="DIR")

    purge = command("purge-backups", "drop a migration's sealed backup tables")
    purge.add_argument("migration_id", metavar="ID")
    purge.add_argument("--confirm", action="store_true", help="required: backups cannot be restored")

    sweep = command(
        "sweep",
        "remove the plaintext a completed migration left in the database files, and prove it "
        "by searching their raw bytes",
    )
    sweep.add_argument("migration_id", metavar="ID")
    sweep.add_argument(
        "--yes",
        action="store_true",
        help="PostgreSQL: run VACUUM FULL (it locks each table while it rewrites it) without asking",
    )
    sweep.add_argument(
        "--sample-rows",
        type=positive_int,
        default=200,
        metavar="N",
        help="rows per table whose values are searched for (default 200)",
    )

    worker = command(
        "worker",
        "run or take over a migration in this process (used by --detach); on PostgreSQL, join "
        "one another worker is running and share its batches",
    )
    worker.add_argument("migration_id", metavar="ID")

    serve = command(
        "serve",
        "serve the HTTP API (/api/data-migration) until Ctrl-C; each request acts as the "
        "operator of its API token (see tokens create)",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=positive_int, default=8750, help="TCP port (default 8750)")
    serve.add_argument("--certfile", type=Path, metavar="PEM", help="TLS certificate (with --keyfile)")
    serve.add_argument("--keyfile", type=Path, metavar="PEM", help="the TLS certificate's private key")
    serve.add_argument(
        "--insecure-behind-proxy",
        action="store_true",
        help="listen on another address without TLS, because a TLS-terminating proxy is in front",
    )
    serve.add_argument(
        "--max-body-bytes",
        type=positive_int,
        default=64 * 1024,
        metavar="N",
        help="refuse request bodies larger than N bytes (default 65536)",
    )
    return parser


def _batch_options(parser: argparse.ArgumentParser, *, default_batch_size: object) -> None:
    parser.add_argument(
        "--batch-size",
        metavar="N|auto",
        help=f"records per batch, {MIN_BATCH_SIZE}-{MAX_BATCH_SIZE}, or auto (default {default_batch_size})",
    )
    parser.add_argument(
        "--max-concurrency",
        metavar="N",
        help="batches in flight at once, each sealed and verified by a worker process (up to the "
        f"cores), {MIN_CONCURRENCY}-{MAX_CONCURRENCY} (default {MigrationConfig().max_concurrency})",
    )


def _organization_option(parser: argparse.ArgumentParser, help_text: str) -> None:
    parser.add_argument(
        "--organization", dest="organization_ids", action="append", metavar="ID", help=help_text
    )


def _schedule_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--window",
        metavar="HH:MM-HH:MM",
        help="take batches only inside this daily maintenance window (e.g. 01:00-05:00, or 22:00-04:00 "
        "across midnight); outside it the migration pauses itself and continues when it opens",
    )
    parser.add_argument(
        "--timezone",
        metavar="ZONE",
        help="the IANA time zone of --window and --not-before, e.g. Europe/Berlin (default: this machine's)",
    )
    parser.add_argument(
        "--not-before",
        dest="not_before",
        metavar="TIME",
        help="take the first batch no earlier than this ISO time, e.g. 2026-12-24T01:00 (local in "
        "--timezone) or 2026-12-24T01:00+01:00; with --window, at the first opening after it",
    )


def _config_options(parser: argparse.ArgumentParser) -> None:
    """The MigrationConfig of estimate and start: a --config file and an option per key. Every
    option's default is None, "not given", so a given option overrides the file's key and one
    not given leaves it; the defaults themselves are MigrationConfig's, applied where the two
    meet (migration_commands.config_values)."""
    defaults = MigrationConfig()
    parser.add_argument(
        "--config",
        dest="config_file",
        type=Path,
        metavar="FILE",
        help=f"a MigrationConfig file, {' or '.join(FORMATS.values())} ({', '.join(FORMATS)}) with the "
        "seed's camelCase keys, each optional; the options below override it",
    )
    _batch_options(parser, default_batch_size=defaults.batch_size)
    _organization_option(parser, "only this organization (repeat for several; default all)")
    parser.add_argument(
        "--category",
        dest="data_categories",
        action="append",
        metavar="C",
        help="only this data category (repeat for several; default all)",
    )
    # Each switch has its opposite, so an option can override a file's key either way.
    parser.add_argument(
        "--dry-run",
        action=argparse.BooleanOptionalAction,
        help="do everything but the writes (--no-dry-run: a real run)",
    )
    parser.add_argument(
        "--skip-integrity-checks",
        action=argparse.BooleanOptionalAction,
        help="do not read back and verify written rows (not recommended)",
    )
    _schedule_options(parser)
    parser.add_argument(
        "--backups",
        dest="create_backups",
        action=argparse.BooleanOptionalAction,
        help="keep a sealed backup of every row changed, written with it (the default); "
        "--no-backups: rollback then relies on decryption",
    )
    parser.add_argument(
        "--sweep-later",
        action=argparse.BooleanOptionalAction,
        help="SQLite: leave the sweep after it (a VACUUM the application's writes wait for) to "
        "'sweep ID' instead of running it as the migration completes",
    )
