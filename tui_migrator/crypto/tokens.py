"""The text form of an encrypted value: a self-describing, versioned token.

``tmenc:v1:<key id>:<base64url(nonce || AES-256-GCM ciphertext || tag)>``

The prefix makes tokens recognisable in any text column (that is how a migration skips rows it
already encrypted and how the read API tells plaintext from ciphertext); the version lets a
later format coexist; the key id names the data key, so rotation never needs a rewrite.

One rule decides what is sealed, in Python (:func:`is_token`) and in SQL (``engine.scope``):
text that starts with the prefix. Such text that does not parse or does not open is a damaged
token (or plaintext that merely looks like one) — never plaintext to be returned or re-sealed.
"""

from __future__ import annotations

import binascii
import re
from typing import NamedTuple

TOKEN_VERSION = 1
TOKEN_PREFIX = f"tmenc:v{TOKEN_VERSION}:"
NONCE_BYTES = 12
TAG_BYTES = 16
KEY_ID_PATTERN = re.compile(r"^[a-z0-9_]{1,48}$")
_PAYLOAD_PATTERN = re.compile(r"^[A-Za-z0-9_-]+$")
# A whole token: the prefix, a key id, base64url text (one match does what the prefix test, a
# split on ':' and a pattern per part did).
_TOKEN_PATTERN = re.compile(
    rf"{re.escape(TOKEN_PREFIX)}({KEY_ID_PATTERN.pattern[1:-1]}):({_PAYLOAD_PATTERN.pattern[1:-1]})$"
)
_URLSAFE = bytes.maketrans(b"-_", b"+/")
_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
# base64url of the 12-byte nonce: exactly 16 characters, no padding, at the payload's start.
NONCE_TEXT = 16


class Token(NamedTuple):
    # A tuple, not a dataclass: one is made for every token verification opens.
    key_id: str
    nonce: bytes
    ciphertext: bytes  # includes the GCM tag
    version: int = TOKEN_VERSION

    def __str__(self) -> str:
        return token_text(self.key_id, self.nonce + self.ciphertext, self.version)


def token_text(key_id: str, sealed: bytes, version: int = TOKEN_VERSION) -> str:
    """The token of ``sealed`` (nonce || ciphertext || tag) under key ``key_id``."""
    return token_head(key_id, version) + token_payload(sealed)


def token_head(key_id: str, version: int = TOKEN_VERSION) -> str:
    """What every token under key ``key_id`` starts with; its payload follows."""
    return f"tmenc:v{version}:{key_id}:"


def token_payload(sealed: bytes) -> str:
    """base64url of ``sealed`` without padding: a token's last part. Its first NONCE_TEXT
    characters are the nonce's text (12 bytes are 16 characters exactly)."""
    return token_payload_bytes(sealed).decode("ascii")


def token_payload_bytes(sealed: bytes) -> bytes:
    """:func:`token_payload` as ASCII bytes (what a token's digest takes)."""
    return binascii.b2a_base64(sealed, newline=False).translate(_TO_URLSAFE).rstrip(b"=")


def is_token(value: object) -> bool:
    """True when ``value`` is text in token form: the tool treats it as sealed. It may still be
    damaged (fail to parse or to decrypt), which opening it reports."""
    return isinstance(value, str) and value.startswith(TOKEN_PREFIX)


def token_nonce(text: str) -> str | None:
    """The nonce of a token, as its text (the first characters of the payload): what tells one
    sealing of a value from another (a token written by this migration from one written by a
    later one). Cheap, as it runs once per sealed value; a malformed token gives None or a
    nonce that opening it then disproves."""
    if not text.startswith(TOKEN_PREFIX):
        return None
    payload = text[len(TOKEN_PREFIX) :].partition(":")[2]
    return payload[:NONCE_TEXT] if len(payload) > NONCE_TEXT else None


def parse_token(text: str) -> Token | None:
    """Parse ``text`` as a token, or return ``None`` when it is not one."""
    parts = token_parts(text)
    if parts is None:
        return None
    key_id, raw = parts
    return Token(key_id=key_id, nonce=raw[:NONCE_BYTES], ciphertext=raw[NONCE_BYTES:])


def token_parts(text: str) -> tuple[str, bytes] | None:
    """:func:`parse_token` as (key id, nonce || ciphertext || tag), or None: what opening a
    token needs, without an object per token (verification opens every one)."""
    match = _TOKEN_PATTERN.match(text)
    if match is None:
        return None
    key_id, payload = match.groups()
    try:
        # The pattern admits only the base64url alphabet, so nothing is silently skipped here.
        raw = binascii.a2b_base64(payload.encode("ascii").translate(_URLSAFE) + b"=" * (-len(payload) % 4))
    except binascii.Error:
        return None
    if len(raw) < NONCE_BYTES + TAG_BYTES:
        return None
    return key_id, raw
