"""Runs one migration through the seed's eight stages.

The runner owns an asyncio event loop: up to ``maxConcurrency`` batches are in flight as tasks,
and each batch's CPU and database work runs in a worker thread (``asyncio.to_thread``), so the
loop stays free to keep the heartbeat, publish progress and act on pause and cancel requests
from any process. Every batch commits on its own; stopping between batches leaves nothing
half-written, and resuming starts again from the last checkpoint.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from tui_migrator.common.errors import MigratorError
from tui_migrator.crypto.ciphers import RowContext, RowSealer
from tui_migrator.crypto.codec import decode_key, encode_key
from tui_migrator.engine import backup, claims, verification
from tui_migrator.engine.batches import (
    BatchFailed,
    BatchResult,
    RetryPolicy,
    TableBatches,
    database_failure,
    with_retries,
)
from tui_migrator.engine.work import MigrationWork, MigrationWorker
from tui_migrator.storage import migration_records as migrations
from tui_migrator.storage.audit_operations import AuditOperation
from tui_migrator.storage.column_storage import TableAccess, add_companion_columns, organizations_in, reflect
from tui_migrator.storage.database import serialized_write
from tui_migrator.storage.migration_records import MigrationRecord
from tui_migrator.storage.migration_status import Phase, Status
from tui_migrator.storage.tables import utc_now

log = logging.getLogger(__name__)

HEARTBEAT_INTERVAL = 1.0
RATE_WINDOW_SECONDS = 20.0
# "auto" batch size aims for batches of about this long, like pt-online-schema-change's chunk-time.
AUTO_TARGET_SECONDS = 0.5
AUTO_INITIAL_BATCH = 100
AUTO_MIN_BATCH = 10
AUTO_MAX_BATCH = 1000
# Passes over a table after the first, to pick up rows inserted behind the cursor meanwhile
# and retry failed rows.
CATCH_UP_PASSES = 2
# Recording the final state waits longer for the database than a batch does: a migration that
# failed because the server went away should still say so once the server is back.
FINAL_STATE_RETRY = RetryPolicy(attempts=24, first_delay=0.5, max_delay=5.0)


class Stop(Exception):
    """A cancel request was seen: stop dispatching, let in-flight batches finish."""


@dataclass
class RateWindow:
    """Rows per second over the last few seconds of running (paused time never counts)."""

    samples: deque[tuple[float, int]] = field(default_factory=deque)

    def add(self, rows: int) -> None:
        now = time.monotonic()
        self.samples.append((now, rows))
        while self.samples and now - self.samples[0][0] > RATE_WINDOW_SECONDS:
            self.samples.popleft()

    def clear(self) -> None:
        self.samples.clear()

    def rate(self) -> float | None:
        if len(self.samples) < 2:
            return None
        span = self.samples[-1][0] - self.samples[0][0]
        rows = sum(rows for _, rows in list(self.samples)[1:])
        return rows / span if span > 0 else None


def _run_to_completion(coroutine: Any) -> None:
    """asyncio.run, also from code that already runs in an event loop (the TUI, async tests):
    the migration then gets a loop of its own in a separate thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(coroutine)
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="migration") as pool:
        pool.submit(asyncio.run, coroutine).result()


class MigrationRunner(MigrationWorker):
    """Drives one migration from its current state to a final one."""

    def __init__(
        self, work: MigrationWork, *, on_progress: Callable[[MigrationRecord], None] | None = None
    ) -> None:
        super().__init__(work)
        self.on_progress = on_progress
        self.worker = migrations.worker_identity()
        self.rate = RateWindow()
        self.batch_size = AUTO_INITIAL_BATCH
        self.phase_seconds: dict[str, float] = {}
        self.tables: dict[str, TableAccess] = {}
        self.max_loop_lag = 0.0
        self._paused = False
        # PostgreSQL: batches are claimed with row locks, so other workers can join (claims.py).
        self.claimed = claims.supported(work.engine)

    # -- entry -----------------------------------------------------------------------------

    def run(self) -> MigrationRecord:
        """Run to a final state (completed, failed, cancelled) and return the record."""
        record = migrations.claim(self.engine, self.migration_id, self.worker)
        self.config = record.config
        # A dry run writes nothing, so it has nothing to lock or share.
        self.claimed = self.claimed and not record.config.dry_run
        self.batch_size = (
            AUTO_INITIAL_BATCH if record.config.auto_batch_size else int(record.config.batch_size)
        )
        self.phase_seconds = dict(record.phase_seconds)
        self._audit(
            AuditOperation.MIGRATION_RUNNING,
            True,
            {
                "worker": self.worker,
                "resumed": record.started_at is not None and record.stored_status is not Status.PLANNED,
            },
        )
        try:
            _run_to_completion(self._run(record))
        except Stop:
            return self._finish_cancelled()
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
        heartbeat = asyncio.create_task(self._heartbeat_loop())
        watchdog = asyncio.create_task(self._measure_loop_lag())
        try:
            await self._phase(Phase.ANALYSIS, self._analysis)
            if not record.config.dry_run and record.config.create_backups:
                await self._phase(Phase.BACKUP, self._backups)
            await self._phase(Phase.BATCH_PROCESSING, self._encrypt_all)
            if not record.config.dry_run and not record.config.skip_integrity_checks:
                await self._phase(Phase.VERIFICATION, self._verify)
            await self._phase(Phase.AUDIT, self._audit_completion)
            await self._phase(Phase.REPORTING, self._complete)
        finally:
            heartbeat.cancel()
            watchdog.cancel()

    async def _measure_loop_lag(self) -> None:
        """How late a 250 ms timer fires: proof that no CPU work runs on the event loop."""
        interval = 0.25
        while True:
            started = time.monotonic()
            await asyncio.sleep(interval)
            self.max_loop_lag = max(self.max_loop_lag, time.monotonic() - started - interval)

    async def _phase(self, phase: Phase, action: Callable[[], Any]) -> None:
        await self._checkpoint_control()
        await asyncio.to_thread(self._set, phase=phase.value)
        started = time.monotonic()
        await action()
        self.phase_seconds[phase.value] = (
            self.phase_seconds.get(phase.value, 0.0) + time.monotonic() - started
        )
        await asyncio.to_thread(self._set, phase_seconds=json.dumps(self.phase_seconds))

    # -- phases ----------------------------------------------------------------------------

    async def _analysis(self) -> None:
        """Resolve the tables and make sure every organization's key is loaded before batches run."""
        organizations: set[str] = set()
        record = await asyncio.to_thread(self._record)
        with self.engine.connect() as connection:
            for progress in record.tables:
                access = reflect(connection, self.mapping.table(progress.name))
                self.tables[progress.name] = access
                organizations |= organizations_in(connection, access)
        if self.config.organization_ids:
            organizations &= set(self.config.organization_ids)
        await asyncio.to_thread(self.cipher.prepare, sorted(organizations))
        for organization in sorted(organizations):
            context = RowContext("tm_canary", "canary", (0,), organization)
            if self.cipher.decrypt(self.cipher.encrypt("canary", context), context) != "canary":
                raise BatchFailed(f"The encryption canary failed for organization {organization}.")

    async def _backups(self) -> None:
        record = await asyncio.to_thread(self._record)
        sealer = RowSealer(self.master_key, self.migration_id)
        for progress in record.tables:
            if progress.backup_verified:
                continue
            await self._checkpoint_control()
            summary = await asyncio.to_thread(self._backup_table, progress.name, sealer)
            self._audit(
                AuditOperation.BACKUP_CREATED,
                True,
                {
                    "table": progress.name,
                    "backupRows": summary.rows,
                    "backupTable": backup.backup_table_name(self.migration_id, progress.name),
                    "digest": summary.digest,
                },
            )

    def _backup_table(self, name: str, sealer: RowSealer) -> backup.BackupSummary:
        access = self.tables[name]
        table_name = backup.backup_table_name(self.migration_id, name)
        with serialized_write(self.engine) as connection:
            table = backup.create_backup_table(connection, access, table_name)
        batches = self._batches(name, backup_table=None)

        def all_pending() -> Any:
            after = None
            while True:
                rows = batches.read(after=after, limit=1000)
                if not rows:
                    return
                yield rows
                after = batches.key(rows[-1])

        summary = backup.copy_and_verify(self.engine, access, table, all_pending(), sealer, self.cipher)
        with serialized_write(self.engine) as connection:
            migrations.update_table(
                connection,
                self.migration_id,
                name,
                backup_table=table_name,
                backup_rows=summary.rows,
                backup_digest=summary.digest,
                backup_verified=True,
            )
        return summary

    async def _encrypt_all(self) -> None:
        record = await asyncio.to_thread(self._record)
        pending = [progress for progress in record.tables if not progress.done]
        # Every table is made ready (companion columns) before the first batch, so a worker that
        # joins (see joining.py) can take batches of any of them.
        prepared = [await asyncio.to_thread(self._prepare_table, progress) for progress in pending]
        for progress, batches in zip(pending, prepared, strict=True):
            start = decode_key(progress.checkpoint_key) if progress.checkpoint_key else None
            await self._table_pass(batches, start)
            for catch_up in range(CATCH_UP_PASSES):
                # Where other workers may hold rows, the first catch-up always runs: it waits for
                # their batches to commit, so the table is only done when nothing is in flight.
                always = self.claimed and catch_up == 0
                if not always and not await asyncio.to_thread(
                    self._has_work_left, batches, retried=catch_up > 0
                ):
                    break
                await self._table_pass(batches, None, wait=self.claimed)
            await asyncio.to_thread(self._set_table, progress.name, done=True)

    def _prepare_table(self, progress: migrations.TableProgress) -> TableBatches:
        access = self.tables[progress.name]
        backup_table = None
        if not self.config.dry_run:
            before = {c.name for c in access.table.columns}

            def add_companions() -> TableAccess:
                with serialized_write(self.engine) as connection:
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

            access = self._retrying(add_companions, what=f"adding companion columns to {progress.name}")
            self.tables[progress.name] = access
            if self.config.create_backups:
                backup_table = backup.backup_table(
                    access, backup.backup_table_name(self.migration_id, progress.name)
                )
        return self._batches(progress.name, backup_table=backup_table)

    def _batches(self, name: str, *, backup_table: sa.Table | None) -> TableBatches:
        return TableBatches(
            self.engine,
            self.tables[name],
            migration_id=self.migration_id,
            organizations=tuple(self.config.organization_ids) or None,
            cipher=self.cipher,
            sealer=RowSealer(self.master_key, self.migration_id) if backup_table is not None else None,
            backup_table=backup_table,
            dry_run=self.config.dry_run,
            retry=self.retry,
        )

    def _has_work_left(self, batches: TableBatches, *, retried: bool) -> bool:
        """Rows still holding plaintext: inserted behind the cursor meanwhile, or failed rows
        not yet retried in this run (each run, resume included, retries them once)."""
        if self.config.dry_run:
            return False

        def count_pending() -> int:
            with self.engine.connect() as connection:
                return int(
                    connection.execute(
                        sa.select(sa.func.count()).select_from(
                            batches.pending_query(after=None, limit=None).subquery()
                        )
                    ).scalar_one()
                )

        pending = self._retrying(count_pending, what=f"counting rows left in {batches.access.mapped.name}")
        failed = sum(
            1
            for r in self._retrying(
                lambda: migrations.failed_records(self.engine, self.migration_id),
                what="reading failed records",
            )
            if r["table_name"] == batches.access.mapped.name
        )
        return pending > failed or (pending > 0 and not retried)

    async def _table_pass(
        self, batches: TableBatches, start: tuple[Any, ...] | None, *, wait: bool = False
    ) -> None:
        """One keyset pass; up to maxConcurrency batches in flight; checkpoints kept in order.

        Where batches are claimed (PostgreSQL), each is read with its rows locked, skipping rows
        other workers hold; ``wait`` waits for those instead (the pass that finishes a table)."""
        limit = asyncio.Semaphore(self.config.max_concurrency)
        in_flight: set[asyncio.Task[None]] = set()
        order: deque[list[Any]] = deque()  # [last key, committed] per dispatched batch, in key order
        failure: list[BaseException] = []
        after = start

        def next_batch(batch_after: Any) -> tuple[list[Any], claims.ClaimedBatch | None]:
            if self.claimed:
                claimed = claims.claim(batches, after=batch_after, limit=self.batch_size, wait=wait)
                return (claimed.rows if claimed else []), claimed
            return batches.read(after=batch_after, limit=self.batch_size), None

        def process(rows: list[Any], claimed: claims.ClaimedBatch | None, batch_after: Any) -> BatchResult:
            if claimed is not None:
                return claims.process_claimed(batches, claimed, after=batch_after)
            return batches.process(rows, after=batch_after)

        async def run_batch(
            rows: list[Any], claimed: claims.ClaimedBatch | None, batch_after: Any, ticket: list[Any]
        ) -> None:
            try:
                result = await asyncio.to_thread(process, rows, claimed, batch_after)
                self._account(result)
                ticket[1] = True
                await self._advance_checkpoint(batches.access.mapped.name, order)
            except BaseException as error:  # reported once the pass has drained
                failure.append(error)
            finally:
                limit.release()

        try:
            while not failure:
                await self._checkpoint_control(in_flight)
                # A free slot first: a claimed batch holds its row locks until it is processed.
                await limit.acquire()
                try:
                    rows, claimed = await asyncio.to_thread(next_batch, after)
                except BaseException:
                    limit.release()
                    raise
                if not rows:
                    limit.release()
                    break
                ticket = [batches.key(rows[-1]), False]
                order.append(ticket)
                task = asyncio.create_task(run_batch(rows, claimed, after, ticket))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
                after = ticket[0]
        finally:
            if in_flight:
                await asyncio.gather(*in_flight, return_exceptions=True)
        if failure:
            raise failure[0]

    def _account(self, result: BatchResult) -> None:
        self.rate.add(result.rows)
        if self.config.auto_batch_size and result.rows and result.seconds > 0:
            per_row = result.seconds / result.rows
            wanted = AUTO_TARGET_SECONDS / per_row
            # Move half way towards the target each batch, so one slow batch does not whipsaw it.
            self.batch_size = int(max(AUTO_MIN_BATCH, min(AUTO_MAX_BATCH, (self.batch_size + wanted) / 2)))

    async def _advance_checkpoint(self, table: str, order: deque[list[Any]]) -> None:
        last = None
        while order and order[0][1]:
            last = order.popleft()[0]
        if last is not None:
            await asyncio.to_thread(self._set_table, table, checkpoint_key=encode_key(last))

    async def _verify(self) -> None:
        record = await asyncio.to_thread(self._record)
        organizations = tuple(self.config.organization_ids) or None
        # Read-only, so a lost connection just means reading again.
        result = await asyncio.to_thread(
            self._retrying,
            lambda: verification.verify_migration(
                self.engine, record, self.tables, self.cipher, organizations
            ),
            what="verifying the migrated rows",
        )
        await asyncio.to_thread(self._set, verification=json.dumps(result.to_json()))
        self._audit(AuditOperation.INTEGRITY_VERIFIED, result.passed, result.to_json())
        if not result.passed:
            raise verification.VerificationFailed(result.problem or "Integrity verification failed.")

    async def _audit_completion(self) -> None:
        record = await asyncio.to_thread(self._record)
        self._audit(
            AuditOperation.MIGRATION_COMPLETED,
            True,
            {
                "eventLoopMaxLagMs": round(1000 * self.max_loop_lag, 1),
                "totalRecords": record.total_records,
                "encryptedRecords": record.encrypted_records,
                "failedRecords": record.failed_records,
                "dryRun": record.dry_run,
                "batchSize": self.config.batch_size,
            },
        )

    async def _complete(self) -> None:
        def finish() -> None:
            with serialized_write(self.engine) as connection:
                migrations.update(
                    connection,
                    self.migration_id,
                    status=Status.COMPLETED.value,
                    phase=Phase.REPORTING.value,
                    completed_at=utc_now(),
                    heartbeat_at=utc_now(),
                    rate_per_second=self.rate.rate(),
                )
                migrations.release_locks(connection, self.migration_id)

        await asyncio.to_thread(finish)

    # -- control, heartbeat and progress ---------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_INTERVAL)
            await asyncio.to_thread(self._beat)

    def _beat(self) -> None:
        values: dict[str, Any] = {"heartbeat_at": utc_now(), "batch_size_current": self.batch_size}
        if not self._paused:
            values["rate_per_second"] = self.rate.rate()
        try:
            self._write_record(**values)
            record = migrations.get(self.engine, self.migration_id) if self.on_progress else None
        except DBAPIError as error:
            # A missed beat is harmless (a worker is taken for gone only after 15 s of them);
            # the batches themselves retry or fail the migration with the reason.
            log.warning("heartbeat not recorded: %s", type(error).__name__)
            return
        if self.on_progress is not None and record is not None:
            self.on_progress(record)

    async def _checkpoint_control(self, in_flight: set[asyncio.Task[None]] | None = None) -> None:
        """Between batches: honour cancel at once, and wait here while paused.

        A pause lets the batches already in flight commit before the status says paused, so a
        paused migration really writes nothing until it continues.
        """
        control = await asyncio.to_thread(self._control)
        if control.cancel_requested:
            raise Stop
        if not control.pause_requested:
            return
        if in_flight:
            await asyncio.gather(*in_flight, return_exceptions=True)
        paused_at = time.monotonic()
        self._paused = True
        self.rate.clear()
        await asyncio.to_thread(self._set, status=Status.PAUSED.value)
        self._audit(AuditOperation.MIGRATION_PAUSED, True, {})
        try:
            while control.pause_requested and not control.cancel_requested:
                await asyncio.sleep(0.3)
                control = await asyncio.to_thread(self._control)
        finally:
            self._paused = False
            paused = time.monotonic() - paused_at
            await asyncio.to_thread(
                self._set, status=Status.RUNNING.value, paused_seconds=control.paused_seconds + paused
            )
        if control.cancel_requested:
            raise Stop
        self._audit(AuditOperation.MIGRATION_CONTINUED, True, {"pausedSeconds": round(paused, 1)})

    # -- endings ---------------------------------------------------------------------------

    def _finish_cancelled(self) -> MigrationRecord:
        with serialized_write(self.engine) as connection:
            record = migrations.load(connection, self.migration_id, for_update=True)
            migrations.update(
                connection,
                self.migration_id,
                status=Status.CANCELLED.value,
                cancelled_at=record.cancelled_at or utc_now(),
                heartbeat_at=utc_now(),
            )
        record = migrations.get(self.engine, self.migration_id)
        self._audit(
            AuditOperation.MIGRATION_CANCELLED,
            True,
            {
                "reason": record.cancel_reason,
                "cancelledBy": record.cancelled_by,
                "encryptedRecords": record.encrypted_records,
            },
        )
        return record

    def _finish_failed(self, message: str) -> MigrationRecord:
        log.error("migration %s failed: %s", self.migration_id, message)
        with_retries(
            FINAL_STATE_RETRY,
            lambda: self._write_record(
                status=Status.FAILED.value, error_message=message, heartbeat_at=utc_now()
            ),
            what="recording that the migration failed",
        )
        self._audit(AuditOperation.MIGRATION_FAILED, False, {"errorMessage": message})
        return migrations.get(self.engine, self.migration_id)

    # -- small helpers ---------------------------------------------------------------------

    def _set(self, **values: Any) -> None:
        self._retrying(lambda: self._write_record(**values), what="updating the migration record")

    def _write_record(self, **values: Any) -> None:
        with serialized_write(self.engine) as connection:
            migrations.update(connection, self.migration_id, **values)

    def _set_table(self, table: str, **values: Any) -> None:
        def write() -> None:
            with serialized_write(self.engine) as connection:
                migrations.update_table(connection, self.migration_id, table, **values)

        self._retrying(write, what=f"updating the progress of {table}")
