"""Per-organization data keys (DEKs), stored in the database only wrapped by the master key.

Each organization gets its own random AES-256 key on first use. The wrapped form is bound to
its key id and organization (AES-GCM associated data), so a wrapped key copied to another
organization's row does not unwrap. Unwrapped keys live in memory only, cached for the run.
"""

from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from tui_migrator.common.errors import DecryptionFailed, WrongMasterKey
from tui_migrator.crypto.data_keys import DataKey
from tui_migrator.crypto.keys import MasterKey, Purpose
from tui_migrator.storage.database import serialized_write
from tui_migrator.storage.tables import data_keys_table, utc_now

log = logging.getLogger(__name__)

ALGORITHM = "AES-256-GCM"
KEY_STATUS_ACTIVE = "active"
_WRAP_NONCE_BYTES = 12


@dataclass(frozen=True)
class DataKeyInfo:
    """What may be shown about a stored key: never the key itself."""

    key_id: str
    organization_id: str
    generation: int
    algorithm: str
    status: str
    created_at: datetime
    created_by: str


class KeyRing:
    """Looks up, creates and caches the data keys of one database."""

    def __init__(self, engine: Engine, master_key: MasterKey) -> None:
        self._engine = engine
        self._wrapper = AESGCM(master_key.derive(Purpose.KEY_WRAPPING))
        self._by_id: dict[str, DataKey] = {}
        self._active: dict[str, DataKey] = {}

    def verify_all(self) -> int:
        """Unwrap every stored key; raise :class:`WrongMasterKey` if any fails. Returns the count."""
        with self._engine.connect() as connection:
            rows = connection.execute(sa.select(data_keys_table)).mappings().all()
        for row in rows:
            key = self._unwrap(row)
            self._by_id[key.key_id] = key
        return len(rows)

    def key_for_organization(self, organization_id: str, *, created_by: str) -> DataKey:
        """The organization's active key, created on first use."""
        cached = self._active.get(organization_id)
        if cached is not None:
            return cached
        key = self._load_active(organization_id) or self._create(organization_id, created_by)
        self._remember(key)
        return key

    def key_by_id(self, key_id: str) -> DataKey:
        cached = self._by_id.get(key_id)
        if cached is not None:
            return cached
        with self._engine.connect() as connection:
            row = (
                connection.execute(sa.select(data_keys_table).where(data_keys_table.c.key_id == key_id))
                .mappings()
                .one_or_none()
            )
        if row is None:
            raise DecryptionFailed(
                f"The data key '{key_id}' named by a token is not in this database.",
                hint="The value was encrypted against another database, or its key row was removed.",
            )
        key = self._unwrap(row)
        self._by_id[key.key_id] = key
        return key

    def loaded_keys(self) -> list[DataKey]:
        """Every data key of the database, unwrapped."""
        self.verify_all()
        return list(self._by_id.values())

    def describe(self) -> list[DataKeyInfo]:
        with self._engine.connect() as connection:
            rows = connection.execute(
                sa.select(data_keys_table).order_by(
                    data_keys_table.c.organization_id, data_keys_table.c.generation
                )
            ).mappings()
            return [
                DataKeyInfo(
                    key_id=row["key_id"],
                    organization_id=row["organization_id"],
                    generation=row["generation"],
                    algorithm=row["algorithm"],
                    status=row["status"],
                    created_at=row["created_at"],
                    created_by=row["created_by"],
                )
                for row in rows
            ]

    def _load_active(self, organization_id: str) -> DataKey | None:
        with self._engine.connect() as connection:
            row = (
                connection.execute(
                    sa.select(data_keys_table)
                    .where(
                        data_keys_table.c.organization_id == organization_id,
                        data_keys_table.c.status == KEY_STATUS_ACTIVE,
                    )
                    .order_by(data_keys_table.c.generation.desc())
                    .limit(1)
                )
                .mappings()
                .one_or_none()
            )
        return None if row is None else self._unwrap(row)

    def _create(self, organization_id: str, created_by: str) -> DataKey:
        key_id = f"dek_{secrets.token_hex(8)}"
        raw = AESGCM.generate_key(bit_length=256)
        nonce = os.urandom(_WRAP_NONCE_BYTES)
        wrapped = nonce + self._wrapper.encrypt(nonce, raw, _wrap_context(key_id, organization_id))
        try:
            with serialized_write(self._engine) as connection:
                connection.execute(
                    sa.insert(data_keys_table).values(
                        key_id=key_id,
                        organization_id=organization_id,
                        generation=1,
                        algorithm=ALGORITHM,
                        wrapped_key=wrapped,
                        status=KEY_STATUS_ACTIVE,
                        created_at=utc_now(),
                        created_by=created_by,
                    )
                )
        except IntegrityError:
            # Another process created this organization's key first: use theirs.
            existing = self._load_active(organization_id)
            if existing is None:
                raise
            return existing
        log.info("created data key %s for organization %s", key_id, organization_id)
        return DataKey(key_id, organization_id, 1, AESGCM(raw), raw)

    def _unwrap(self, row: sa.RowMapping) -> DataKey:
        wrapped: bytes = row["wrapped_key"]
        nonce, sealed = wrapped[:_WRAP_NONCE_BYTES], wrapped[_WRAP_NONCE_BYTES:]
        try:
            raw = self._wrapper.decrypt(nonce, sealed, _wrap_context(row["key_id"], row["organization_id"]))
        except InvalidTag as error:
            raise WrongMasterKey(
                f"The master key cannot unwrap data key '{row['key_id']}' of organization "
                f"'{row['organization_id']}': it is not the key this database was set up with.",
                hint="Use the master key (or key file) this database was set up with. Nothing was changed.",
            ) from error
        return DataKey(row["key_id"], row["organization_id"], row["generation"], AESGCM(raw), raw)

    def _remember(self, key: DataKey) -> None:
        self._by_id[key.key_id] = key
        self._active[key.organization_id] = key


def _wrap_context(key_id: str, organization_id: str) -> bytes:
    return f"tui-migrator/dek/v1\x00{key_id}\x00{organization_id}".encode()
