"""Encrypting one value for one place in the database, and the keyed digests that vouch for it.

A token's associated data binds it to its table, column, primary key and organization, so a
token copied to another row, column or organization fails to decrypt instead of silently
showing the wrong patient's data. Digests are HMAC-SHA-256 under a key derived from the master
key and bound to the same context: a bare SHA-256 of a birth date or a UPDRS score can be
brute-forced in seconds, and equal values in two rows must not give equal digests.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from hashlib import sha256
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tui_migrator.common.errors import DecryptionFailed
from tui_migrator.crypto.codec import decode_value, encode_value, pack, pack_values, unpack_values
from tui_migrator.crypto.data_keys import DataKeySource
from tui_migrator.crypto.keys import MasterKey, Purpose
from tui_migrator.crypto.tokens import NONCE_BYTES, TOKEN_VERSION, Token, parse_token


@dataclass(frozen=True)
class RowContext:
    """Where a value lives: what its token and digest are bound to."""

    table: str
    column: str
    primary_key: tuple[Any, ...]
    organization_id: str
    # The packed key, computed once per row and shared by its columns (see with_column).
    key_bytes: bytes = field(default=b"", compare=False, repr=False)

    def packed_key(self) -> bytes:
        return self.key_bytes or pack_values(self.primary_key)

    def with_column(self, column: str) -> RowContext:
        return RowContext(self.table, column, self.primary_key, self.organization_id, self.packed_key())

    def describe(self) -> str:
        """Names the place for error messages (identifiers only, never values)."""
        key = _pk_text(self.primary_key)
        return f"{self.table}.{self.column} (key {key}, organization {self.organization_id})"


class ValueCipher:
    """Seals values into tokens and opens them again, with cached per-organization keys."""

    def __init__(self, keyring: DataKeySource, master_key: MasterKey, *, actor: str) -> None:
        self._keyring = keyring
        self._digest_key = master_key.derive(Purpose.VALUE_DIGEST)
        self._actor = actor

    def prepare(self, organizations: Iterable[str]) -> None:
        """Load or create each organization's key now, outside any batch transaction.

        Creating a key writes to the database from its own connection; on SQLite, doing that in
        the middle of a batch's transaction would make the batch's own write fail as busy.
        """
        for organization in organizations:
            self._keyring.key_for_organization(organization, created_by=self._actor)

    def encrypt(self, value: Any, context: RowContext) -> str:
        """The token for ``value`` at ``context``. ``value`` must not be NULL."""
        key = self._keyring.key_for_organization(context.organization_id, created_by=self._actor)
        nonce = os.urandom(NONCE_BYTES)
        sealed = key.cipher.encrypt(
            nonce, encode_value(value), associated_data(context, key.key_id, TOKEN_VERSION)
        )
        return str(Token(key_id=key.key_id, nonce=nonce, ciphertext=sealed))

    def decrypt(self, token_text: str, context: RowContext) -> Any:
        """The original value of a token read at ``context``."""
        token = parse_token(token_text)
        if token is None:
            raise DecryptionFailed(f"The value at {context.describe()} is not a token.")
        key = self._keyring.key_by_id(token.key_id)
        if key.organization_id != context.organization_id:
            raise DecryptionFailed(
                f"The token at {context.describe()} was sealed with a key of organization "
                f"'{key.organization_id}'; organizations cannot read each other's data."
            )
        try:
            plain = key.cipher.decrypt(
                token.nonce, token.ciphertext, associated_data(context, key.key_id, token.version)
            )
        except InvalidTag as error:
            raise DecryptionFailed(
                f"The token at {context.describe()} does not decrypt: it was sealed for another "
                "row, column or organization, or it was altered."
            ) from error
        return decode_value(plain)

    def digest(self, value: Any, context: RowContext) -> str:
        """HMAC-SHA-256 of ``value`` bound to its place, hex-encoded."""
        message = pack(b"tm-value/v1", *_place(context), encode_value(value))
        return hmac.new(self._digest_key, message, sha256).hexdigest()

    def digest_row(
        self, table: str, key: tuple[Any, ...], organization: str | None, values: Sequence[Any]
    ) -> str:
        """HMAC-SHA-256 of all mapped values of one row (NULLs included), bound to the row."""
        message = pack(
            b"tm-row/v1", table.encode(), pack_values(key), (organization or "").encode(), pack_values(values)
        )
        return hmac.new(self._digest_key, message, sha256).hexdigest()

    def digest_cells(
        self, table: str, key: tuple[Any, ...], organization: str | None, cells: Mapping[str, Any]
    ) -> str:
        """HMAC-SHA-256 of the original values of some columns of one row (named, NULLs
        included), bound to the row: what one migration sealed there, and nothing else."""
        named = (pack(name.encode(), pack_values([cells[name]])) for name in sorted(cells))
        message = pack(
            b"tm-cells/v2", table.encode(), pack_values(key), (organization or "").encode(), *named
        )
        return hmac.new(self._digest_key, message, sha256).hexdigest()

    def key_id_for(self, organization: str) -> str:
        return self._keyring.key_for_organization(organization, created_by=self._actor).key_id


class RowSealer:
    """Seals whole rows for backups under a key of their own, derived for one migration."""

    def __init__(self, master_key: MasterKey, migration_id: str) -> None:
        self._cipher = AESGCM(master_key.derive(f"{Purpose.BACKUP}/{migration_id}"))
        self._migration_id = migration_id

    def seal(self, table: str, key: tuple[Any, ...], values: Sequence[Any]) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        plain = pack_values(values)
        return nonce + self._cipher.encrypt(nonce, plain, self._context(table, key))

    def open(self, table: str, key: tuple[Any, ...], sealed: bytes) -> list[Any]:
        try:
            plain = self._cipher.decrypt(
                sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], self._context(table, key)
            )
        except InvalidTag as error:
            raise DecryptionFailed(
                f"The backup of {table} row {', '.join(map(str, key))} does not open: it was altered "
                "or belongs to another migration."
            ) from error
        return unpack_values(plain)

    def _context(self, table: str, key: tuple[Any, ...]) -> bytes:
        return pack(b"tm-backup/v1", self._migration_id.encode(), table.encode(), pack_values(key))


def associated_data(context: RowContext, key_id: str, version: int) -> bytes:
    """Canonical bytes of a value's place and key; primary key values keep their type."""
    return pack(f"tmenc/v{version}".encode(), key_id.encode(), *_place(context))


def _place(context: RowContext) -> tuple[bytes, ...]:
    return (
        context.table.encode(),
        context.column.encode(),
        context.packed_key(),
        context.organization_id.encode(),
    )


def _pk_text(primary_key: Sequence[Any]) -> str:
    return ", ".join(str(part) for part in primary_key)
