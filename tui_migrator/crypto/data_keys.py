"""What the ciphers need of a data key and of the place keys come from.

The ciphers seal and open with per-organization data keys but do not care where those keys are
kept: the database-backed key ring (``tui_migrator.storage.keyring``) is one
:class:`DataKeySource`; a test can hand in another.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from cryptography.hazmat.primitives.ciphers.aead import AESGCM


@dataclass(frozen=True)
class DataKey:
    """An unwrapped data key. ``cipher`` holds the secret; ``repr`` never shows it."""

    key_id: str
    organization_id: str
    generation: int
    cipher: AESGCM

    def __repr__(self) -> str:
        return f"DataKey(key_id={self.key_id!r}, organization_id={self.organization_id!r})"


class DataKeySource(Protocol):
    """Where the ciphers get data keys: an organization's active key, or a key by its id."""

    def key_for_organization(self, organization_id: str, *, created_by: str) -> DataKey: ...

    def key_by_id(self, key_id: str) -> DataKey: ...
