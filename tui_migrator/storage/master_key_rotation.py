"""Replacing the master key of a database: every data key and the derivation root re-wrapped
under the new key, and the stored fingerprint changed, in one transaction.

The master key wraps the data keys and — once it has been rotated — the *derivation root*, the
secret the stored digests, audit proofs, backups and role proofs are derived from (see
crypto/keys.py). A rotation writes nothing else, so it is one short transaction: it commits
whole (every key readable under the new master only) or not at all (every key readable under
the old one only), whatever stops the process in between.
"""

from __future__ import annotations

import base64
import os

import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy.engine import Connection

from tui_migrator.common.errors import WrongMasterKey
from tui_migrator.crypto.keys import MasterKey, Purpose
from tui_migrator.storage.keyring import unwrap_data_key, wrap_data_key
from tui_migrator.storage.tables import (
    META_DERIVATION_ROOT,
    META_KEY_FINGERPRINT,
    data_keys_table,
    read_meta,
    write_meta,
)

_NONCE_BYTES = 12


def with_stored_root(connection: Connection, master_key: MasterKey) -> MasterKey:
    """``master_key`` deriving from the database's root, if its master key was ever rotated.
    The caller has checked the fingerprint already."""
    stored = read_meta(connection, META_DERIVATION_ROOT)
    if stored is None:
        return master_key
    sealed = base64.b64decode(stored)
    wrapper = AESGCM(master_key.derive(Purpose.ROOT_WRAPPING))
    try:
        root = wrapper.decrypt(sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], _root_context(master_key))
    except InvalidTag as error:
        raise WrongMasterKey(
            "The master key cannot unwrap this database's derivation root: it is not the key the "
            "database was last rotated to.",
            hint="Use the master key given to the last 'keys rotate-master'. Nothing was changed.",
        ) from error
    return master_key.with_root(root)


def rewrap_everything(connection: Connection, old: MasterKey, new: MasterKey) -> int:
    """In the caller's write transaction: every data key and the root re-wrapped from ``old`` to
    ``new``, and the fingerprint set to ``new``'s. Returns the number of data keys."""
    old_wrapper = AESGCM(old.derive(Purpose.KEY_WRAPPING))
    new_wrapper = AESGCM(new.derive(Purpose.KEY_WRAPPING))
    rows = connection.execute(sa.select(data_keys_table).order_by(data_keys_table.c.key_id)).mappings().all()
    for row in rows:
        raw = unwrap_data_key(old_wrapper, row)
        connection.execute(
            sa.update(data_keys_table)
            .where(data_keys_table.c.key_id == row["key_id"])
            .values(wrapped_key=wrap_data_key(new_wrapper, row["key_id"], row["organization_id"], raw))
        )
    nonce = os.urandom(_NONCE_BYTES)
    wrapped_root = nonce + AESGCM(new.derive(Purpose.ROOT_WRAPPING)).encrypt(
        nonce, old.derivation_root, _root_context(new)
    )
    write_meta(connection, META_DERIVATION_ROOT, base64.b64encode(wrapped_root).decode("ascii"))
    write_meta(connection, META_KEY_FINGERPRINT, new.fingerprint)
    return len(rows)


def _root_context(master_key: MasterKey) -> bytes:
    # Bound to the master key that wraps it: a root row copied from another database (or left
    # from before a rotation) does not unwrap.
    return f"tui-migrator/derivation-root/v1\x00{master_key.fingerprint}".encode()
