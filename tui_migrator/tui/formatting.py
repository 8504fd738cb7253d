"""Times, numbers and statuses as an operator reads them: local time zone, thousands separators,
status in words (never in colour alone). Every screen takes its status words from here."""

from __future__ import annotations

from datetime import datetime

from tui_migrator.service.workers import WorkerView
from tui_migrator.storage.migration_records import MigrationRecord
from tui_migrator.storage.migration_status import MigrationKind, Status, describe_statuses

# How the monitor marks the stage a migration stopped in, in a symbol and a word.
STOPPED_STAGE_MARKS = {
    Status.PAUSED: "‖ paused",
    Status.FAILED: "✖ failed",
    Status.CANCELLED: "■ cancel",
    Status.INTERRUPTED: "■ halted",
}


def local_time(moment: datetime | str | None, *, seconds: bool = True) -> str:
    """An aware UTC time (or ISO text) in the operator's local time zone; "" for None."""
    if moment is None:
        return ""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    pattern = "%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M"
    return moment.astimezone().strftime(pattern)


def duration(seconds: float | None) -> str:
    """1:02:03, 2:03 or 5 s."""
    if seconds is None:
        return "-"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}:{minutes:02d}:{secs:02d}"
    if minutes:
        return f"{minutes}:{secs:02d}"
    return f"{secs} s"


def estimated_duration(seconds: float) -> str:
    """An estimated duration; a fraction of a second is not worth its digits."""
    return "under 1 s" if seconds < 1 else duration(seconds)


def count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def status_words(status: Status) -> str:
    """ "rolled back": the same words the service's refusals use for a status."""
    return describe_statuses((status,))


def state_words(record: MigrationRecord) -> str:
    """What is happening to it, in words: its status, or the rollback running on it (which
    leaves the stored status alone until it finishes), or a rollback that stopped part-way."""
    progress = record.rollback_progress
    if record.rolling_back:
        return "rolling back"
    if progress is not None and progress.stopped_part_way and record.status is not Status.ROLLED_BACK:
        return f"{status_words(record.status)}, rollback stopped"
    return status_words(record.status)


def status_label(record: MigrationRecord) -> str:
    """The state in words, with a dry run marked as one (it changed no data)."""
    words = state_words(record)
    return f"{words} (dry run)" if record.dry_run else words


def kind_label(record: MigrationRecord) -> str:
    """ " (key rotation)" after a rotation's id, so it is told from the encryption migrations
    beside it; "" for an encryption migration."""
    return f" ({record.kind.described})" if record.kind is MigrationKind.ROTATION else ""


def sealed_words(record: MigrationRecord) -> str:
    """What its batches did to each value: "encrypted", or "re-sealed" (a key rotation's)."""
    return "re-sealed" if record.kind is MigrationKind.ROTATION else "encrypted"


def status_heading(status: Status) -> str:
    """ "ROLLED BACK": the status as the monitor's title and completion report shout it."""
    return status_words(status).upper()


def quit_words(records: list[MigrationRecord]) -> str | None:
    """What the terminal says after the app closes: the migrations and rollbacks that keep
    running in their own processes, and how to come back to them; None when nothing runs."""
    running = [record for record in records if record.status.is_live or record.rolling_back]
    if not running:
        return None
    lines = ["Still running in background workers (closing the app does not stop them):"]
    lines += [f"  {record.id}: {state_words(record)}" for record in running]
    lines.append(
        "Come back with tui-migrator (same --db and --schema) and press l, or check one with "
        f"tui-migrator status {running[0].id}"
    )
    return "\n".join(lines)


def worker_words(worker: WorkerView) -> str:
    """One worker on a migration, as the monitor lists them."""
    if worker.owner:
        beat = "" if worker.heartbeat_at is None else f", heartbeat {local_time(worker.heartbeat_at)[11:]}"
        return f"{worker.worker} (owner{beat})"
    joined = "" if worker.joined_at is None else f" joined {local_time(worker.joined_at)[11:]}"
    if worker.left_at is None:
        return f"{worker.worker}{joined}, working"
    rows = "" if worker.rows is None else f" after {worker.rows:,} rows"
    windows = ", ".join(
        f"{count:,} of the {step.replace('-', ' ')}" for step, count in worker.window_rows.items()
    )
    rows += f" (and {windows})" if windows else ""
    return f"{worker.worker}{joined}, left {local_time(worker.left_at)[11:]}{rows}"
