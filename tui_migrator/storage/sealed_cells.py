"""What one migration sealed in one row: which columns, and which token it wrote in each.

A row can be sealed by several migrations over time: migration 1 seals it, the application
writes a new plaintext value into one column, migration 2 seals that one. Each migration's row
metadata names the columns it sealed with the nonce of each token it wrote, and its digest
covers exactly the original values of those columns. So verification checks what the migration
did and nothing else, and rollback restores exactly its own cells: a token of a later migration
(another nonce) or a value the application wrote since is left as it is.

Row metadata written before schema version 2 has no column list: it stands for every mapped
column, with a digest over all of the row's mapped values (:attr:`SealedCells.whole_row`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from tui_migrator.crypto.ciphers import ValueCipher
from tui_migrator.crypto.tokens import token_nonce
from tui_migrator.storage.mapping import ResolvedTable

_PLAIN_NONCE = re.compile(r"[A-Za-z0-9_-]*")


@lru_cache(maxsize=65536)
def _json_name(column: str) -> str:
    return json.dumps(column)


@dataclass(frozen=True)
class SealedCells:
    # column → the nonce of the token the migration wrote there (None: unknown, version 1)
    nonces: Mapping[str, str | None]
    whole_row: bool = False

    @classmethod
    def of_tokens(cls, tokens: Mapping[str, str]) -> SealedCells:
        """The cells a batch just sealed, from the tokens it wrote (column → token)."""
        return cls({column: token_nonce(token) for column, token in tokens.items()})

    @classmethod
    def from_metadata(cls, text: str | None, mapped: ResolvedTable) -> SealedCells:
        if text is None:
            return cls({column.name: None for column in mapped.columns}, whole_row=True)
        return cls(json.loads(text))

    def to_metadata(self) -> str:
        """The JSON object of the nonces by column, keys sorted, no spaces: what json.dumps
        gives, written out (one per row sealed), as a nonce is base64url text that JSON never
        escapes. Anything else (a version-1 None, a nonce read from a damaged token) goes
        through json.dumps."""
        return self.metadata_of(sorted(self.nonces.items()))

    @staticmethod
    def metadata_of(items: Sequence[tuple[str, str | None]]) -> str:
        """:meth:`to_metadata` of the nonces by column given as (column, nonce), sorted by
        column (what sealing a row has at hand)."""
        nonces = [nonce for _column, nonce in items if nonce is not None]
        # One match over them all: each is plain where their concatenation is (one class of
        # characters); a None among them leaves them to json.dumps.
        if len(nonces) < len(items) or not _PLAIN_NONCE.fullmatch("".join(nonces)):
            return json.dumps(dict(items), sort_keys=True, separators=(",", ":"))
        return "{" + ",".join([f'{_json_name(column)}:"{nonce}"' for column, nonce in items]) + "}"

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(self.nonces)

    def owns(self, column: str, token: str) -> bool:
        """True if ``token`` (well-formed) in ``column`` is the one this migration wrote."""
        if column not in self.nonces:
            return False
        expected = self.nonces[column]
        return expected is None or token_nonce(token) == expected

    def digest(
        self,
        cipher: ValueCipher,
        mapped: ResolvedTable,
        key: tuple[Any, ...],
        organization: str | None,
        originals: Mapping[str, Any],
    ) -> str:
        """The digest of ``originals`` (column → original value) as this row metadata records it."""
        if self.whole_row:
            values = [originals[column.name] for column in mapped.columns]
            return cipher.digest_row(mapped.name, key, organization, values)
        return cipher.digest_cells(mapped.name, key, organization, {c: originals[c] for c in self.nonces})

    def digest_encoded(
        self,
        cipher: ValueCipher,
        table: str,
        key: tuple[Any, ...],
        organization: str | None,
        encoded: Mapping[str, bytes],
        *,
        packed_key: bytes | None = None,
    ) -> str:
        """:meth:`digest` of the cells' values as encoded (column → the bytes its token seals);
        the same digest. Not for a version-1 row (whole_row), whose digest covers every column.
        ``packed_key``: ``key`` packed already (codec.pack_values)."""
        assert not self.whole_row, "a version-1 row's digest is of its values"
        return cipher.digest_encoded_cells(
            table, key, organization, {c: encoded[c] for c in self.nonces}, packed_key=packed_key
        )

    def digest_tokens(
        self,
        cipher: ValueCipher,
        table: str,
        key: tuple[Any, ...],
        organization: str | None,
        tokens: Mapping[str, str | None],
        *,
        packed_key: bytes | None = None,
    ) -> str | None:
        """The digest of the tokens in this migration's cells (``tokens``: column → the token
        the row holds there, None for none), as its row metadata records it beside the values'
        digest; None where a cell holds no token (or for a version-1 row, which has none)."""
        if self.whole_row:
            return None
        mine = {}
        for column in self.nonces:
            token = tokens.get(column)
            if token is None:
                return None
            mine[column] = token
        return cipher.digest_tokens(table, key, organization, mine, packed_key=packed_key)
