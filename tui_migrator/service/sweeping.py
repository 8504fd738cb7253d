"""Sweeping a finished migration: removing the plaintext its UPDATEs left in the database's files,
and proving it (engine/sweep.py does both; this module decides when, and records it).

On SQLite a sweep runs by itself after a migration completes (unless it was started to be swept
later), after its backups are purged and after it is rolled back: a checkpoint and a VACUUM hold
SQLite's one write lock for a while, as a batch does, and nothing else. On PostgreSQL it is an
explicit, confirmed step, because VACUUM FULL locks each table (reads too) while it rewrites it:
until the operator runs it, ``status`` and ``report`` say "not swept" and give the command.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from tui_migrator.common.errors import BadInput
from tui_migrator.engine import detached
from tui_migrator.engine import sweep as sweep_engine
from tui_migrator.engine.sweep import OUT_OF_REACH, Proof, SweepResult
from tui_migrator.engine.sweep_sample import DEFAULT_ROWS_PER_TABLE
from tui_migrator.service.access import authorize
from tui_migrator.service.session import Session
from tui_migrator.storage import migration_records as migrations
from tui_migrator.storage import operation_guard, sweep_records, table_locks
from tui_migrator.storage.audit_operations import AuditOperation
from tui_migrator.storage.database import serialized_write
from tui_migrator.storage.migration_records import MigrationRecord
from tui_migrator.storage.migration_status import MigrationKind, Status, describe_statuses
from tui_migrator.storage.operators import Action
from tui_migrator.storage.sweep_records import SweepRecord

log = logging.getLogger(__name__)

SWEEPABLE_STATUSES = (Status.COMPLETED, Status.ROLLED_BACK)


def sweep(session: Session, migration_id: str, *, confirm: bool, rows_per_table: int) -> SweepResult:
    """Sweep one completed or rolled-back migration now; PostgreSQL needs ``confirm``."""
    _check_may_sweep(session, migration_id, confirm=confirm)
    return _sweep(session, migration_id, automatic=False, rows_per_table=rows_per_table)


def sweep_in_background(session: Session, migration_id: str, *, confirm: bool, rows_per_table: int) -> None:
    """The checks of ``sweep``, then the sweep itself in a detached process (``sweep ID --yes``)
    that survives the terminal; ``status_of`` says it is running until it has finished. Returns
    once that process holds the migration's guard (or has swept already), so what the operator
    sees next is the sweep running; one gone before it began is an error naming its log."""
    _check_may_sweep(session, migration_id, confirm=confirm)
    if operation_guard.busy(session.engine, migration_id):
        operation_guard.refuse(migration_id, "sweep")
    swept_before = _swept_at(session, migration_id)

    def begun() -> bool:
        return operation_guard.busy(session.engine, migration_id) or (
            _swept_at(session, migration_id) != swept_before
        )

    detached.begin(
        session.settings,
        migration_id,
        begun,
        what=f"The background sweep of {migration_id}",
        undone="nothing was swept",
        again=sweep_command(migration_id, session.engine.dialect.name),
        command=("sweep", migration_id, "--yes", "--sample-rows", str(rows_per_table)),
    )


def _swept_at(session: Session, migration_id: str) -> datetime | None:
    swept = sweep_record(session, migration_id)
    return None if swept is None else swept.swept_at


def _check_may_sweep(session: Session, migration_id: str, *, confirm: bool) -> None:
    """What an operator's sweep needs: the role, a finished migration, confirmation on
    PostgreSQL, and no running migration it would stall."""
    authorize(session, Action.MIGRATE, "sweep")
    record = migrations.get(session.engine, migration_id)
    _refuse_unsweepable(record)
    if session.engine.dialect.name == "postgresql" and not confirm:
        raise BadInput(
            f"Sweeping {migration_id} runs VACUUM FULL on each of its {len(record.tables)} tables, "
            "which locks the table (reads and writes wait) while it is rewritten, so it needs "
            "confirmation.",
            hint=f"Run: tui-migrator sweep {migration_id} --yes",
        )
    _refuse_busy_database(session, record)


def after_completion(session: Session, migration_id: str) -> None:
    """After a migration completed: :func:`after_change`, unless it was started to be swept
    later (``sweep_later``), which leaves the sweep to ``sweep ID`` — its status says so."""
    _sweep_after(session, migration_id, completed=True)


def after_change(session: Session, migration_id: str) -> None:
    """After a migration was rolled back or its backups were purged (and after it completed,
    see :func:`after_completion`): on SQLite a new sweep runs at once. (The rollback forgets the
    last sweep in its own transaction, see service/undo.py.) A sweep that cannot run is logged;
    the migration's outcome stands — this runs after it was recorded, so no failure here, the
    database's included, is raised."""
    _sweep_after(session, migration_id, completed=False)


def _sweep_after(session: Session, migration_id: str, *, completed: bool) -> None:
    try:
        with session.engine.connect() as connection:
            record = migrations.load(connection, migration_id)
        if record.dry_run or record.kind is MigrationKind.ROTATION:
            return  # a rotation writes no plaintext: nothing to sweep for
        if session.engine.dialect.name != "sqlite" or record.status not in SWEEPABLE_STATUSES:
            return
        if completed and record.config.sweep_later:
            # Put off by whoever started it. A rollback's or a purge's sweep is not: asked for
            # then, it runs then (and removes tokens and sealed backups, not plaintext).
            log.info(
                "migration %s completed; its sweep is put off (sweep later): tui-migrator sweep %s",
                migration_id,
                migration_id,
            )
            return
        _refuse_busy_database(session, record)
        _sweep(session, migration_id, automatic=True, rows_per_table=DEFAULT_ROWS_PER_TABLE)
    except BadInput as refused:
        log.warning(
            "migration %s was not swept: %s Sweep it later: tui-migrator sweep %s",
            migration_id,
            refused.message,
            migration_id,
        )
    except Exception:
        # The migration is done whatever happens here; the status says it is not swept.
        log.exception(
            "the sweep of migration %s failed; run: tui-migrator sweep %s", migration_id, migration_id
        )


def _refuse_unsweepable(record: MigrationRecord) -> None:
    if record.dry_run:
        raise BadInput(
            f"Migration {record.id} was a dry run: it changed no data, so it left nothing behind to sweep."
        )
    if record.kind is MigrationKind.ROTATION:
        raise BadInput(
            f"Migration {record.id} is a key rotation: it replaced tokens with tokens and wrote no "
            "plaintext, so there is nothing to sweep for.",
            hint="Sweep the encryption migration instead (tui-migrator list shows it).",
        )
    if record.status not in SWEEPABLE_STATUSES:
        raise BadInput(
            f"Migration {record.id} is {record.status.value}; only a "
            f"{describe_statuses(SWEEPABLE_STATUSES)} migration is swept, since until then its "
            "tables keep changing.",
            hint=f"Finish it first (tui-migrator resume {record.id}, or rollback {record.id} --confirm)."
            if record.status in (Status.FAILED, Status.CANCELLED, Status.INTERRUPTED)
            else None,
        )


def _refuse_busy_database(session: Session, record: MigrationRecord) -> None:
    """A sweep would stall a running migration: SQLite's VACUUM rewrites the whole file under
    its write lock, PostgreSQL's VACUUM FULL locks the tables it rewrites."""
    if session.engine.dialect.name == "sqlite":
        running = [other.id for other in migrations.list_records(session.engine) if other.status.is_live]
        if running:
            raise BadInput(
                f"Migration {running[0]} is running, and VACUUM would hold up its batches while it "
                "rewrites the whole SQLite database.",
                hint=f"Sweep {record.id} once it has finished: tui-migrator sweep {record.id}",
            )
        return
    with session.engine.connect() as connection:
        held = table_locks.holders(connection, [table.name for table in record.tables])
    for table, holder in sorted(held.items()):
        if holder != record.id and migrations.get(session.engine, holder).status.is_live:
            raise BadInput(
                f"Table {table} is being migrated by {holder}, and VACUUM FULL would lock it.",
                hint=f"Sweep {record.id} once {holder} has finished.",
            )


def _sweep(session: Session, migration_id: str, *, automatic: bool, rows_per_table: int) -> SweepResult:
    with operation_guard.exclusive(session.engine, migration_id, "sweep"):
        # Read again under the guard: a rollback may have finished since it was first read.
        record = migrations.get(session.engine, migration_id)
        _refuse_unsweepable(record)
        result = sweep_engine.sweep(
            session.engine,
            record,
            session.mapping(),
            session.value_cipher(),
            automatic=automatic,
            rows_per_table=rows_per_table,
        )
        with serialized_write(session.engine) as connection:
            sweep_records.write(connection, record.id, result.swept_at, result.to_json())
            session.audit.append(
                connection,
                AuditOperation.MIGRATION_SWEPT,
                user_id=session.user,
                success=result.succeeded,
                migration_id=record.id,
                details=result.audit_details(),
            )
    log.info(
        "swept migration %s: proof %s, %d of %d sampled values found",
        record.id,
        result.proof.value,
        result.found_values,
        result.searched_values,
    )
    return result


# -- what status and report say ------------------------------------------------------------


@dataclass(frozen=True)
class SweepStatus:
    """Whether a migration is swept, in words, for status lines and the report."""

    swept: bool
    swept_at: datetime | None
    proof: str | None
    succeeded: bool | None
    summary: str
    # What to run next, if anything.
    command: str | None
    # A rollback, purge-backups or sweep of it holds its guard now (in any process).
    running: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "swept": self.swept,
            "sweptAt": None if self.swept_at is None else self.swept_at.isoformat().replace("+00:00", "Z"),
            "proof": self.proof,
            "succeeded": self.succeeded,
            "summary": self.summary,
            "command": self.command,
            "running": self.running,
        }


def status_of(session: Session, migration_id: str) -> SweepStatus:
    """Whether the migration is swept, for any operator with a role."""
    authorize(session, Action.READ, "status")
    record = migrations.get(session.engine, migration_id)
    status = sweep_status(record, sweep_record(session, migration_id), session.engine.dialect.name)
    return replace(status, running=operation_guard.busy(session.engine, migration_id))


def sweep_record(session: Session, migration_id: str) -> SweepRecord | None:
    with session.engine.connect() as connection:
        return sweep_records.read(connection, migration_id)


def sweep_status(record: MigrationRecord, swept: SweepRecord | None, dialect: str) -> SweepStatus:
    command = sweep_command(record.id, dialect)
    if swept is not None:
        return _swept_status(swept, command)
    if record.dry_run:
        return SweepStatus(False, None, None, None, "not needed: a dry run changes no data", None)
    if record.kind is MigrationKind.ROTATION:
        return SweepStatus(
            False,
            None,
            None,
            None,
            "not needed: a key rotation replaces tokens and writes no plaintext",
            None,
        )
    if record.status is Status.ROLLED_BACK:
        return SweepStatus(
            False, None, None, None, "not needed: rolled back, its values are plaintext again", None
        )
    if record.status is not Status.COMPLETED:
        return SweepStatus(
            False, None, None, None, "not yet: a migration is swept once it has completed", None
        )
    if dialect == "postgresql":
        locks = " (VACUUM FULL locks each table while it rewrites it)"
        return SweepStatus(False, None, None, None, f"not swept: run {command}{locks}", command)
    if record.config.sweep_later:
        return SweepStatus(
            False,
            None,
            None,
            None,
            f"not swept: put off at start (sweep later); run {command} when the application's "
            "writes may wait for its VACUUM",
            command,
        )
    return SweepStatus(False, None, None, None, f"not swept: run {command}", command)


def sweep_command(migration_id: str, dialect: str) -> str:
    """The command that sweeps the migration (PostgreSQL's needs its confirmation, see sweep)."""
    return f"tui-migrator sweep {migration_id}" + (" --yes" if dialect == "postgresql" else "")


def _swept_status(swept: SweepRecord, command: str) -> SweepStatus:
    result = swept.result
    proof = result.get("proof", {})
    state = proof.get("state")
    searched, found = proof.get("searchedValues", 0), proof.get("foundValues", 0)
    files = len(proof.get("files", []))
    failed = [step for step in result.get("steps", []) if not step.get("done")]
    if state == Proof.FOUND.value:
        summary = f"PLAINTEXT FOUND: {found} of {searched} sampled values are still in the files"
    elif state == Proof.NOT_PROVEN.value:
        summary = "not proven: " + str(proof.get("reason", "")).removeprefix("Not proven: ")
    elif state == Proof.NOT_APPLICABLE.value:
        summary = "old row versions removed (rolled back: nothing to prove)"
    elif failed:
        summary = f"incomplete: no sampled plaintext found, but {failed[0].get('step')} did not run"
    else:
        summary = f"no plaintext left ({searched:,} sampled values searched in {files} files)"
    succeeded = bool(result.get("succeeded"))
    return SweepStatus(True, swept.swept_at, state, succeeded, summary, None if succeeded else command)


def report_data(status: SweepStatus, swept: SweepRecord | None, dialect: str) -> dict[str, Any]:
    """The completion report's sweep section: the status, what the last sweep did and proved,
    and what no sweep can reach — the operator's to handle."""
    return {
        **status.to_json(),
        "result": None if swept is None else swept.result,
        "outOfReach": OUT_OF_REACH.get(dialect, []),
    }
