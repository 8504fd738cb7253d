"""Encrypting one value for one place in the database, and the keyed digests that vouch for it.

A token's associated data binds it to its table, column, primary key and organization, so a
token copied to another row, column or organization fails to decrypt instead of silently
showing the wrong patient's data. Digests are HMAC-SHA-256 under a key derived from the master
key and bound to the same context: a bare SHA-256 of a birth date or a UPDRS score can be
brute-forced in seconds, and equal values in two rows must not give equal digests.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, NamedTuple

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tui_migrator.common.errors import DecryptionFailed
from tui_migrator.crypto.codec import LENGTH as _LENGTH
from tui_migrator.crypto.codec import decode_value, encode_value, pack, pack_values, unpack_values
from tui_migrator.crypto.data_keys import DataKey, DataKeySource
from tui_migrator.crypto.keys import MasterKey, Purpose
from tui_migrator.crypto.nonces import random_bytes
from tui_migrator.crypto.tokens import (
    NONCE_BYTES,
    NONCE_TEXT,
    TOKEN_VERSION,
    token_head,
    token_parts,
    token_payload_bytes,
)


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

    def describe(self, column: str | None = None) -> str:
        """Names the place (of ``column`` in this row) for error messages: identifiers only,
        never values."""
        key = _pk_text(self.primary_key)
        return f"{self.table}.{column or self.column} (key {key}, organization {self.organization_id})"


class SealedValues(NamedTuple):
    """What :meth:`ValueCipher.seal_cells` made of some values of one row, in their order."""

    tokens: list[str]
    encoded: list[bytes]  # each value as its token seals it
    nonces: list[str]  # each token's nonce text (see tokens.token_nonce)
    key_id: str
    # Where asked for (TableSealer.seal): :meth:`ValueCipher.digest_encoded_cells` of the values
    # and :meth:`ValueCipher.digest_tokens` of the tokens, what a row's metadata records.
    digest: str | None = None
    tokens_digest: str | None = None


def keyed_sha256(key: bytes) -> hmac.HMAC:
    """HMAC-SHA-256 under ``key``, ready to be copied for each message (_hex_mac).

    Not the one-shot ``hmac.digest``: that lets go of the GIL for every message however short,
    and taking it back waits out any other thread's turn — 2.9 ms a call instead of 2.8 µs
    beside one busy thread (2026-12-05), and a run's own process has several. A copy's
    ``update`` keeps the GIL for messages under 2 KiB (hashlib's threshold) and is faster alone
    too (1.05 µs). The run hands the GIL over at shorter intervals instead (engine/runner.py)."""
    return hmac.new(key, digestmod=hashlib.sha256)


def _hex_mac(keyed: hmac.HMAC, message: bytes) -> str:
    mac = keyed.copy()
    mac.update(message)
    return mac.hexdigest()


class ValueCipher:
    """Seals values into tokens and opens them again, with cached per-organization keys."""

    def __init__(self, keyring: DataKeySource, master_key: MasterKey, *, actor: str) -> None:
        self._keyring = keyring
        self._digest_key = master_key.derive(Purpose.VALUE_DIGEST)
        self._keyed = keyed_sha256(self._digest_key)
        self._actor = actor

    @classmethod
    def with_digest_key(cls, keyring: DataKeySource, digest_key: bytes, *, actor: str) -> ValueCipher:
        """A cipher from the derived digest key instead of the master key (a worker process's)."""
        cipher = cls.__new__(cls)
        cipher._keyring, cipher._digest_key, cipher._actor = keyring, digest_key, actor
        cipher._keyed = keyed_sha256(digest_key)
        return cipher

    def worker_keys(self, organizations: Iterable[str], sealer: RowSealer | None) -> WorkerKeys:
        """What a worker process needs to do this cipher's (and ``sealer``'s) work: every key
        that may open a token, and the active key of each of ``organizations`` (prepared)."""
        return WorkerKeys(
            data_keys=tuple(
                (key.key_id, key.organization_id, key.generation, key.material)
                for key in self._keyring.loaded_keys()
            ),
            active=tuple((organization, self.key_id_for(organization)) for organization in organizations),
            digest_key=self._digest_key,
            actor=self._actor,
            backup=None if sealer is None else (sealer._key, sealer._migration_id),
        )

    def prepare(self, organizations: Iterable[str]) -> None:
        """Load or create each organization's key now, outside any batch transaction.

        Creating a key writes to the database from its own connection; on SQLite, doing that in
        the middle of a batch's transaction would make the batch's own write fail as busy.
        """
        for organization in organizations:
            self._keyring.key_for_organization(organization, created_by=self._actor)

    def encrypt(self, value: Any, context: RowContext) -> str:
        """The token for ``value`` at ``context``. ``value`` must not be NULL."""
        return self.encrypt_cells(context, ((context.column, value),))[0]

    def encrypt_cells(self, row: RowContext, cells: Sequence[tuple[str, Any]]) -> list[str]:
        """The tokens of some values of one row (column, value; none NULL), in order."""
        return self.seal_cells(row, cells).tokens

    def seal_cells(self, row: RowContext, cells: Sequence[tuple[str, Any]]) -> SealedValues:
        """The tokens of some values of one row (column, value; none NULL), in order, with what
        the caller records of them: the encoded values they seal (what
        :meth:`digest_encoded_cells` digests), each token's nonce text and the key's id. The
        row's key is looked up and its place packed once, every value under its own random
        nonce."""
        return self.seal_encoded_cells(row, [(column, encode_value(value)) for column, value in cells])

    def seal_encoded_cells(self, row: RowContext, cells: Sequence[tuple[str, bytes]]) -> SealedValues:
        """:meth:`seal_cells` of values encoded already (column, the bytes a token seals): what
        a key rotation seals again, exactly as the old token held them. Each value's sealed
        bytes are opened under the same associated data before its token is made, and must give
        back the very bytes sealed; DecryptionFailed names the cell where they do not."""
        return self.table_sealer(row.table).seal(
            row.primary_key, row.organization_id, row.packed_key(), cells, digests=False
        )

    def table_sealer(self, table: str) -> TableSealer:
        """What seals the values of many rows of ``table`` (a batch's): see :class:`TableSealer`."""
        return TableSealer(self, table)

    def decrypt(self, token_text: str, context: RowContext) -> Any:
        """The original value of a token read at ``context``."""
        return self.decrypt_cells(context, ((context.column, token_text),))[0]

    def decrypt_cells(self, row: RowContext, cells: Sequence[tuple[str, str]]) -> list[Any]:
        """The original values of some tokens of one row (column, token text), in order. The
        first that does not open raises DecryptionFailed naming its place."""
        values = self.open_cells(row, cells)
        for value in values:
            if isinstance(value, DecryptionFailed):
                raise value
        return values

    def open_cells(self, row: RowContext, cells: Sequence[tuple[str, str]]) -> list[Any]:
        """Like :meth:`decrypt_cells`, each token that does not open giving its
        DecryptionFailed in its place instead of raising it (verification judges cell by cell)."""
        return [
            opened if isinstance(opened, DecryptionFailed) else decode_value(opened)
            for opened in self.open_encoded_cells(row, cells)
        ]

    def open_encoded_cells(
        self, row: RowContext, cells: Sequence[tuple[str, str]]
    ) -> list[bytes | DecryptionFailed]:
        """Like :meth:`open_cells`, each value left as the encoded bytes its token sealed (what
        :meth:`digest_encoded_cells` digests: verification compares those, not decoded values)."""
        place = row_place(row)
        key_by_id, table, organization = self._keyring.key_by_id, row.table, row.organization_id
        values: list[bytes | DecryptionFailed] = []
        key: DataKey | None = None  # a row's tokens are almost always under one key
        for column, text in cells:
            parts = token_parts(text)
            if parts is None:
                values.append(DecryptionFailed(f"The value at {row.describe(column)} is not a token."))
                continue
            key_id, sealed = parts
            if key is None or key.key_id != key_id:
                try:
                    key = key_by_id(key_id)
                except DecryptionFailed as unknown:
                    values.append(unknown)
                    continue
            if key.organization_id != organization:
                values.append(
                    DecryptionFailed(
                        f"The token at {row.describe(column)} was sealed with a key of organization "
                        f"'{key.organization_id}'; organizations cannot read each other's data."
                    )
                )
                continue
            aad = associated_prefix(TOKEN_VERSION, key_id, table, column) + place
            try:
                values.append(key.cipher.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], aad))
            except InvalidTag:
                values.append(
                    DecryptionFailed(
                        f"The token at {row.describe(column)} does not decrypt: it was sealed for "
                        "another row, column or organization, or it was altered."
                    )
                )
        return values

    def digest(self, value: Any, context: RowContext) -> str:
        """HMAC-SHA-256 of ``value`` bound to its place, hex-encoded."""
        message = pack(b"tm-value/v1", *_place(context), encode_value(value))
        return _hex_mac(self._keyed, message)

    def digest_row(
        self,
        table: str,
        key: tuple[Any, ...],
        organization: str | None,
        values: Sequence[Any],
        *,
        packed_values: bytes | None = None,
    ) -> str:
        """HMAC-SHA-256 of all mapped values of one row (NULLs included), bound to the row.
        ``packed_values``: ``values`` packed already (pack_values), where the caller has them."""
        if packed_values is None:
            packed_values = pack_values(values)
        message = pack(
            b"tm-row/v1", table.encode(), pack_values(key), (organization or "").encode(), packed_values
        )
        return _hex_mac(self._keyed, message)

    def digest_cells(
        self, table: str, key: tuple[Any, ...], organization: str | None, cells: Mapping[str, Any]
    ) -> str:
        """HMAC-SHA-256 of the original values of some columns of one row (named, NULLs
        included), bound to the row: what one migration sealed there, and nothing else."""
        return self.digest_encoded_cells(
            table,
            key,
            organization,
            {name: b"" if value is None else encode_value(value) for name, value in cells.items()},
        )

    def digest_encoded_cells(
        self,
        table: str,
        key: tuple[Any, ...],
        organization: str | None,
        cells: Mapping[str, bytes],
        *,
        packed_key: bytes | None = None,
    ) -> str:
        """:meth:`digest_cells` of values already encoded (b"" for NULL): a sealed token's
        plaintext is its value encoded, so sealing and verification digest the bytes they hold.
        ``packed_key``: ``key`` packed already (pack_values), where the caller has it."""
        # pack(head..., *(pack(name, pack_values([value])) for each cell)), written out flat: the
        # same bytes with no intermediate ones, and what depends only on the table or a column's
        # name made once (this runs for every row sealed or verified).
        message = _row_message(
            _cells_head(table), pack_values(key) if packed_key is None else packed_key, organization
        )
        for name in sorted(cells):
            message += _value_part(name, cells[name])
        return _hex_mac(self._keyed, b"".join(message))

    def digest_tokens(
        self,
        table: str,
        key: tuple[Any, ...],
        organization: str | None,
        tokens: Mapping[str, str],
        *,
        packed_key: bytes | None = None,
    ) -> str:
        """HMAC-SHA-256 of the tokens some cells of one row hold (column → token text), bound to
        the row: what a migration wrote there, recorded beside the digest of the values. Equal
        again later, the cells hold those very tokens, byte for byte (so they open as they did
        when they were written); keyed, so no one without the key can make it fit other tokens.
        ``packed_key``: ``key`` packed already (pack_values), where the caller has it."""
        return self.digest_ordered_tokens(
            table,
            pack_values(key) if packed_key is None else packed_key,
            organization,
            [(name, tokens[name]) for name in sorted(tokens)],
        )

    def digest_ordered_tokens(
        self, table: str, packed_key: bytes, organization: str | None, tokens: Iterable[tuple[str, str]]
    ) -> str:
        """:meth:`digest_tokens` of (column, token) pairs given in column-name order, the row's
        key packed (pack_values): what verification works out for every row it reads back,
        its columns put in that order once for the whole batch."""
        message = _row_message(_tokens_head(table), packed_key, organization)
        for name, token in tokens:
            message += _token_part(name, token.encode())
        return _hex_mac(self._keyed, b"".join(message))

    def key_id_for(self, organization: str) -> str:
        return self._keyring.key_for_organization(organization, created_by=self._actor).key_id

    def organization_of_key(self, key_id: str) -> str | None:
        """The organization data key ``key_id`` belongs to; None where it is not one this
        cipher can open tokens with."""
        try:
            return self._keyring.key_by_id(key_id).organization_id
        except (DecryptionFailed, KeyNotGiven):
            return None


class TableSealer:
    """Seals the values of many rows of one table (a batch's), each row's at once.

    What is the same for every row is worked out once: per organization its key, the head of
    its tokens and each column's associated-data prefix. Where asked, a row's two digests — of
    the values sealed (:meth:`ValueCipher.digest_encoded_cells`) and of the tokens made
    (:meth:`ValueCipher.digest_tokens`), what its row metadata records — are built while its
    values are sealed, from the same bytes: the row's place, shared by the associated data and
    both digests' messages, and each token's bytes. A worker process seals a whole batch with
    one; the keys it holds do not change during a batch."""

    def __init__(self, cipher: ValueCipher, table: str) -> None:
        self._cipher = cipher
        self._table = table
        self._keys: dict[str, _SealingKey] = {}
        self._cells_head = _cells_head(table)
        self._tokens_head = _tokens_head(table)

    def seal(
        self,
        key: tuple[Any, ...],
        organization: str,
        packed_key: bytes,
        cells: Sequence[tuple[str, bytes]],
        *,
        digests: bool,
    ) -> SealedValues:
        """The tokens of some values of one row (column, the value encoded), in order, each
        under its own random nonce, opened under the same associated data before it is used
        (it must give back the very bytes sealed; DecryptionFailed names the cell where it does
        not). ``packed_key``: the row's ``key`` packed (pack_values). ``digests``: with the
        row's two digests, for which ``cells`` come in column-name order (ValueError if not)."""
        sealing = self._keys.get(organization)
        if sealing is None:
            sealing = self._keys[organization] = self._sealing_key(organization)
        encrypt, decrypt, key_id, head, prefixes = sealing
        place = _place_bytes(packed_key, organization)
        nonces = random_bytes(NONCE_BYTES * len(cells))
        tokens: list[str] = []
        nonce_texts: list[str] = []
        values = [self._cells_head, place]
        written = [self._tokens_head, place]
        start, previous, head_size = 0, None, len(head)
        # What the loop calls, bound once: it runs for every value sealed.
        length, two_lengths = _LENGTH, _TWO_LENGTHS
        append_token, append_nonce = tokens.append, nonce_texts.append
        for column, plain in cells:
            nonce = nonces[start : start + NONCE_BYTES]
            start += NONCE_BYTES
            prefix = prefixes.get(column)
            if prefix is None:
                prefix = prefixes[column] = associated_prefix(TOKEN_VERSION, key_id, self._table, column)
            associated = prefix + place
            sealed = encrypt(nonce, plain, associated)
            # Opened at once, as it must open for ever: what lets verification find the token
            # unchanged in the row afterwards instead of opening it again (engine.verification).
            if not _opens_to(decrypt, nonce, sealed, associated, plain):
                place_named = RowContext(self._table, column, key, organization).describe()
                raise DecryptionFailed(
                    f"A fresh token of {place_named} did not open to its value; it was not used."
                )
            token_bytes = head + token_payload_bytes(nonce + sealed)
            token = token_bytes.decode("ascii")
            append_token(token)
            append_nonce(token[head_size : head_size + NONCE_TEXT])
            if digests:
                if previous is not None and column <= previous:
                    raise ValueError("a row's digests are of its cells in column-name order")
                previous = column
                # _value_part and _token_part, written out
                name_part, name_size = _cell_name(column)
                size = len(plain)
                values += (length(name_size + size), name_part, two_lengths(4 + size, size), plain)
                written += (name_part, length(len(token_bytes)), token_bytes)
        encoded = [plain for _column, plain in cells]
        if not digests:
            return SealedValues(tokens, encoded, nonce_texts, key_id)
        keyed = self._cipher._keyed
        values_mac, tokens_mac = keyed.copy(), keyed.copy()
        values_mac.update(b"".join(values))
        tokens_mac.update(b"".join(written))
        return SealedValues(
            tokens, encoded, nonce_texts, key_id, values_mac.hexdigest(), tokens_mac.hexdigest()
        )

    def _sealing_key(self, organization: str) -> _SealingKey:
        cipher = self._cipher
        key = cipher._keyring.key_for_organization(organization, created_by=cipher._actor)
        return _SealingKey(
            key.cipher.encrypt,
            key.cipher.decrypt,
            key.key_id,
            token_head(key.key_id).encode("ascii"),
            _column_prefixes(key.key_id, self._table),
        )


class _SealingKey(NamedTuple):
    """An organization's active key as a TableSealer seals with it."""

    encrypt: Callable[[bytes, bytes, bytes], bytes]
    decrypt: Callable[[bytes, bytes, bytes], bytes]
    key_id: str
    head: bytes  # what each of its tokens starts with (tokens.token_head)
    prefixes: dict[str, bytes]  # each column's associated-data prefix under it (filled as sealed)


class RowSealer:
    """Seals whole rows for backups under a key of their own, derived for one migration."""

    def __init__(self, master_key: MasterKey, migration_id: str) -> None:
        self._key = master_key.derive(f"{Purpose.BACKUP}/{migration_id}")
        self._cipher = AESGCM(self._key)
        self._migration_id = migration_id
        self._heads: dict[str, bytes] = {}

    @classmethod
    def with_key(cls, key: bytes, migration_id: str) -> RowSealer:
        """A sealer from the migration's derived backup key (a worker process's)."""
        sealer = cls.__new__(cls)
        sealer._key, sealer._cipher, sealer._migration_id = key, AESGCM(key), migration_id
        sealer._heads = {}
        return sealer

    def seal(self, table: str, key: tuple[Any, ...], values: Sequence[Any]) -> bytes:
        return self.seal_packed(table, key, pack_values(values))

    def seal_packed(
        self, table: str, key: tuple[Any, ...], packed_values: bytes, *, packed_key: bytes | None = None
    ) -> bytes:
        """:meth:`seal` of values packed already (pack_values); ``packed_key``: ``key`` packed
        already, where the caller has it. The sealed bytes are opened at once under the same
        associated data and must give back ``packed_values`` exactly (DecryptionFailed names the
        row where they do not): what lets the backup's read-back compare the bytes stored with
        the bytes written instead of opening every backup again (engine.backup)."""
        nonce = random_bytes(NONCE_BYTES)
        context = self._context(table, pack_values(key) if packed_key is None else packed_key)
        sealed = self._cipher.encrypt(nonce, packed_values, context)
        if not _opens_to(self._cipher.decrypt, nonce, sealed, context, packed_values):
            raise DecryptionFailed(
                f"A fresh backup of {table} row {_pk_text(key)} did not open to its values; it was not used."
            )
        return nonce + sealed

    def holds(self, table: str, key: tuple[Any, ...], sealed: bytes, packed_values: bytes) -> bool:
        """Whether ``sealed``, a backup of the row of ``table`` with key ``key``, opens to exactly
        ``packed_values`` (pack_values of the row's values as they are now)."""
        context = self._context(table, pack_values(key))
        return _opens_to(
            self._cipher.decrypt, sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], context, packed_values
        )

    def open(self, table: str, key: tuple[Any, ...], sealed: bytes) -> list[Any]:
        try:
            plain = self._cipher.decrypt(
                sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], self._context(table, pack_values(key))
            )
        except InvalidTag as error:
            raise DecryptionFailed(
                f"The backup of {table} row {', '.join(map(str, key))} does not open: it was altered "
                "or belongs to another migration."
            ) from error
        return unpack_values(plain)

    def _context(self, table: str, packed_key: bytes) -> bytes:
        """pack(b"tm-backup/v1", migration id, table, packed key): the associated data of a
        row's backup. Its head, the same for every row of the table, is packed once."""
        head = self._heads.get(table)
        if head is None:
            head = self._heads[table] = pack(b"tm-backup/v1", self._migration_id.encode(), table.encode())
        return head + _LENGTH(len(packed_key)) + packed_key


@dataclass(frozen=True)
class WorkerKeys:
    """The keys a worker process of one run seals and opens with: the data keys, the derived
    digest key and the run's derived backup key — never the master key. They reach the worker
    through its pipe, never a file or a command line; ``repr`` shows none of them."""

    data_keys: tuple[tuple[str, str, int, bytes], ...]
    # organization -> the key id its values are sealed with
    active: tuple[tuple[str, str], ...]
    digest_key: bytes
    actor: str
    backup: tuple[bytes, str] | None

    def __repr__(self) -> str:
        return f"WorkerKeys({len(self.data_keys)} data keys)"

    def cipher(self) -> ValueCipher:
        keys = [
            DataKey(key_id, organization, generation, AESGCM(raw), raw)
            for key_id, organization, generation, raw in self.data_keys
        ]
        return ValueCipher.with_digest_key(
            FixedKeys(keys, dict(self.active)), self.digest_key, actor=self.actor
        )

    def sealer(self) -> RowSealer | None:
        return None if self.backup is None else RowSealer.with_key(*self.backup)


class KeyNotGiven(LookupError):
    """A worker process was not given the key a value needs (an organization whose first key
    was created after the run's workers started): the caller does that batch itself."""


class FixedKeys:
    """The data keys a worker process was given, and no others: it never creates one."""

    def __init__(self, keys: Sequence[DataKey], active: Mapping[str, str]) -> None:
        self._by_id = {key.key_id: key for key in keys}
        self._active = {organization: self._by_id[key_id] for organization, key_id in active.items()}

    def key_for_organization(self, organization_id: str, *, created_by: str) -> DataKey:
        key = self._active.get(organization_id)
        if key is None:
            raise KeyNotGiven(organization_id)
        return key

    def key_by_id(self, key_id: str) -> DataKey:
        key = self._by_id.get(key_id)
        if key is None:
            raise KeyNotGiven(key_id)
        return key

    def loaded_keys(self) -> list[DataKey]:
        return list(self._by_id.values())


def associated_data(context: RowContext, key_id: str, version: int) -> bytes:
    """Canonical bytes of a value's place and key; primary key values keep their type:
    pack(version, key id, table, column, packed key, organization)."""
    return associated_prefix(version, key_id, context.table, context.column) + row_place(context)


@lru_cache(maxsize=65536)
def associated_prefix(version: int, key_id: str, table: str, column: str) -> bytes:
    """The part of the associated data shared by a column's values under one key. ``pack`` is a
    concatenation, so this followed by :func:`row_place` is the whole of it."""
    return pack(f"tmenc/v{version}".encode(), key_id.encode(), table.encode(), column.encode())


@lru_cache(maxsize=1024)
def _column_prefixes(key_id: str, table: str) -> dict[str, bytes]:
    """The associated-data prefix of each column of ``table`` under key ``key_id``, filled in
    as columns are first sealed (a lookup per value instead of a cached call)."""
    return {}


@lru_cache(maxsize=1024)
def _cells_head(table: str) -> bytes:
    """The start of a cells digest's message: pack's parts for its version and ``table``."""
    return pack(b"tm-cells/v2", table.encode())


def _row_message(head: bytes, packed_key: bytes, organization: str | None) -> list[bytes]:
    """The start of a row's digest message: ``head`` (its kind and table), then the row's place
    (its packed key and organization, each after its length)."""
    return [head, _place_bytes(packed_key, organization or "")]


def _opens_to(
    unseal: Callable[[bytes, bytes, bytes], bytes],
    nonce: bytes,
    sealed: bytes,
    associated: bytes,
    plain: bytes,
) -> bool:
    """Whether ``sealed`` opens (AES-GCM ``unseal``) under ``associated`` to exactly ``plain``."""
    try:
        return unseal(nonce, sealed, associated) == plain
    except InvalidTag:
        return False


@lru_cache(maxsize=1024)
def _tokens_head(table: str) -> bytes:
    """The start of a tokens digest's message: pack's parts for its version and ``table``."""
    return pack(b"tm-tokens/v1", table.encode())


@lru_cache(maxsize=65536)
def _cell_name(name: str) -> tuple[bytes, int]:
    """A column's name packed (pack's part for it), and the size of a cell's part in a cells
    digest's message less its encoded value's size: the name's part and two lengths."""
    name_bytes = name.encode()
    return _LENGTH(len(name_bytes)) + name_bytes, 4 + len(name_bytes) + 8


_TWO_LENGTHS = struct.Struct(">II").pack


def _value_part(name: str, encoded: bytes) -> tuple[bytes, ...]:
    """One cell's part of a cells digest's message: pack(name, pack(encoded)) written out flat
    (its length, the packed name, then 4 + size and size, then the bytes)."""
    name_part, name_size = _cell_name(name)
    size = len(encoded)
    return (_LENGTH(name_size + size), name_part, _TWO_LENGTHS(4 + size, size), encoded)


def _token_part(name: str, token_bytes: bytes) -> tuple[bytes, ...]:
    """One cell's part of a tokens digest's message: the packed name, then the token's text
    (``token_bytes``, encoded) after its length."""
    return (_cell_name(name)[0], _LENGTH(len(token_bytes)), token_bytes)


def row_place(row: RowContext) -> bytes:
    """The part of the associated data shared by a row's values: its packed key and organization."""
    return _place_bytes(row.packed_key(), row.organization_id)


def _place_bytes(packed_key: bytes, organization: str) -> bytes:
    """pack(packed key, organization): a row's place, in its values' associated data and (after
    a digest's kind and table) in both of its digests' messages."""
    organization_bytes = organization.encode()
    return _LENGTH(len(packed_key)) + packed_key + _LENGTH(len(organization_bytes)) + organization_bytes


def _place(context: RowContext) -> tuple[bytes, ...]:
    return (
        context.table.encode(),
        context.column.encode(),
        context.packed_key(),
        context.organization_id.encode(),
    )


def _pk_text(primary_key: Sequence[Any]) -> str:
    return ", ".join(str(part) for part in primary_key)
