"""The key canary: before trusting a data key with patient data, seal and open a known value
with it. A key that unwraps but does not round-trip (a damaged row, a wrong algorithm) is
caught here, before any record is written with it."""

from __future__ import annotations

from tui_migrator.crypto.ciphers import RowContext, ValueCipher

CANARY_VALUE = "canary"


def canary_context(organization_id: str) -> RowContext:
    """A context no real row can have (``tm_canary`` is never a mapped table)."""
    return RowContext("tm_canary", "canary", (0,), organization_id)


def canary_round_trips(cipher: ValueCipher, organization_id: str) -> bool:
    """Whether ``organization_id``'s data key seals and opens the canary value exactly."""
    context = canary_context(organization_id)
    opened: object = cipher.decrypt(cipher.encrypt(CANARY_VALUE, context), context)
    return opened == CANARY_VALUE
