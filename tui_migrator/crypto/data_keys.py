"""What the ciphers need of a data key and of the place keys come from.

The ciphers seal and open with per-organization data keys but do not care where those keys are
kept: the database-backed key ring (``tui_migrator.storage.keyring``) is one
:class:`DataKeySource`; a test can hand in another.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Protocol

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tui_migrator.common.errors import DecryptionFailed


@dataclass(frozen=True)
class DataKey:
    """An unwrapped data key. ``cipher`` holds the secret; ``repr`` never shows it."""

    key_id: str
    organization_id: str
    generation: int
    cipher: AESGCM
    # The raw key, for a worker process of this run to build its own cipher from (see
    # crypto/worker_keys.py); AESGCM objects do not cross process boundaries.
    material: bytes

    def __repr__(self) -> str:
        return f"DataKey(key_id={self.key_id!r}, organization_id={self.organization_id!r})"


class DataKeySource(Protocol):
    """Where the ciphers get data keys: an organization's active key, or a key by its id."""

    def key_for_organization(self, organization_id: str, *, created_by: str) -> DataKey: ...

    def key_by_id(self, key_id: str) -> DataKey: ...

    def loaded_keys(self) -> list[DataKey]:
        """Every key this source can open tokens with (what a worker process is given)."""
        ...


class ThrowawayKeys:
    """Data keys made in memory for one estimate's sample and never stored: the calibration
    seals and opens real values with them, so estimating creates no key in the database."""

    def __init__(self) -> None:
        self._by_organization: dict[str, DataKey] = {}
        self._by_id: dict[str, DataKey] = {}

    def key_for_organization(self, organization_id: str, *, created_by: str) -> DataKey:
        key = self._by_organization.get(organization_id)
        if key is None:
            material = AESGCM.generate_key(bit_length=256)
            key = DataKey(f"throwaway_{secrets.token_hex(8)}", organization_id, 1, AESGCM(material), material)
            self._by_organization[organization_id] = key
            self._by_id[key.key_id] = key
        return key

    def key_by_id(self, key_id: str) -> DataKey:
        key = self._by_id.get(key_id)
        if key is None:
            raise DecryptionFailed(f"The data key '{key_id}' is not one of this estimate's throwaway keys.")
        return key

    def loaded_keys(self) -> list[DataKey]:
        return list(self._by_id.values())
