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
from tui_migrator.storage.tables import META_KEY_FINGERPRINT, data_keys_table, read_meta, utc_now

log = logging.getLogger(__name__)

ALGORITHM = "AES-256-GCM"
# A key's life: active (seals new values; one per organization), retiring (a newer generation
# seals; a rotation is re-sealing its tokens), retired (no token in the mapped tables uses it
# any more, as a verified rotation proved). Every status still opens what it sealed.
KEY_STATUS_ACTIVE = "active"
KEY_STATUS_RETIRING = "retiring"
KEY_STATUS_RETIRED = "retired"
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
        self._fingerprint = master_key.fingerprint
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

    def forget_active(self) -> None:
        """Read each organization's active key again on next use: a rotation (here or in
        another process) may have made a newer generation active."""
        self._active.clear()

    def add_generations(
        self, connection: sa.Connection, organizations: list[str], *, created_by: str
    ) -> dict[str, tuple[str, list[str]]]:
        """In the caller's write transaction: a new generation for each organization that has
        keys, made active, its older active or retiring keys marked retiring. Persisted (with the
        rotation that will use them) before any token is sealed under them. Returns, per
        organization, the new key's id and the ids of every older key of it that is not retired."""
        self.check_still_current(connection)
        keys = data_keys_table.c
        made: dict[str, tuple[str, list[str]]] = {}
        for organization in organizations:
            rows = connection.execute(
                sa.select(keys.key_id, keys.generation, keys.status).where(
                    keys.organization_id == organization
                )
            ).all()
            if not rows:
                continue
            key_id = new_key_id()
            raw = AESGCM.generate_key(bit_length=256)
            connection.execute(
                sa.update(data_keys_table)
                .where(keys.organization_id == organization, keys.status == KEY_STATUS_ACTIVE)
                .values(status=KEY_STATUS_RETIRING)
            )
            connection.execute(
                sa.insert(data_keys_table).values(
                    key_id=key_id,
                    organization_id=organization,
                    generation=max(row.generation for row in rows) + 1,
                    algorithm=ALGORITHM,
                    wrapped_key=wrap_data_key(self._wrapper, key_id, organization, raw),
                    status=KEY_STATUS_ACTIVE,
                    created_at=utc_now(),
                    created_by=created_by,
                )
            )
            older = [row.key_id for row in rows if row.status != KEY_STATUS_RETIRED]
            made[organization] = (key_id, older)
        self.forget_active()
        return made

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
        key_id = new_key_id()
        raw = AESGCM.generate_key(bit_length=256)
        wrapped = wrap_data_key(self._wrapper, key_id, organization_id, raw)
        try:
            with serialized_write(self._engine) as connection:
                self.check_still_current(connection)
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

    def check_still_current(self, connection: sa.Connection) -> None:
        """Inside a write: refuse if the database's master key was rotated since this ring was
        made (a key wrapped under the old master would be unreadable with the new one)."""
        stored = read_meta(connection, META_KEY_FINGERPRINT)
        if stored is not None and stored != self._fingerprint:
            raise WrongMasterKey(
                f"The database's master key was rotated (its fingerprint is now {stored[:12]}) "
                f"since this session opened with the key {self._fingerprint[:12]}; nothing was written.",
                hint="Open the database again with the new master key.",
            )

    def _unwrap(self, row: sa.RowMapping) -> DataKey:
        raw = unwrap_data_key(self._wrapper, row)
        return DataKey(row["key_id"], row["organization_id"], row["generation"], AESGCM(raw), raw)

    def _remember(self, key: DataKey) -> None:
        self._by_id[key.key_id] = key
        self._active[key.organization_id] = key


def retiring_key_ids(connection: sa.Connection, organizations: list[str]) -> frozenset[str]:
    """The keys of ``organizations`` that a rotation re-seals tokens away from: every one but
    the organization's active key."""
    keys = data_keys_table.c
    query = sa.select(keys.key_id).where(
        keys.organization_id.in_(organizations), keys.status != KEY_STATUS_ACTIVE
    )
    return frozenset(connection.execute(query).scalars())


def retire(connection: sa.Connection, key_ids: frozenset[str]) -> list[str]:
    """Mark ``key_ids`` retired (they still open what they sealed); returns those that were not."""
    keys = data_keys_table.c
    changed = sorted(
        connection.execute(
            sa.select(keys.key_id).where(keys.key_id.in_(key_ids), keys.status != KEY_STATUS_RETIRED)
        ).scalars()
    )
    if changed:
        connection.execute(
            sa.update(data_keys_table).where(keys.key_id.in_(changed)).values(status=KEY_STATUS_RETIRED)
        )
    return changed


def new_key_id() -> str:
    return f"dek_{secrets.token_hex(8)}"


def wrap_data_key(wrapper: AESGCM, key_id: str, organization_id: str, raw: bytes) -> bytes:
    """A data key as stored: a fresh nonce and its AES-GCM sealing under the wrapping key,
    bound to its id and organization."""
    nonce = os.urandom(_WRAP_NONCE_BYTES)
    return nonce + wrapper.encrypt(nonce, raw, _wrap_context(key_id, organization_id))


def unwrap_data_key(wrapper: AESGCM, row: sa.RowMapping) -> bytes:
    """The raw key of a ``tm_data_keys`` row; :class:`WrongMasterKey` if ``wrapper`` is not the
    wrapping key of the master key it was wrapped under."""
    wrapped: bytes = row["wrapped_key"]
    nonce, sealed = wrapped[:_WRAP_NONCE_BYTES], wrapped[_WRAP_NONCE_BYTES:]
    try:
        return wrapper.decrypt(nonce, sealed, _wrap_context(row["key_id"], row["organization_id"]))
    except InvalidTag as error:
        raise WrongMasterKey(
            f"The master key cannot unwrap data key '{row['key_id']}' of organization "
            f"'{row['organization_id']}': it is not the key this database was set up with.",
            hint="Use the master key (or key file) this database was set up with. Nothing was changed.",
        ) from error


def _wrap_context(key_id: str, organization_id: str) -> bytes:
    return f"tui-migrator/dek/v1\x00{key_id}\x00{organization_id}".encode()
