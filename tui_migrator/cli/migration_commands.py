"""The migration commands: estimate, start, status, list, cancel, pause, continue, resume,
rollback, failed, report, purge-backups, sweep and worker."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from tui_migrator.cli import evidence_commands
from tui_migrator.cli.confirm import confirm
from tui_migrator.cli.output import Result
from tui_migrator.cli.stop_signals import stops_cancel, stops_interrupt, stops_leave
from tui_migrator.common.config_file import read_config_file
from tui_migrator.common.migration_config import MigrationConfig, parse_config
from tui_migrator.engine.log_files import log_path
from tui_migrator.engine.sweep import SweepResult
from tui_migrator.service.facade import MigratorService
from tui_migrator.service.sweeping import SweepStatus
from tui_migrator.service.views import (
    cancel_data,
    failed_data,
    foreground_start_data,
    list_data,
    rollback_started_data,
    rollback_words,
    schedule_words,
    start_data,
    status_data,
)
from tui_migrator.storage.migration_records import MigrationRecord
from tui_migrator.storage.migration_status import (
    RESUMABLE_STATUSES,
    ROLLBACK_STATUSES,
    MigrationKind,
    Status,
)

NOTHING_STARTED = "nothing was started"


def config_values(args: argparse.Namespace) -> dict[str, Any]:
    """The configuration asked for: the --config file's keys, each overridden by its option when
    that is given (a repeated option replaces the file's whole list). What neither sets is left
    out, for MigrationConfig to fill with its defaults."""
    values = read_config_file(args.config_file) if args.config_file is not None else {}
    for name in MigrationConfig.model_fields:
        given = getattr(args, name, None)
        if given is not None:
            values[name] = given
    return values


def estimate(service: MigratorService, args: argparse.Namespace) -> Result:
    measured = service.estimate(config_values(args))
    table = Table(title="Estimate", show_header=False, title_justify="left")
    table.add_column("what")
    table.add_column("value")
    table.add_row("Records to encrypt", f"{measured.estimated_records:,}")
    table.add_row("Already encrypted", f"{measured.already_encrypted_records:,}")
    table.add_row(
        "Estimated time",
        f"{measured.estimated_time_seconds} s ({measured.estimated_time_minutes} min)",
    )
    if measured.estimated_windows is not None:
        window = measured.config.window
        table.add_row(
            "Maintenance windows",
            f"{measured.estimated_windows} of {window} ({measured.config.timezone})",
        )
    table.add_row("Storage increase", measured.estimated_storage_increase)
    table.add_row("Sweep after it", measured.sweep.summary)
    for category, count in measured.by_category.items():
        table.add_row(f"  {category}", f"{count:,}")
    for organization, count in measured.by_organization.items():
        table.add_row(f"  {organization}", f"{count:,}")
    table.add_row("Recommended batch size", str(measured.recommendations.optimal_batch_size))
    table.add_row("Recommended concurrency", str(measured.recommendations.recommended_concurrency))
    table.add_row("Complexity", measured.risk_assessment.complexity)
    table.add_row("Rollback time", measured.risk_assessment.rollback_time)
    text: list[Any] = [table]
    for check in measured.preflight_checks:
        text.append(Text(f"{'ok  ' if check.passed else 'FAIL'} {check.check}: {check.detail}"))
    if not measured.can_start:
        text.append(Text("A pre-flight check failed: start would be refused."))
    return Result(data=measured.to_json_data(), text=text)


def start(service: MigratorService, args: argparse.Namespace) -> Result:
    values = config_values(args)
    # A dry run (asked for by the option or the file) writes nothing, so it needs no confirmation.
    if not args.yes and not parse_config(values).dry_run:
        plan = service.plan(values)
        confirm(
            f"Encrypt {plan.scope.pending_rows:,} records in {len(plan.scope.tables)} tables "
            f"({'with' if plan.config.create_backups else 'WITHOUT'} backups)?",
            nothing_done=NOTHING_STARTED,
        )
    if args.detach:
        record = service.start(values, detach=True)
        return Result(
            data=start_data(record, service.settings),
            text=[
                Text(
                    f"Started {record.id} in a background worker. "
                    f"Follow it with: tui-migrator status {record.id}"
                )
            ],
        )
    with progress_bar(args.json) as show_progress, stops_cancel(service) as remember:

        def on_progress(record: MigrationRecord) -> None:
            # The first report carries the new migration's id, which Ctrl-C needs to cancel it.
            remember(record.id)
            show_progress(record)

        record = service.start(values, on_progress=on_progress)
    result = final_result(service, record)
    result.data = foreground_start_data(record, service.settings, sweep=service.sweep_status(record.id))
    return result


def resume(service: MigratorService, args: argparse.Namespace) -> Result:
    if not args.yes:
        confirm(f"Resume {args.migration_id}?", nothing_done=NOTHING_STARTED)
    if args.detach:
        record = service.resume(args.migration_id, detach=True)
        return Result(
            data=start_data(record, service.settings),
            text=[Text(f"Resumed {record.id} in a background worker.")],
        )
    with progress_bar(args.json) as on_progress, stops_cancel(service) as remember:
        remember(args.migration_id)
        record = service.resume(args.migration_id, on_progress=on_progress)
    return final_result(service, record)


def worker(service: MigratorService, args: argparse.Namespace) -> Result:
    """Join the migration if another worker runs it (PostgreSQL), else run or take it over."""
    current = service.status(args.migration_id)
    if current.stored_status.is_live and current.worker_alive:
        with stops_leave() as leave:
            summary = service.join(args.migration_id, leave=leave)
        return Result(
            data=summary.to_json(),
            text=[
                Text(
                    f"Joined {summary.migration_id} as {summary.worker}: took {summary.rows:,} rows "
                    f"({summary.encrypted:,} encrypted, {summary.failed:,} failed)"
                    + "".join(
                        f", {rows:,} rows of the {step.replace('-', ' ')}"
                        for step, rows in summary.rows_by_step.items()
                    )
                    + f"; left because {summary.left_because}."
                ),
                *(Text(f"Warning: {warning}") for warning in summary.warnings),
            ],
        )
    # A detached worker is stopped with SIGTERM (kill, a shutdown): safely, as Ctrl-C stops start.
    with stops_cancel(service) as remember:
        remember(args.migration_id)
        record = service.run_migration(args.migration_id)
    return final_result(service, record)


def status(service: MigratorService, args: argparse.Namespace) -> Result:
    record = service.status(args.migration_id)
    sweep = service.sweep_status(args.migration_id)
    return Result(
        data=status_data(record, disk_path=service.settings.data_dir, sweep=sweep),
        text=status_text(record, sweep, log_file=log_path(service.settings, record.id)),
    )


def listing(service: MigratorService, args: argparse.Namespace) -> Result:
    records, everything = service.list_migrations(limit=args.limit, status=args.status)
    data = list_data(records, everything=everything)
    table = Table(title=f"Migrations ({len(records)} of {len(everything)})", title_justify="left")
    for heading in ("id", "status", "started (UTC)", "completed (UTC)", "total", "encrypted", "failed"):
        table.add_column(heading)
    for item in data["migrations"]:
        table.add_row(
            item["id"],
            item["status"] + (" (dry run)" if item["dryRun"] else ""),
            item["startedAt"] or "",
            item["completedAt"] or "",
            str(item["totalRecords"]),
            str(item["encryptedRecords"]),
            str(item["failedRecords"]),
        )
    summary = ", ".join(f"{k} {v}" for k, v in data["summary"]["byStatus"].items() if v)
    return Result(data=data, text=[table, Text(f"By status: {summary or 'none'}")])


def cancel(service: MigratorService, args: argparse.Namespace) -> Result:
    record = service.cancel(args.migration_id, args.reason)
    data = cancel_data(record)
    return Result(data=data, text=[Text(f"{data['message']}. {data['note']}")])


def pause(service: MigratorService, args: argparse.Namespace) -> Result:
    record = service.pause(args.migration_id)
    return Result(
        data=status_data(record),
        text=[
            Text(
                f"Pause requested for {record.id}: in-flight batches "
                "finish, then it waits. Continue with: tui-migrator "
                f"continue {record.id}"
            )
        ],
    )


def continue_(service: MigratorService, args: argparse.Namespace) -> Result:
    record = service.continue_(args.migration_id)
    return Result(data=status_data(record), text=[Text(f"{record.id} continues.")])


def rollback(service: MigratorService, args: argparse.Namespace) -> Result:
    if args.detach:
        record = service.rollback_in_background(args.migration_id, confirm=args.confirm)
        return Result(
            data=rollback_started_data(record, service.settings),
            text=[
                Text(
                    f"Rolling back {record.id} in a background process. "
                    f"Follow it with: tui-migrator status {record.id}"
                )
            ],
        )
    with stops_interrupt():
        record, result = service.rollback(args.migration_id, confirm=args.confirm, ticket=args.ticket)
    data = {
        "migrationId": record.id,
        "status": record.status.value,
        "rollback": result.to_json(),
        "message": "Migration rolled back successfully",
    }
    text = [
        Text(
            f"Rolled back {record.id}: {result.restored_rows} rows restored in {result.seconds:.2f} s"
            + (
                f", {result.already_restored} restored already by an earlier run that stopped"
                if result.already_restored
                else ""
            )
            + (
                f", {result.kept_newer_values} newer application values kept"
                if result.kept_newer_values
                else ""
            )
            + "."
        )
    ]
    text += [Text(f"Warning: {warning}") for warning in result.warnings]
    return Result(data=data, text=text)


def failed(service: MigratorService, args: argparse.Namespace) -> Result:
    rows = service.failed_records(args.migration_id)
    table = Table(title=f"Failed records of {args.migration_id} ({len(rows)})", title_justify="left")
    for heading in ("table", "key", "reason", "attempts"):
        table.add_column(heading)
    for row in rows:
        table.add_row(row["table_name"], row["key_display"], row["reason"], str(row["attempts"]))
    data = failed_data(args.migration_id, rows)
    return Result(data=data, text=[table])


def report(service: MigratorService, args: argparse.Namespace) -> Result:
    if args.evidence is not None:
        return evidence_commands.export(service, args)
    data = service.report(args.migration_id)
    counts, timing = data["counts"], data["timing"]
    rotation = data["kind"] == MigrationKind.ROTATION.value
    records = (
        f"Records: {counts['encryptedRecords']:,} re-sealed under the new key generation, "
        f"{counts['failedRecords']:,} failed of {counts['totalRecords']:,}"
        if rotation
        else f"Records: {counts['encryptedRecords']:,} encrypted, {counts['failedRecords']:,} failed of "
        f"{counts['totalRecords']:,} ({counts['alreadyEncryptedRecords']:,} were already encrypted)"
    )
    lines = [
        f"{'Key rotation' if rotation else 'Migration'} {data['migrationId']}: {data['status']}"
        + (" (dry run)" if data["dryRun"] else ""),
        records,
        f"Time: {timing['elapsedSeconds']} s (estimated {timing['estimatedSeconds']} s, paused {timing['pausedSeconds']} s)",
        f"Throughput: {data['throughput']['recordsPerSecond']} records/s",
        "Phases: " + ", ".join(f"{k} {v} s" for k, v in timing["phaseSeconds"].items()),
    ]
    verification = data["verification"]
    if verification:
        lines.append(
            f"Verification: {'passed' if verification['passed'] else 'FAILED'}, "
            f"{verification['verifiedRows']:,} rows verified"
        )
    for reason, count in data["failures"]["byReason"].items():
        lines.append(f"Failure ({count}): {reason}")
    lines += [f"Warning: {w}" for w in data["warnings"]]
    if data["errorMessage"]:
        lines.append(f"Error: {data['errorMessage']}")
    sweep = data["sweep"]
    lines.append(f"Sweep: {sweep['summary']}")
    if not rotation:
        lines.append("Not reachable by any sweep (the operator's to handle):")
        lines += [f"  - {item}" for item in sweep["outOfReach"]]
    return Result(data=data, text=[Text("\n".join(lines))])


def purge_backups(service: MigratorService, args: argparse.Namespace) -> Result:
    dropped = service.purge_backups(args.migration_id, confirm=args.confirm)
    return Result(
        data={"migrationId": args.migration_id, "droppedTables": dropped},
        text=[Text(f"Dropped {len(dropped)} backup tables.")],
    )


def sweep(service: MigratorService, args: argparse.Namespace) -> Result:
    if service.engine.dialect.name == "postgresql" and not args.yes:
        record = service.status(args.migration_id)
        confirm(
            f"Sweep {record.id}: VACUUM FULL rewrites each of its {len(record.tables)} tables, "
            "locking it (reads and writes wait) while it runs.",
            nothing_done="nothing was swept",
            type_yes=True,
        )
    result = service.sweep(args.migration_id, confirm=True, rows_per_table=args.sample_rows)
    error = None
    if not result.succeeded:
        error = result.reason if result.cleaned else "The sweep could not do all its work. " + result.reason
    return Result(data=result.to_json(), text=sweep_text(result), success=result.succeeded, error=error)


def sweep_text(result: SweepResult) -> list[Any]:
    data = result.to_json()
    proof = data["proof"]
    lines = [f"Sweep of {result.migration_id} ({result.backend}): {proof['state']} — {proof['reason']}"]
    lines += [f"  {'done' if step.done else 'NOT DONE'}  {step.name}: {step.detail}" for step in result.steps]
    skipped = {
        "shorter than 8 bytes": sum(t["skippedShortValues"] for t in proof["tables"]),
        "numbers, dates, JSON": sum(t["skippedNonTextValues"] for t in proof["tables"]),
        "possibly stored compressed": sum(t["skippedMaybeCompressedValues"] for t in proof["tables"]),
        "tokens that did not open": sum(t["unopenedTokens"] for t in proof["tables"]),
    }
    lines.append(
        f"Searched for {proof['searchedValues']:,} values of {proof['sampledRows']:,} sampled rows; skipped "
        + ", ".join(f"{count:,} {why}" for why, count in skipped.items())
    )
    lines += [
        f"  {t['table']}: {t['searchedValues']:,} searched, {t['foundValues']:,} found"
        for t in proof["tables"]
    ]
    lines += [
        f"  {f['file']}: {f['bytesScanned']:,} bytes, {f['valuesFound']:,} values found"
        for f in proof["files"]
    ]
    lines += [f"Warning: {warning}" for warning in result.warnings]
    lines.append("Not reachable by any sweep (the operator's to handle):")
    lines += [f"  - {item}" for item in data["outOfReach"]]
    return [Text("\n".join(lines))]


def status_text(
    record: MigrationRecord, sweep: SweepStatus | None = None, *, log_file: Path | None = None
) -> list[Any]:
    """``status`` in words; ``log_file``: the migration's log, named where a rollback stopped
    without saying why."""
    data = status_data(record)
    progress, timing = data["progress"], data["timing"]
    rotation = record.kind is MigrationKind.ROTATION
    lines = [
        f"{record.id}{' (key rotation)' if rotation else ''}: {data['status']}"
        + (f" — {data['phaseTitle']}" if data["phaseTitle"] else "")
        + (" (dry run)" if record.dry_run else ""),
        *_rollback_lines(record, log_file),
        (
            f"Progress: {progress['percentage']}% — {progress['processedRecords']:,} of {progress['totalRecords']:,} "
            f"processed, {progress['encryptedRecords']:,} {'re-sealed' if rotation else 'encrypted'}, "
            f"{progress['failedRecords']:,} failed"
        ),
        (
            f"Rate: {progress['ratePerSecond'] or '-'} records/s; elapsed {timing['elapsedSeconds']} s; "
            f"ETA {timing['estimatedRemainingSeconds'] if timing['estimatedRemainingSeconds'] is not None else '-'} s"
        ),
    ]
    lines += schedule_words(data)
    if record.error_message:
        lines.append(f"Error: {record.error_message}")
    if data["cancellation"]:
        lines.append(
            f"Cancelled: {data['cancellation']['reason']} (by {data['cancellation']['cancelledBy']})"
        )
    lines += [f"ALERT: {alert}" for alert in data["alerts"]]
    lines += [f"Warning: {warning}" for warning in data["warnings"]]
    if sweep is not None:
        lines.append(f"Sweep: {sweep.summary}")
    # It stopped short of finishing (failed, cancelled or interrupted): resume and rollback both apply.
    # The database options are added where the text is printed (service.hints.addressed).
    if not record.rolling_back and record.status in RESUMABLE_STATUSES and record.status in ROLLBACK_STATUSES:
        undo = (
            f"   Roll back with: tui-migrator rollback {record.id} --confirm" if record.can_rollback else ""
        )
        lines.append(f"Resume with: tui-migrator resume {record.id}{undo}")
    return [Text("\n".join(lines))]


def _rollback_lines(record: MigrationRecord, log_file: Path | None) -> list[str]:
    """The rollback running, stopped part-way (with how to run it again) or done; none if none ran."""
    words = rollback_words(
        record,
        log_hint="" if log_file is None else f"; its log: {log_file}",
        again=f"run it again: tui-migrator rollback {record.id} --confirm",
    )
    if words is not None:
        return [words]
    if record.status is not Status.ROLLED_BACK or record.rollback_seconds is None:
        return []
    progress = record.rollback_progress
    restored = "" if progress is None else f": {progress.restored_rows:,} rows restored"
    seconds = f"{record.rollback_seconds:.1f} s"
    return [f"Rolled back in {seconds}{restored}; every value it encrypted is plaintext again."]


def final_result(service: MigratorService, record: MigrationRecord) -> Result:
    sweep = service.sweep_status(record.id)
    data = status_data(record, sweep=sweep)
    success = record.status is Status.COMPLETED
    error = None if success else (record.error_message or f"Migration ended {record.status.value}.")
    return Result(data=data, text=status_text(record, sweep), success=success, error=error)


@contextmanager
def progress_bar(quiet: bool) -> Iterator[Callable[[MigrationRecord], None]]:
    """A progress bar on stderr while a migration runs in the foreground (when stderr is a terminal)."""
    console = Console(stderr=True)
    if quiet or not console.is_terminal:
        yield lambda _record: None
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("starting", total=None, rate="")

        def update(record: MigrationRecord) -> None:
            progress.update(
                task,
                total=record.total_records or None,
                completed=record.processed_records,
                description=f"{record.status.value} · {record.phase or ''}",
                rate=f"{record.rate_per_second:.0f}/s" if record.rate_per_second else "",
            )

        yield update
