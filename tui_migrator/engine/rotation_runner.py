"""Runs a key rotation (a migration of kind ``rotation``, made by ``keys rotate``): analysis →
batches → verification → audit → reporting, on the runner's claim, heartbeat, pause, cancel,
maintenance window and resume machinery. Only the stages differ from an encryption migration's:
there is no backup (no value changes), the batches re-seal tokens (engine/rotation.py), and the
verification checks every owning migration's digests again; once it passes, the retiring keys
are marked retired.
"""

from __future__ import annotations

import asyncio

from tui_migrator.common.errors import OperationFailed
from tui_migrator.crypto.codec import decode_key
from tui_migrator.engine import verification
from tui_migrator.engine.phase_progress import PhaseMeter
from tui_migrator.engine.rotation import RotationBatches, RotationSource
from tui_migrator.engine.runner import CATCH_UP_PASSES, MigrationRunner
from tui_migrator.storage import keyring
from tui_migrator.storage.audit_operations import AuditOperation
from tui_migrator.storage.migration_records import MigrationRecord, TableProgress
from tui_migrator.storage.migration_status import Phase


class RotationRunner(MigrationRunner):
    """Drives one key rotation from its current state to a final one."""

    retiring: frozenset[str] = frozenset()

    async def _stages(self, record: MigrationRecord) -> None:
        await self._phase(Phase.ANALYSIS, self._analysis)
        await self._phase(Phase.BATCH_PROCESSING, self._rotate_all)
        await self._phase(Phase.VERIFICATION, self._verify)
        await self._phase(Phase.AUDIT, self._audit_completion)
        await self._phase(Phase.REPORTING, self._complete)

    async def _analysis(self) -> None:
        """The tables as they are now, the keys being retired, and each organization's active
        key (the generation ``keys rotate`` stored before this run began) loaded and proved."""
        record = await asyncio.to_thread(self.read_record)
        await asyncio.to_thread(self._reflect_tables, record)
        organizations = sorted(self.config.organization_ids)

        def read_retiring() -> frozenset[str]:
            with self.engine.connect() as connection:
                return keyring.retiring_key_ids(connection, organizations)

        self.retiring = await asyncio.to_thread(self.retrying, read_retiring, what="reading the keys")
        await asyncio.to_thread(self._prepare_keys, organizations)
        active = {self.cipher.key_id_for(organization) for organization in organizations}
        if active & self.retiring:
            raise OperationFailed("An organization's active key is one being retired; nothing was re-sealed.")

    async def _rotate_all(self) -> None:
        record = await asyncio.to_thread(self.read_record)
        for progress in record.tables:
            batches = self._batches(progress)
            if progress.done:
                # Tokens under a retiring key written back after the table's pass (an
                # application restoring an old copy of a row), which verification found: a
                # resume takes the table up again, as an encryption's does (runner._encrypt_all).
                if not await asyncio.to_thread(self._rows_left, batches):
                    continue
                start = None
            else:
                start = decode_key(progress.resume_key) if progress.resume_key else None
            source = RotationSource(batches)
            await self._table_pass(source, start)
            # Rows read again: changed by the application between a batch's read and its write
            # (still under a retiring key), or failed once.
            for _catch_up in range(CATCH_UP_PASSES):
                if not await asyncio.to_thread(self._rows_left, batches):
                    break
                await self._table_pass(source, None)
            await asyncio.to_thread(self.update_table, progress.name, done=True)

    def _batches(self, progress: TableProgress) -> RotationBatches:
        return RotationBatches(
            self.engine,
            self.tables[progress.name],
            migration_id=self.migration_id,
            cipher=self.cipher,
            retiring=self.retiring,
            epoch=self.epoch,
            retry=self.retry,
        )

    def _rows_left(self, batches: RotationBatches) -> bool:
        return self.retrying(batches.pending_rows, what=f"counting rows left in {batches.table_name}") > 0

    def _verification(self, record: MigrationRecord, meter: PhaseMeter) -> verification.VerificationResult:
        return verification.verify_rotation(self.engine, record, self.tables, self.pool, self.retiring, meter)

    def _verified(self, result: verification.VerificationResult) -> None:
        if result.failed_rows == 0:
            self.retrying(self._retire_keys, what="retiring the old keys")

    def _retire_keys(self) -> None:
        """No token under a retiring key is left in the mapped tables: they stop being
        retiring and are retired, in one transaction with the audit entry."""
        with self.fenced_write() as connection:
            retired = keyring.retire(connection, self.retiring)
            if retired:
                self.audit.append(
                    connection,
                    AuditOperation.DATA_KEYS_RETIRED,
                    user_id=self.user,
                    success=True,
                    migration_id=self.migration_id,
                    details={"keyIds": retired},
                )
