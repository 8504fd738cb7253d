"""One function per command: call the service, shape its answer for JSON and for text."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from rich.table import Table
from rich.text import Text

from tui_migrator.cli import evidence_commands, key_commands, migration_commands
from tui_migrator.cli.confirm import confirm
from tui_migrator.cli.output import Result
from tui_migrator.common.errors import ConfigError
from tui_migrator.common.settings import Settings
from tui_migrator.service.api_tokens import TokenInfo
from tui_migrator.service.demo_admin import database_has_content
from tui_migrator.service.facade import MigratorService, create_demo_service
from tui_migrator.service.opening import is_set_up, sqlite_journal_mode
from tui_migrator.service.views import audit_data, audit_verification_data
from tui_migrator.storage.audit import AuditEntry, AuditVerification
from tui_migrator.storage.database import redacted


def run(args: argparse.Namespace, settings: Settings) -> Result:
    if args.command == "keys" and args.keys_action == "generate":
        return key_commands.keys_generate(args)
    if args.command == "demo":
        return demo(args, settings)
    if args.command == "init":
        return init(settings)
    if args.command == "serve":
        return serve(args, settings)
    if args.command == "evidence":
        # Checked with the master key alone: a bundle is verified away from the database.
        return evidence_commands.verify(args, settings)
    handler = _HANDLERS[args.command]
    with MigratorService.open(settings) as service:
        return handler(service, args)


# -- serve ----------------------------------------------------------------------------------


def serve(args: argparse.Namespace, settings: Settings) -> Result:
    # Imported here: the web framework is the server extra's, and no other command needs it.
    try:
        from tui_migrator.http.server import ServeOptions
        from tui_migrator.http.server import serve as serve_api
    except ImportError as missing:
        raise ConfigError(
            f"The HTTP API needs the server extra, which is not installed ({missing.name} is missing).",
            hint="Install it: pip install 'tui-migrator[server]' (./run installs it).",
        ) from None

    options = ServeOptions(
        host=args.host,
        port=args.port,
        certfile=args.certfile,
        keyfile=args.keyfile,
        insecure_behind_proxy=args.insecure_behind_proxy,
        max_body_bytes=args.max_body_bytes,
    )
    serve_api(settings, options)
    return Result(data={"served": options.url(), "stopped": True}, text=[Text("The API server stopped.")])


# -- init -----------------------------------------------------------------------------------


def init(settings: Settings) -> Result:
    already = is_set_up(settings)
    journal_before = sqlite_journal_mode(settings)
    with MigratorService.open(settings, may_set_up=True) as service:
        report = service.health()
    journal_now = sqlite_journal_mode(settings)
    system = report.system_health
    data = {
        "database": system.database,
        "alreadySetUp": already,
        "user": report.operator.user,
        "role": report.operator.role,
        "masterKeySource": system.master_key_source,
        "masterKeyFingerprint": system.master_key_fingerprint,
        # SQLite: the file's journal mode before and after (null on PostgreSQL).
        "journalMode": {"before": journal_before, "now": journal_now} if journal_now else None,
    }
    if already:
        words = f"{system.database} was already set up for tui-migrator; nothing was changed."
    else:
        words = (
            f"Set up tui-migrator on {system.database}: {report.operator.user} is its first "
            f"super_admin; master key {system.master_key_source} (fingerprint "
            f"{system.master_key_fingerprint[:12]}). Keep that key safe: without it nothing "
            "encrypted here can be read."
        )
    if journal_before is not None and journal_now is not None and journal_before != journal_now:
        words += (
            f" The file's journal mode was {journal_before}; it is {journal_now} now, and stays so "
            "with the file (README, 'The SQLite library')."
        )
    return Result(data=data, text=[Text(words)])


# -- health ---------------------------------------------------------------------------------


def health(service: MigratorService, _args: argparse.Namespace) -> Result:
    report = service.health()
    data = report.to_json_data()
    system = report.system_health
    table = Table(title="System health", show_header=False, title_justify="left")
    table.add_column("check")
    table.add_column("state")
    table.add_row("Migration engine", _yes_no(system.migration_engine_online, "online", "offline"))
    table.add_row("Running migrations", str(system.running_migrations))
    table.add_row("Encryption system", _yes_no(system.encryption_system_ready, "ready", "NOT READY"))
    table.add_row("Backup system", _yes_no(system.backup_system_ready, "ready", "NOT READY"))
    table.add_row(
        "Audit trail", _yes_no(system.audit_trail_protected, "append-only triggers in force", "NOT PROTECTED")
    )
    table.add_row("Database", f"{system.database} ({system.database_dialect})")
    table.add_row("Data keys", str(system.data_keys))
    table.add_row(
        "Master key", f"{system.master_key_source}, fingerprint {system.master_key_fingerprint[:12]}"
    )
    if system.free_disk_percent is not None:
        table.add_row("Free disk", f"{system.free_disk_percent}% at {system.disk_checked_path}")
    activity = report.recent_activity
    table.add_row(
        "Last 24 hours",
        f"{activity.last24_hours} migrations, success rate {activity.success_rate} "
        f"({activity.succeeded_last24_hours} of {activity.ended_last24_hours} ended completed), "
        f"average {activity.average_records_per_migration} records",
    )
    operator = report.operator
    table.add_row(
        "Operator",
        f"{operator.user} ({operator.role or 'no role'}{', read-only' if operator.readonly else ''})",
    )
    text: list[Any] = [table]
    text += [Text(f"ALERT: {alert}") for alert in report.alerts]
    text += [Text(f"- {line}") for line in report.recommendations]
    return Result(data=data, text=text)


def _yes_no(flag: bool, yes: str, no: str) -> str:
    return yes if flag else no


# -- audit ----------------------------------------------------------------------------------


def audit(service: MigratorService, args: argparse.Namespace) -> Result:
    if args.restore_triggers:
        problems = service.restore_audit_triggers()
        words = "; ".join(problems) if problems else "they were all in force"
        return Result(
            data={"restored": True, "problems": problems},
            text=[Text(f"The audit triggers are in force again ({words}). Run audit --verify next.")],
        )
    # Listing checks the chain too (it is cheap), so "secureAuditTrail" is a finding, not a
    # slogan; only an explicit --verify is itself recorded in the trail and fails the command.
    verification = service.verify_audit(record=args.verify)
    page = service.audit_entries(limit=args.limit, migration_id=args.migration_id)
    data = audit_data(page.entries, page.total_entries, verification)
    text: list[Any] = [_audit_table(page.entries, page.total_entries)]
    if not args.verify:
        if not verification.intact:
            text.append(
                Text(
                    f"WARNING: the audit chain is broken ({verification.problem}). "
                    "Run with --verify for details."
                )
            )
        return Result(data=data, text=text)
    data["verification"] = audit_verification_data(verification)
    if verification.intact:
        text.append(Text(f"Audit chain verified: {verification.verified_entries} entries intact."))
        text.append(Text(anchor_words(verification)))
        return Result(data=data, text=text)
    text.append(Text(f"AUDIT CHAIN BROKEN: {verification.problem}"))
    text.append(Text(f"{verification.verified_entries} entries verified before the break."))
    return Result(data=data, text=text, success=False, error=verification.problem)


def anchor_words(verification: AuditVerification) -> str:
    """What the anchor outside the database adds to an intact chain."""
    if verification.anchor is None:
        return (
            "No anchor of this database in this data dir: entries cut from the end together with "
            "the head would not show."
        )
    return f"All {verification.anchored_entries} entries anchored in {verification.anchor} are in the chain."


def _audit_table(entries: list[AuditEntry], total: int) -> Table:
    table = Table(title=f"Audit trail ({len(entries)} of {total}, newest first)", title_justify="left")
    for heading in ("#", "time (UTC)", "operation", "user", "result", "migration"):
        table.add_column(heading)
    for entry in entries:
        table.add_row(
            str(entry.seq),
            entry.timestamp,
            entry.operation,
            entry.user_id,
            "ok" if entry.success else "FAILED",
            entry.migration_id or "",
        )
    return table


# -- operators ------------------------------------------------------------------------------


def operators(service: MigratorService, args: argparse.Namespace) -> Result:
    if args.operators_action == "grant":
        granted = service.grant(args.username, args.role)
        return Result(
            data={
                "username": granted.username,
                "role": granted.role.value,
                "grantedBy": granted.granted_by,
                "grantedAt": granted.granted_at.isoformat(),
                "message": "Role granted",
            },
            text=[Text(f"{granted.username} is now {granted.role.value}.")],
        )
    if args.operators_action == "revoke":
        service.revoke(args.username)
        return Result(
            data={"username": args.username, "message": "Role revoked"},
            text=[Text(f"{args.username} no longer has a role.")],
        )
    listed = service.list_operators()
    table = Table(title="Operators", title_justify="left")
    for heading in ("user", "role", "granted by", "granted at (UTC)"):
        table.add_column(heading)
    for operator in listed:
        table.add_row(
            operator.username,
            operator.role.value
            if operator.authenticated
            else f"{operator.role.value} (REFUSED: not written by the tool)",
            operator.granted_by,
            operator.granted_at.isoformat(timespec="seconds"),
        )
    return Result(
        data={
            "operators": [
                {
                    "username": o.username,
                    "role": o.role.value,
                    "grantedBy": o.granted_by,
                    "grantedAt": o.granted_at.isoformat(),
                    "authenticated": o.authenticated,
                }
                for o in listed
            ],
            "currentUser": service.user,
        },
        text=[table],
    )


# -- API tokens -----------------------------------------------------------------------------


def tokens(service: MigratorService, args: argparse.Namespace) -> Result:
    if args.tokens_action == "create":
        return _token_created(*service.create_api_token(args.expires_days))
    if args.tokens_action == "revoke":
        revoked = service.revoke_api_token(args.token_id)
        return Result(
            data={**revoked.to_json_data(), "message": "Token revoked"},
            text=[Text(f"API token {revoked.token_id} of {revoked.operator} is revoked.")],
        )
    listed = service.list_api_tokens()
    table = Table(title="API tokens", title_justify="left")
    for heading in ("token id", "operator", "status", "created (UTC)", "expires (UTC)", "revoked (UTC)"):
        table.add_column(heading)
    for info in listed:
        table.add_row(
            info.token_id,
            info.operator,
            info.status.value,
            info.created_at.isoformat(timespec="seconds"),
            info.expires_at.isoformat(timespec="seconds") if info.expires_at else "never",
            f"{info.revoked_at.isoformat(timespec='seconds')} by {info.revoked_by}"
            if info.revoked_at
            else "",
        )
    return Result(
        data={"tokens": [info.to_json_data() for info in listed], "currentUser": service.user},
        text=[table],
    )


def _token_created(token: str, info: TokenInfo) -> Result:
    # The only time the token is ever shown: nothing keeps it, not even its hash.
    expiry = f"expires {info.expires_at.isoformat(timespec='seconds')}" if info.expires_at else "no expiry"
    store = "Store it now: it cannot be shown again."
    usage = "Send it with each API request as the header: Authorization: Bearer <token>"
    return Result(
        data={"token": token, **info.to_json_data(), "message": f"{store} {usage}"},
        text=[
            Text(f"API token {info.token_id} created for {info.operator} ({expiry})."),
            Text(store),
            Text(token),
            Text(usage),
        ],
    )


# -- mapping --------------------------------------------------------------------------------


def mapping(service: MigratorService, _args: argparse.Namespace) -> Result:
    resolved = service.mapping()
    table = Table(title=f"Schema mapping ({resolved.source})", title_justify="left")
    for heading in ("table", "category", "key", "organization", "column", "type", "token stored"):
        table.add_column(heading)
    tables_json = []
    for mapped in resolved.tables:
        organization = mapped.organization_column or f"all rows: {mapped.default_organization}"
        for index, column in enumerate(mapped.columns):
            first = index == 0
            table.add_row(
                mapped.name if first else "",
                mapped.category.value if first else "",
                ", ".join(mapped.primary_key) if first else "",
                organization if first else "",
                column.name,
                column.sql_type,
                "in place" if column.companion is None else f"in {column.companion}",
            )
        tables_json.append(
            {
                "name": mapped.name,
                "category": mapped.category.value,
                "primaryKey": list(mapped.primary_key),
                "organizationColumn": mapped.organization_column,
                "defaultOrganization": mapped.default_organization,
                "columns": [
                    {
                        "name": c.name,
                        "sqlType": c.sql_type,
                        "nullable": c.nullable,
                        "storage": c.storage.value,
                        "companionColumn": c.companion,
                    }
                    for c in mapped.columns
                ],
            }
        )
    return Result(data={"source": resolved.source, "tables": tables_json}, text=[table])


# -- demo -----------------------------------------------------------------------------------


def demo(args: argparse.Namespace, settings: Settings) -> Result:
    if not args.yes and database_has_content(settings):
        confirm(
            f"Replace the demo database at {redacted(settings.effective_database_url)} and its audit trail?",
            nothing_done="nothing was changed",
            type_yes=True,
        )
    service, summary = create_demo_service(
        settings, patients=args.patients, organizations=args.organizations, seed=args.seed
    )
    service.close()
    return Result(
        data={
            "database": redacted(settings.effective_database_url),
            "patients": summary.patients,
            "organizations": summary.organizations,
            "sensitiveRecords": summary.sensitive_records,
            "rowsByTable": summary.rows_by_table,
            "seconds": round(summary.seconds, 2),
            "seed": args.seed,
        },
        text=[
            Text(
                f"Demo database ready: {summary.patients} patients in {summary.organizations} "
                f"organizations, {summary.sensitive_records} sensitive records "
                f"({summary.seconds:.1f} s)."
            )
        ],
    )


_HANDLERS: dict[str, Callable[[MigratorService, argparse.Namespace], Result]] = {
    "health": health,
    "audit": audit,
    "operators": operators,
    "tokens": tokens,
    "keys": key_commands.keys,
    "mapping": mapping,
    "estimate": migration_commands.estimate,
    "start": migration_commands.start,
    "status": migration_commands.status,
    "list": migration_commands.listing,
    "cancel": migration_commands.cancel,
    "pause": migration_commands.pause,
    "continue": migration_commands.continue_,
    "resume": migration_commands.resume,
    "rollback": migration_commands.rollback,
    "failed": migration_commands.failed,
    "report": migration_commands.report,
    "purge-backups": migration_commands.purge_backups,
    "sweep": migration_commands.sweep,
    "worker": migration_commands.worker,
}
