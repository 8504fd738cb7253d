"""Another worker joining a migration that is already running (PostgreSQL).

The worker that started or resumed a migration owns it: it runs the eight stages, keeps the
heartbeat and adds up every result. Any number of other workers (``tui-migrator worker ID`` from
another process or machine) may join it and share its work: batches of the tables during batch
processing, and windows of keys of the backup copies' read-back and of the verification (see
engine/window_steps.py). The database is the only coordinator: windows and batches are
claimed with row locks (storage/shared_windows.py, ``batch_source.ClaimedSource``), so none is
done twice; a window's result and a batch's progress counters are committed in its own
transaction, so every worker's rows count in the owner's results and progress.

A joined worker leaves when the owner is past verification (nothing more to share), and at once
on cancel; it waits while the migration is paused, and stops if the owner's heartbeat goes stale
(the migration is then interrupted and ``resume`` takes over). Asked to leave (``leave``, set by
a stop signal: cli/stop_signals.py), it finishes the batch or window in hand and leaves the rest
to the owner; the migration runs on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from tui_migrator.common.cores import usable_cores
from tui_migrator.common.errors import BadInput
from tui_migrator.crypto.ciphers import RowSealer
from tui_migrator.engine import backup, batch_size, verification
from tui_migrator.engine.batch_source import ClaimedSource
from tui_migrator.engine.collection_pace import paced
from tui_migrator.engine.cpu_pool import BatchContext, migration_processes
from tui_migrator.engine.retry import is_transient
from tui_migrator.engine.window_steps import WindowStep, do_a_joined_window
from tui_migrator.engine.work import MigrationWork, MigrationWorker
from tui_migrator.storage import migration_claims
from tui_migrator.storage import migration_records as migrations
from tui_migrator.storage.audit_operations import AuditOperation
from tui_migrator.storage.column_storage import TableAccess, organizations_in, reflect
from tui_migrator.storage.database import row_locks_supported
from tui_migrator.storage.migration_records import MigrationRecord
from tui_migrator.storage.migration_status import LIVE_STATUSES, Phase, Status
from tui_migrator.storage.shared_windows import StepName

log = logging.getLogger(__name__)

POLL_SECONDS = 0.5
# How often the joined worker re-reads the migration (owner alive, phase) between batches.
RECHECK_SECONDS = 1.0
PHASE_ORDER = list(Phase)


@dataclass
class JoinSummary:
    migration_id: str
    worker: str
    rows: int = 0
    encrypted: int = 0
    failed: int = 0
    by_table: dict[str, int] = field(default_factory=dict)
    # Rows of the windows it did, by step (backup read-back, verification).
    rows_by_step: dict[str, int] = field(default_factory=dict)
    left_because: str = ""
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "migrationId": self.migration_id,
            "worker": self.worker,
            "rowsProcessed": self.rows,
            "encryptedRecords": self.encrypted,
            "failedRecords": self.failed,
            "rowsByTable": dict(self.by_table),
            "windowRowsByStep": dict(self.rows_by_step),
            "leftBecause": self.left_because,
            "warnings": list(self.warnings),
        }


class _Leave(Exception):
    """The migration no longer wants this worker (cancelled, finished batches, owner gone)."""


def refuse_unless_joinable(engine: Engine, record: MigrationRecord) -> None:
    if record.status not in LIVE_STATUSES:
        raise BadInput(
            f"Migration {record.id} is {record.status.value}: no worker is running it, so there is "
            "nothing to join.",
            hint=f"tui-migrator resume {record.id} runs an interrupted, failed or cancelled migration.",
        )
    if not row_locks_supported(engine):
        raise BadInput(
            f"Migration {record.id} is already being run by {record.worker}; a second worker can only "
            "join it on PostgreSQL.",
            hint="SQLite lets one process write at a time, so a second worker would only wait. "
            f"Follow it with: tui-migrator status {record.id}",
        )
    if record.dry_run:
        raise BadInput(
            f"Migration {record.id} is a dry run run by {record.worker}; it writes nothing, so there is "
            "nothing to share with a second worker."
        )


def crowding_warning(record: MigrationRecord, *, here: str, cores: int) -> str | None:
    """Why a worker joining ``record`` from machine ``here`` (``cores`` cores) adds no speed, or
    None: the owner runs on that same machine with a worker process on each of its cores
    (engine/cpu_pool.py), so the machine has no core left for another worker, which then only
    takes turns with the owner's processes (on two cores, PostgreSQL, 100,000 rows: the run took
    longer with a second worker than without; see README → Performance)."""
    if record.worker is None or migrations.worker_host(record.worker) != here:
        return None
    concurrency = record.config.max_concurrency
    if migration_processes(concurrency, record.total_records, cores) < cores:
        return None
    return (
        f"The migration's owner, {record.worker}, runs on this machine with a worker process on "
        f"each of its {cores} cores (--max-concurrency {concurrency}): a worker joining it here "
        "competes with those processes for the same cores, and the migration goes no faster, "
        "perhaps slower. Join from another machine that reaches the database; to share one "
        "machine between workers, start migrations with --max-concurrency 1."
    )


class JoiningWorker(MigrationWorker):
    """Takes batches of a migration another worker owns, until there are none left to take."""

    def __init__(
        self,
        work: MigrationWork,
        *,
        on_batch: Callable[[JoinSummary], None] | None = None,
        leave: threading.Event | None = None,
    ) -> None:
        super().__init__(work)
        self.on_batch = on_batch
        self._leave = leave
        self.summary = JoinSummary(work.migration_id, migrations.worker_identity())
        self._checked_at = 0.0
        self._context: BatchContext | None = None
        self._steps: dict[tuple[str, str], WindowStep] = {}

    @paced
    def run(self) -> JoinSummary:
        record = migrations.get(self.engine, self.migration_id)
        refuse_unless_joinable(self.engine, record)
        # Its batches are written under the owner's claim: a takeover (resume, rollback)
        # fences this worker out as it fences the owner.
        self.epoch = record.claim_epoch
        crowded = crowding_warning(
            record, here=migrations.worker_host(self.summary.worker), cores=usable_cores()
        )
        if crowded is not None:
            # Said at once (the CLI shows warnings on stderr), while stopping costs nothing yet.
            log.warning(crowded)
            self.summary.warnings.append(crowded)
        self.record_event(
            AuditOperation.WORKER_JOINED, True, {"worker": self.summary.worker, "owner": record.worker}
        )
        try:
            self._follow()
        except _Leave as leave:
            self.summary.left_because = str(leave)
        except migration_claims.ClaimLost:
            self.summary.left_because = "the migration was taken over (a resume or a rollback)"
        finally:
            self.record_event(AuditOperation.WORKER_LEFT, True, self.summary.to_json())
        return self.summary

    def _follow(self) -> None:
        """Take what the owner shares, phase by phase, until it is past verification: the batches
        of its tables, windows of its backup copies' read-back and of its verification."""
        batches_shared = False
        while True:
            record = self._current()
            if record.phase == Phase.BATCH_PROCESSING.value and not batches_shared:
                for progress in record.tables:
                    if not progress.done:
                        self._share(progress.name, record)
                batches_shared = True
                continue
            self._between_batches()  # leaves on cancel, waits while paused
            if not self._take_a_window(record):
                time.sleep(POLL_SECONDS)

    # -- following the owner ---------------------------------------------------------------

    def _current(self) -> MigrationRecord:
        """The migration now; leaves when it no longer runs batches."""
        record = self.read_record()
        if record.cancel_requested or record.stored_status is Status.CANCELLED:
            raise _Leave("the migration was cancelled")
        if record.stored_status not in LIVE_STATUSES:
            raise _Leave(f"the migration is {record.status.value}")
        if not record.worker_alive:
            raise _Leave(f"the owner {record.worker} stopped (its heartbeat is stale); resume takes over")
        phase = Phase(record.phase) if record.phase in list(Phase) else Phase.PLANNING
        if PHASE_ORDER.index(phase) > PHASE_ORDER.index(Phase.VERIFICATION):
            raise _Leave("the owner is past verification: nothing is left to share")
        self._checked_at = time.monotonic()
        return record

    def _between_batches(self) -> None:
        if self._leave is not None and self._leave.is_set():
            raise _Leave("it was asked to leave (a stop signal); the owner does what is left")
        requests = self.read_requests()
        if requests.cancel_requested:
            raise _Leave("the migration was cancelled")
        while requests.pause_requested:
            time.sleep(POLL_SECONDS)
            self._current()
            requests = self.read_requests()
            if requests.cancel_requested:
                raise _Leave("the migration was cancelled")
        if time.monotonic() - self._checked_at > RECHECK_SECONDS:
            self._current()

    # -- windows of the backup copies' read-back and of the verification ----------------------------------

    def _take_a_window(self, record: MigrationRecord) -> bool:
        """Do one window the owner published, if one is open; whether there was one."""
        try:
            taken = do_a_joined_window(
                self.engine,
                self.migration_id,
                self.summary.worker,
                lambda name: self._step(name, record),
                self._window_context(),
                lambda connection: migration_claims.check_epoch(connection, self.migration_id, self.epoch),
            )
        except (migration_claims.ClaimLost, _Leave):
            raise
        except DBAPIError as error:
            if not is_transient(error):
                raise _Leave(f"a window it took failed ({type(error).__name__}); the owner does it") from None
            # The server or the connection, not the window: rolled back, the window is open
            # again for whoever comes first; this worker tries again after a pause (reading the
            # migration meanwhile retries with backoff, as its batches do).
            log.warning("a window of %s was rolled back: %s", self.migration_id, error)
            return False
        except Exception as error:
            # Rolled back: the window is open again and the owner does it (and reports what
            # goes wrong with it, if it goes wrong there too).
            log.warning("a window of %s failed in a joined worker: %s", self.migration_id, error)
            raise _Leave(f"a window it took failed ({type(error).__name__}); the owner does it") from None
        if taken is None:
            return False
        name, summary = taken
        rows = int(summary["rows"])
        self.summary.rows_by_step[name.step] = self.summary.rows_by_step.get(name.step, 0) + rows
        if self.on_batch is not None:
            self.on_batch(self.summary)
        return True

    def _window_context(self) -> BatchContext:
        """Seals and opens here, in this process (a joined worker has no worker processes)."""
        if self._context is None:
            self._context = BatchContext(
                self.cipher, RowSealer(self.master_key, self.migration_id), self.engine
            )
        return self._context

    def _step(self, name: StepName, record: MigrationRecord) -> WindowStep:
        """The step a published window belongs to, as the owner runs it."""
        if (name.step, name.table) not in self._steps:
            organizations = record.config.organizations_in_scope
            access = self._reflected(name.table, record)
            backup_table = backup.backup_table(
                access, backup.backup_table_name(self.migration_id, name.table)
            )
            if name.step == backup.READ_BACK_STEP:
                step = backup.read_back_step(access, backup_table)
            elif name.step == verification.VERIFY_STEP:
                step = verification.verify_step(access, self.migration_id, organizations)
            else:
                raise _Leave(f"the owner shares a step this version does not know ({name.step})")
            self._steps[(name.step, name.table)] = step
        return self._steps[(name.step, name.table)]

    # -- sharing one table -----------------------------------------------------------------

    def _share(self, name: str, record: MigrationRecord) -> None:
        access = self._ready_table(name, record)
        source = ClaimedSource(self.work.table_batches(access, record.config, epoch=self.epoch))
        most_rows = self.measured_rows(access, record.config)
        size = batch_size.initial(record.config, running_size=record.batch_size_current)
        after = None
        while True:
            self._between_batches()
            batch = source.next_batch(after=after, limit=min(size, most_rows.rows))
            if batch is None:
                return
            most_rows.follow(batch.rows)
            result = source.process(batch)
            after = batch.last_key
            self.summary.rows += result.rows
            self.summary.encrypted += result.encrypted
            self.summary.failed += len(result.failed)
            self.summary.by_table[name] = self.summary.by_table.get(name, 0) + result.rows
            if self.on_batch is not None:
                self.on_batch(self.summary)

    def _ready_table(self, name: str, record: MigrationRecord) -> TableAccess:
        """The table once the owner has added the companion columns it needs (it does so for
        every table when batch processing starts)."""
        mapped = self.mapping.table(name)
        while True:
            access = self._reflected(name, record)
            if all(column.companion is None or access.has_companion(column) for column in mapped.columns):
                return access
            time.sleep(POLL_SECONDS)
            self._current()

    def _reflected(self, name: str, record: MigrationRecord) -> TableAccess:
        """The table as it is now, with the keys of its organizations in scope ready."""
        with self.engine.connect() as connection:
            access = reflect(connection, self.mapping.table(name))
            organizations = organizations_in(connection, access)
        if record.config.organization_ids:
            organizations &= set(record.config.organization_ids)
        self.cipher.prepare(sorted(organizations))
        return access
