"""Runs one migration through the seed's stages: analysis → backup → batches → verification →
audit → report.

The runner owns an asyncio event loop: up to ``maxConcurrency`` batches are in flight as tasks
(table_pass.py), and every database call and every piece of CPU work runs in a worker thread
(``asyncio.to_thread``), so the loop stays free to keep the heartbeat, publish progress and act
on pause and cancel requests from any process (control.py). Every batch commits on its own;
stopping between batches leaves nothing half-written, and resuming starts each table again
after its resume key.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from tui_migrator.common.errors import MigratorError, OperationFailed
from tui_migrator.common.migration_config import MigrationConfig
from tui_migrator.crypto.canary import canary_round_trips
from tui_migrator.crypto.ciphers import RowSealer
from tui_migrator.crypto.codec import decode_key, encode_key
from tui_migrator.engine import backup, verification
from tui_migrator.engine.batch_source import BatchSource, source_for
from tui_migrator.engine.batches import TableBatches
from tui_migrator.engine.collection_pace import paced
from tui_migrator.engine.control import RunControl, Stop
from tui_migrator.engine.cpu_pool import BatchContext, CpuPool, migration_processes
from tui_migrator.engine.phase_progress import PhaseMeter
from tui_migrator.engine.progress import RunMeter
from tui_migrator.engine.retry import FINAL_STATE_RETRY, database_failure, with_retries
from tui_migrator.engine.scope import pending_count
from tui_migrator.engine.table_pass import Key, PassSource, TablePass, slots_for
from tui_migrator.engine.window_steps import Sharing
from tui_migrator.engine.work import MigrationWork, MigrationWorker
from tui_migrator.storage import migration_claims, table_locks
from tui_migrator.storage import migration_records as migrations
from tui_migrator.storage.audit_operations import AuditOperation
from tui_migrator.storage.column_storage import TableAccess, add_companion_columns, organizations_in, reflect
from tui_migrator.storage.database import serialized_write
from tui_migrator.storage.migration_records import BackupChange, MigrationRecord, PhaseProgress, TableProgress
from tui_migrator.storage.migration_status import Phase, Status
from tui_migrator.storage.tables import utc_now

log = logging.getLogger(__name__)
_T = TypeVar("_T")

# Passes over a table after the first, to pick up rows inserted behind the resume key meanwhile
# and retry failed rows.
CATCH_UP_PASSES = 2
# Times verification may send the run back to seal rows written in plaintext after their
# table's last pass (an application's insert or update landing between that pass and the
# completeness check). Past them the run fails, and a resume seals what is left.
SEAL_AGAIN_ROUNDS = 2


# How long a thread of the run's process computes before the GIL goes to one waiting for it
# (Python's default is 5 ms). The threads that read and write batches wait on the database, then
# for the GIL; while they wait out a sealing thread's turn, the PostgreSQL server has no next
# statement. 1 ms kept that at --max-concurrency 1 once the digests stopped letting go of the
# GIL for every message (crypto/ciphers.keyed_sha256), and sped up SQLite there (2026-12-05).
RUN_SWITCH_INTERVAL = 0.001


def _run_to_completion(coroutine: Coroutine[Any, Any, None]) -> None:
    """asyncio.run, also from code that already runs in an event loop (the TUI, async tests):
    the migration then gets a loop of its own in a separate thread. The GIL changes hands every
    RUN_SWITCH_INTERVAL meanwhile, and as before afterwards."""
    with _switching_every(RUN_SWITCH_INTERVAL):
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            asyncio.run(coroutine)
            return
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="migration") as pool:
            pool.submit(asyncio.run, coroutine).result()


@contextmanager
def _switching_every(seconds: float) -> Iterator[None]:
    before = sys.getswitchinterval()
    sys.setswitchinterval(min(before, seconds))
    try:
        yield
    finally:
        sys.setswitchinterval(before)


class MigrationRunner(MigrationWorker):
    """Drives one migration from its current state to a final one."""

    config: MigrationConfig
    meter: RunMeter
    control: RunControl

    def __init__(
        self, work: MigrationWork, *, on_progress: Callable[[MigrationRecord], None] | None = None
    ) -> None:
        super().__init__(work)
        self.on_progress = on_progress
        self.worker_name = migrations.worker_identity()
        self.phase_seconds: dict[str, float] = {}
        self.tables: dict[str, TableAccess] = {}
        # Where the run's CPU work happens: its worker processes, started once the keys are
        # ready (analysis), or this process.
        self.pool = CpuPool(BatchContext(self.cipher, None, self.engine), processes=0)

    # -- entry -----------------------------------------------------------------------------

    @paced
    def run(self) -> MigrationRecord:
        """Run to a final state (completed, failed, cancelled) and return the record."""
        claim = migration_claims.claim_for_run(self.engine, self.migration_id, self.worker_name)
        record, self.epoch = claim.record, claim.epoch
        self.config = record.config
        self.meter = RunMeter(record.config)
        self.control = RunControl(
            self, self.meter, on_progress=self.on_progress, schedule=record.config.schedule
        )
        self.phase_seconds = dict(record.phase_seconds)
        self.record_event(
            AuditOperation.MIGRATION_RUNNING,
            True,
            {
                "worker": self.worker_name,
                "resumed": claim.resumed,
                "claim": claim.epoch,
            },
        )
        try:
            return self._run_to_an_end(record)
        except migration_claims.ClaimLost as lost:
            # Another process runs or rolls it back now: its record is theirs to write.
            return self._step_aside(lost)

    def _run_to_an_end(self, record: MigrationRecord) -> MigrationRecord:
        try:
            _run_to_completion(self._run(record))
        except Stop:
            return self._finish_cancelled()
        except migration_claims.ClaimLost:
            raise
        except MigratorError as error:
            return self._finish_failed(str(error))
        except DBAPIError as error:
            # A database call without its own retry: still said in plain words.
            log.exception("migration %s stopped on a database error", self.migration_id)
            return self._finish_failed(str(database_failure(error, "running the migration")))
        except Exception as error:
            log.exception("migration %s failed unexpectedly", self.migration_id)
            return self._finish_failed(
                f"Unexpected {type(error).__name__}; see the worker's log. "
                "Nothing is half-written: resume or roll back."
            )
        return migrations.get(self.engine, self.migration_id)

    async def _run(self, record: MigrationRecord) -> None:
        heartbeat = asyncio.create_task(self.control.heartbeat())
        watchdog = asyncio.create_task(self.meter.watch_loop_lag())
        try:
            await self._stages(record)
        finally:
            heartbeat.cancel()
            watchdog.cancel()
            await asyncio.to_thread(self.pool.close)

    async def _stages(self, record: MigrationRecord) -> None:
        await self._phase(Phase.ANALYSIS, self._analysis)
        if Phase.BACKUP not in record.skipped_phases:
            await self._phase(Phase.BACKUP, self._backups)
        await self._phase(Phase.BATCH_PROCESSING, self._encrypt_all)
        if Phase.VERIFICATION not in record.skipped_phases:
            for rounds_left in reversed(range(SEAL_AGAIN_ROUNDS + 1)):
                verify = partial(self._verify, seal_again=rounds_left > 0)
                if not await self._phase(Phase.VERIFICATION, verify):
                    break
                # Back to the batches for the rows written since (_encrypt_all finds them).
                await self._phase(Phase.BATCH_PROCESSING, self._encrypt_all)
        await self._phase(Phase.AUDIT, self._audit_completion)
        await self._phase(Phase.REPORTING, self._complete)

    async def _phase(self, phase: Phase, action: Callable[[], Coroutine[Any, Any, _T]]) -> _T:
        await self.control.between_batches()
        await asyncio.to_thread(self.update_record, phase=phase.value)
        started = time.monotonic()
        outcome = await action()
        self.phase_seconds[phase.value] = (
            self.phase_seconds.get(phase.value, 0.0) + time.monotonic() - started
        )
        await asyncio.to_thread(self.update_record, phase_seconds=json.dumps(self.phase_seconds))
        return outcome

    # -- analysis --------------------------------------------------------------------------

    async def _analysis(self) -> None:
        """Resolve the tables and make sure every organization's key is loaded and round-trips
        before batches run."""
        record = await asyncio.to_thread(self.read_record)
        organizations = await asyncio.to_thread(self._reflect_tables, record)
        if self.config.organization_ids:
            organizations &= set(self.config.organization_ids)
        await asyncio.to_thread(self._prepare_keys, sorted(organizations))
        sealer = None
        if self.config.create_backups and not self.config.dry_run:
            sealer = RowSealer(self.master_key, self.migration_id)
        keys = await asyncio.to_thread(self.cipher.worker_keys, sorted(organizations), sealer)
        processes = migration_processes(self.config.max_concurrency, record.total_records)
        self.pool = CpuPool(BatchContext(self.cipher, sealer, self.engine), processes, keys)

    def _reflect_tables(self, record: MigrationRecord) -> set[str]:
        """Each table as the database has it now; the organizations its rows belong to."""
        organizations: set[str] = set()
        with self.engine.connect() as connection:
            for progress in record.tables:
                access = reflect(connection, self.mapping.table(progress.name))
                self.tables[progress.name] = access
                organizations |= organizations_in(connection, access)
        return organizations

    def _prepare_keys(self, organizations: list[str]) -> None:
        self.cipher.prepare(organizations)
        for organization in organizations:
            if not canary_round_trips(self.cipher, organization):
                raise OperationFailed(f"The encryption canary failed for organization {organization}.")

    # -- backups ---------------------------------------------------------------------------

    async def _backups(self) -> None:
        """Make each table's backup table, empty, for the batches to write each row's backup
        into with its tokens (engine/backup.py)."""
        record = await asyncio.to_thread(self.read_record)
        for progress in record.tables:
            await asyncio.to_thread(self._prepare_backup_table, progress)

    def _prepare_backup_table(self, progress: TableProgress) -> None:
        """The table's backup table, created if missing and entered in its progress.

        Backups no batch of this version entered in the batch log were copied in this stage by
        a version before schema version 10 (and, for rows that appeared after that copy, by its
        batches, which recorded nothing of them): where no row of the table has been changed,
        they are dropped (an interrupted copy, say; the batches make each row's backup afresh);
        where that version changed rows, the copy as it stands is read back and entered as the
        batch log's first entry for the table, which the read-back at the end adds up."""
        access = self.tables[progress.name]
        name = backup.backup_table_name(self.migration_id, progress.name)
        with self.fenced_write() as connection:
            table = backup.create_backup_table(connection, access, name)
            migrations.update_table(connection, self.migration_id, progress.name, backup_table=name)
            if migrations.backup_ledger(connection, self.migration_id, progress.name) is not None:
                return
            if progress.encrypted_records == 0:
                connection.execute(sa.delete(table))
                return
        copied = backup.read_back(self.engine, access, table, self.pool, None)
        with self.fenced_write() as connection:
            if migrations.backup_ledger(connection, self.migration_id, progress.name) is None:
                migrations.enter_backup_copy(connection, self.migration_id, progress.name, copied, utc_now())

    async def _verify_backups(self) -> None:
        """Once the batches are done: read each backup copy back and prove it holds what the
        batches wrote (backup.verify_copy), and enter its count and digest."""
        record = await asyncio.to_thread(self.read_record)
        for progress in record.tables:
            if progress.backup_table is None:
                continue
            copied = await asyncio.to_thread(self._verify_backup, progress.name, progress.backup_table)
            if progress.backup_verified and (progress.backup_rows, progress.backup_digest) == (
                copied.rows,
                copied.digest_text,
            ):
                continue  # read back by an earlier run, and unchanged since
            await asyncio.to_thread(
                self.update_table,
                progress.name,
                backup_rows=copied.rows,
                backup_digest=copied.digest_text,
                backup_verified=True,
            )
            await asyncio.to_thread(
                self.record_event,
                AuditOperation.BACKUP_CREATED,
                True,
                {
                    "table": progress.name,
                    "backupRows": copied.rows,
                    "backupTable": progress.backup_table,
                    "digest": copied.digest_text,
                },
            )

    def _verify_backup(self, name: str, table_name: str) -> BackupChange:
        """One table's read-back, retried whole on a lost connection, as verification is."""
        access = self.tables[name]
        table = backup.backup_table(access, table_name)
        return self.retrying(
            lambda: backup.verify_copy(
                self.engine, self.migration_id, access, table, self.pool, self._sharing()
            ),
            what=f"reading back the backups of {name}",
        )

    # -- batches ---------------------------------------------------------------------------

    async def _encrypt_all(self) -> None:
        record = await asyncio.to_thread(self.read_record)
        # A table is done once its passes found nothing left; rows written in plaintext after
        # that (verification counts them, and sends the run back, or a resume comes) take it up
        # again, from its first key.
        pending = [
            progress
            for progress in record.tables
            if not progress.done or await asyncio.to_thread(self._written_since_done, progress)
        ]
        # Every table is made ready (companion columns) before the first batch, so a worker that
        # joins (see joiner.py) can take batches of any of them.
        sources = [await asyncio.to_thread(self._prepare_table, progress) for progress in pending]
        for progress, source in zip(pending, sources, strict=True):
            if progress.done:
                await self._table_pass(source.finishing(), None)
            else:
                start = decode_key(progress.resume_key) if progress.resume_key else None
                await self._table_pass(source, start)
            for catch_up in range(CATCH_UP_PASSES):
                # Where other workers may hold rows, the first catch-up always runs: it waits for
                # their batches to commit, so the table is only done when nothing is in flight.
                always = source.other_workers_may_hold_rows and catch_up == 0
                if not always and not await asyncio.to_thread(
                    self._has_work_left, source.batches, retried=catch_up > 0
                ):
                    break
                # A catch-up pass reads from the table's first key and waits for rows other
                # workers hold: one that found no batch saw no row left (counting them again
                # would scan the whole table a second time to say so).
                if not await self._table_pass(source.finishing(), None):
                    break
            await asyncio.to_thread(self.update_table, progress.name, done=True)
        if Phase.BACKUP not in record.skipped_phases:
            await self._verify_backups()

    async def _table_pass(self, source: PassSource, start: Key | None) -> int:
        """One pass over the table from ``start``; how many batches it found."""
        name = source.batches.table_name
        save = partial(self._save_resume_key, name)
        in_flight = slots_for(source, self.config.max_concurrency, self.pool.batches_in_flight)
        most_rows = await asyncio.to_thread(self.measured_rows, self.tables[name], self.config)
        return await TablePass(source, self.control, self.meter, in_flight, save, most_rows).run(start)

    def _save_resume_key(self, table: str, key: Key) -> None:
        # The resume key's column keeps its historical name, so existing databases resume.
        # Not synced, like the batches it follows: a power loss that undoes it undoes no batch
        # after it either (the log keeps commits in order), and a resume from an older key only
        # reads again rows that hold tokens already, which no batch selects.
        self.update_table(table, checkpoint_key=encode_key(key), durable=False)

    def _prepare_table(self, progress: TableProgress) -> BatchSource:
        access = self.tables[progress.name]
        if not self.config.dry_run:
            before = {c.name for c in access.table.columns}

            def add_companions() -> TableAccess:
                with self.fenced_write() as connection:
                    ready = add_companion_columns(connection, access)
                    added = sorted({c.name for c in ready.table.columns} - before)
                    if added:
                        migrations.update_table(
                            connection,
                            self.migration_id,
                            progress.name,
                            companions_added=json.dumps(sorted({*progress.companions_added, *added})),
                        )
                    return ready

            access = self.retrying(add_companions, what=f"adding companion columns to {progress.name}")
            self.tables[progress.name] = access
        return source_for(self.work.table_batches(access, self.config, epoch=self.epoch, pool=self.pool))

    def _has_work_left(self, batches: TableBatches, *, retried: bool) -> bool:
        """Rows still holding plaintext: inserted behind the resume key meanwhile, or failed
        rows not yet retried in this run (each run, resume included, retries them once)."""
        if self.config.dry_run:
            return False
        pending = self._pending_rows(batches)
        failed = sum(
            1
            for r in self.retrying(
                lambda: migrations.failed_records(self.engine, self.migration_id),
                what="reading failed records",
            )
            if r["table_name"] == batches.table_name
        )
        return pending > failed or (pending > 0 and not retried)

    def _pending_rows(self, batches: TableBatches) -> int:
        """Rows of the table still holding plaintext, in scope."""
        return self._count_pending(batches.access, batches.organizations)

    def _written_since_done(self, progress: TableProgress) -> bool:
        """A table marked done holds rows in plaintext again, beyond those that failed: the
        count verification's completeness check makes (it cannot hold any in a dry run)."""
        if self.config.dry_run:
            return False
        pending = self._count_pending(self.tables[progress.name], self.config.organizations_in_scope)
        return pending > progress.failed_records

    def _count_pending(self, access: TableAccess, organizations: tuple[str, ...] | None) -> int:
        def count_pending() -> int:
            with self.engine.connect() as connection:
                return int(connection.execute(pending_count(access, organizations)).scalar_one())

        return self.retrying(count_pending, what=f"counting rows left in {access.mapped.name}")

    # -- verification, audit, report -------------------------------------------------------

    async def _verify(self, *, seal_again: bool = False) -> bool:
        """Verify; True where the run should go back to the batches first: ``seal_again`` and
        the check failed only on rows written in plaintext after their table's last pass (an
        application's write between that pass and the count), which a pass seals."""
        record = await asyncio.to_thread(self.read_record)
        meter = PhaseMeter(Phase.VERIFICATION, self._write_phase_progress)
        # Read-only, so a lost connection just means reading again (and counting from zero).
        result = await asyncio.to_thread(
            self.retrying, lambda: self._verification(record, meter), what="verifying the migrated rows"
        )
        await asyncio.to_thread(meter.end)
        await asyncio.to_thread(self.update_record, verification=json.dumps(result.to_json()))
        await asyncio.to_thread(
            self.record_event, AuditOperation.INTEGRITY_VERIFIED, result.passed, result.to_json()
        )
        if not result.passed:
            if seal_again and result.rows_to_seal_again:
                warning = (
                    f"Verification found {result.rows_to_seal_again} rows written in plaintext after "
                    "their table's last pass (the application's writes during the run); the run went "
                    "back to seal them and verified again."
                )
                log.warning("migration %s: %s", self.migration_id, warning)
                await asyncio.to_thread(self.update_record, warnings=json.dumps([*record.warnings, warning]))
                return True
            raise verification.VerificationFailed(self._verification_problem(result, record.id))
        await asyncio.to_thread(self._verified, result)
        return False

    @staticmethod
    def _verification_problem(result: verification.VerificationResult, migration_id: str) -> str:
        problem = result.problem or "Integrity verification failed."
        if result.rows_to_seal_again:
            # Sealed again SEAL_AGAIN_ROUNDS times, and written again each time.
            problem += (
                f" They were written after their table's last pass, and again after each of "
                f"{SEAL_AGAIN_ROUNDS} more passes: the application keeps writing plaintext there. "
                f"Resume seals them (tui-migrator resume {migration_id}), best while it writes less."
            )
        return problem

    def _verification(self, record: MigrationRecord, meter: PhaseMeter) -> verification.VerificationResult:
        """What the verification stage checks (a key rotation checks differently)."""
        return verification.verify_migration(
            self.engine,
            record,
            self.tables,
            self.pool,
            self.config.organizations_in_scope,
            meter,
            self._sharing(),
        )

    def _sharing(self) -> Sharing:
        """Workers that joined this migration may take windows of its backups' read-back and of
        its verification (engine/window_steps.py; PostgreSQL)."""
        return Sharing(self.migration_id, migrations.worker_identity())

    def _verified(self, result: verification.VerificationResult) -> None:
        """What follows a passed verification, before the audit stage (nothing, here)."""

    async def _audit_completion(self) -> None:
        record = await asyncio.to_thread(self.read_record)
        await asyncio.to_thread(
            self.record_event,
            AuditOperation.MIGRATION_COMPLETED,
            True,
            {
                "eventLoopMaxLagMs": round(1000 * self.meter.max_loop_lag, 1),
                "totalRecords": record.total_records,
                "encryptedRecords": record.encrypted_records,
                "failedRecords": record.failed_records,
                "dryRun": record.dry_run,
                "batchSize": self.config.batch_size,
                "kind": record.kind.value,
            },
        )

    async def _complete(self) -> None:
        rate = self.meter.rate.rate()

        def finish() -> None:
            with serialized_write(self.engine) as connection:
                migration_claims.fenced_update(
                    connection,
                    self.migration_id,
                    self.epoch,
                    status=Status.COMPLETED.value,
                    phase=Phase.REPORTING.value,
                    completed_at=utc_now(),
                    heartbeat_at=utc_now(),
                    rate_per_second=rate,
                )
                table_locks.release_locks(connection, self.migration_id)

        await asyncio.to_thread(finish)

    # -- progress inside the backup and the verification -----------------------------------

    def _write_phase_progress(self, progress: PhaseProgress | None) -> None:
        if progress is None:
            # Retried: figures left behind would outlive the phase they describe.
            self.update_record(phase_progress=None)
            return
        try:
            self.write_record(phase_progress=json.dumps(progress.to_json()))
        except DBAPIError as error:
            # Like a missed heartbeat, harmless: the next write a second later says it all.
            log.warning("phase progress not recorded: %s", type(error).__name__)

    # -- endings (after the event loop has stopped) ----------------------------------------

    def _finish_cancelled(self) -> MigrationRecord:
        with serialized_write(self.engine) as connection:
            record = migrations.load(connection, self.migration_id, for_update=True)
            migration_claims.fenced_update(
                connection,
                self.migration_id,
                self.epoch,
                status=Status.CANCELLED.value,
                cancelled_at=record.cancelled_at or utc_now(),
                heartbeat_at=utc_now(),
                phase_progress=None,
            )
        record = migrations.get(self.engine, self.migration_id)
        self.record_event(
            AuditOperation.MIGRATION_CANCELLED,
            True,
            {
                "reason": record.cancel_reason,
                "cancelledBy": record.cancelled_by,
                "encryptedRecords": record.encrypted_records,
            },
        )
        return record

    def _step_aside(self, lost: migration_claims.ClaimLost) -> MigrationRecord:
        log.warning("migration %s: %s", self.migration_id, lost.message)
        self.record_event(
            AuditOperation.WORKER_FENCED, False, {"worker": self.worker_name, "claim": self.epoch}
        )
        return migrations.get(self.engine, self.migration_id)

    def _finish_failed(self, message: str) -> MigrationRecord:
        log.error("migration %s failed: %s", self.migration_id, message)
        with_retries(
            FINAL_STATE_RETRY,
            lambda: self.write_record(
                status=Status.FAILED.value,
                error_message=message,
                heartbeat_at=utc_now(),
                phase_progress=None,
            ),
            what="recording that the migration failed",
        )
        self.record_event(AuditOperation.MIGRATION_FAILED, False, {"errorMessage": message})
        return migrations.get(self.engine, self.migration_id)
