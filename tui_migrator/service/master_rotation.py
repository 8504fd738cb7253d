"""``keys rotate-master``: the database's master key replaced by a new one.

The new key is read from a key file the operator made (``keys generate --output``); the tool never
invents a master key for a set-up database. Every data key and the derivation root are re-wrapped
under it in one transaction with the audit entry (storage/master_key_rotation.py); after the
commit this session works under the new key, and every later opening needs it.

Refused while a migration is running or paused: its worker holds the old key and may still need
to store a new organization's data key under it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from tui_migrator.common.errors import BadInput, ConfigError, StateConflict
from tui_migrator.crypto.keys import MasterKey, read_key_file
from tui_migrator.service import access
from tui_migrator.service.session import Session
from tui_migrator.storage import master_key_rotation
from tui_migrator.storage import migration_records as migrations
from tui_migrator.storage.audit_operations import AuditOperation
from tui_migrator.storage.database import serialized_write
from tui_migrator.storage.keyring import KeyRing
from tui_migrator.storage.migration_status import LIVE_STATUSES
from tui_migrator.storage.operators import Action
from tui_migrator.storage.tables import migrations_table


@dataclass(frozen=True)
class MasterKeyRotation:
    old_fingerprint: str
    new_fingerprint: str
    data_keys: int
    new_key_file: Path


def read_new_master_key(path: Path) -> MasterKey:
    """The new key from its file, with the same checks as the master key file (mode 0600,
    base64 of 32 bytes); a missing file is named."""
    if not path.is_file():
        raise BadInput(
            f"There is no key file at {path}; nothing was changed.",
            hint=f"Make one first with: tui-migrator keys generate --output {path}",
        )
    try:
        return MasterKey(read_key_file(path), source=f"key file {path}")
    except ConfigError as error:
        raise BadInput(f"{error} Nothing was changed.", hint=error.hint) from None


def rotate_master_key(session: Session, new_key_file: Path) -> MasterKeyRotation:
    access.authorize(session, Action.MANAGE_KEYS, "keys rotate-master")
    new_key = read_new_master_key(new_key_file)
    old_key = session.master_key
    if new_key.same_key_as(old_key):
        raise BadInput(
            f"The key in {new_key_file} is the database's current master key; nothing was changed.",
            hint=f"Make a new one with: tui-migrator keys generate --output {new_key_file}.new",
        )
    with serialized_write(session.engine) as connection:
        session.keyring.check_still_current(connection)
        _refuse_while_migrations_run(connection)
        count = master_key_rotation.rewrap_everything(connection, old_key, new_key)
        rotation = MasterKeyRotation(old_key.fingerprint, new_key.fingerprint, count, new_key_file)
        session.audit.append(
            connection,
            AuditOperation.MASTER_KEY_ROTATED,
            user_id=session.user,
            success=True,
            details={
                "oldFingerprint": rotation.old_fingerprint,
                "newFingerprint": rotation.new_fingerprint,
                "dataKeysRewrapped": count,
            },
        )
    # The stored secrets derive from the same root as before; only the wrapping changed.
    session.master_key = new_key.with_root(old_key.derivation_root)
    session.keyring = KeyRing(session.engine, session.master_key)
    return rotation


def _refuse_while_migrations_run(connection: sa.Connection) -> None:
    candidates = connection.execute(
        sa.select(migrations_table.c.id).where(
            migrations_table.c.status.in_([s.value for s in LIVE_STATUSES])
        )
    ).scalars()
    running = [
        migration_id
        for migration_id in candidates
        if migrations.load(connection, migration_id).status in LIVE_STATUSES
    ]
    if running:
        raise StateConflict(
            f"The master key cannot be rotated while {', '.join(running)} "
            f"{'is' if len(running) == 1 else 'are'} running or paused: "
            "its worker holds the current key. Nothing was changed.",
            hint="Wait for it to end, or cancel it (tui-migrator cancel ID), then rotate.",
        )
