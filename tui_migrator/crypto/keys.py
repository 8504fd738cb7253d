"""The master key (key-encryption key) and the keys derived from it.

The master key comes from ``TUI_MIGRATOR_MASTER_KEY`` (base64 of 32 bytes) or from a key file,
by default ``master.key`` in the data dir, created with mode 0600 the first time a database is
set up. It never reaches the database, a log line, an exception message or a ``repr``: only its
fingerprint (an HMAC of a constant) is stored, so a wrong key is recognised before any write.

Every other secret is derived from it with HKDF-SHA-256 under a distinct label, so the wrapping
key, the value-digest key and the audit key are independent of one another.

After ``keys rotate-master`` the master key no longer derives everything itself. It still wraps
the data keys, names itself by its fingerprint and signs evidence bundles (the purposes in
:data:`MASTER_BOUND`); the secrets whose outputs are already stored — value digests, the audit
chain's proofs, sealed backups, role proofs, API-token HMACs — are derived from the database's
*derivation root*: the first master key's bytes, kept in ``tm_meta`` wrapped by the current
master key (storage/master_key_rotation.py). Rotating the master key therefore re-wraps two kinds
of thing (the data keys and the root) and recomputes nothing stored.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hmac
import os
import secrets
import stat
from hashlib import sha256
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from tui_migrator.common.errors import ConfigError
from tui_migrator.common.settings import ENV_MASTER_KEY, Settings

MASTER_KEY_BYTES = 32
_FINGERPRINT_MESSAGE = b"tui-migrator master key fingerprint v1"
_KEY_FILE_MODE = 0o600


class Purpose:
    """HKDF labels. Changing one makes every secret derived under it unrecoverable."""

    KEY_WRAPPING = "dek-wrapping/v1"
    VALUE_DIGEST = "value-digest/v1"
    AUDIT = "audit-proof/v1"
    BACKUP = "backup-sealing/v1"
    FINGERPRINT = "fingerprint/v1"
    AUDIT_ANCHOR = "audit-anchor/v1"
    OPERATOR_ROLES = "operator-roles/v1"
    API_TOKENS = "api-tokens/v1"
    # The signature of an evidence bundle's manifest (service/evidence_bundle.py).
    EVIDENCE_BUNDLE = "evidence-bundle/v1"
    # Wraps the derivation root after a master key rotation (storage/master_key_rotation.py).
    ROOT_WRAPPING = "root-wrapping/v1"


# Derived from the master key itself, whatever the root: what must change with the master key
# (its wrapping of data keys and of the root, its fingerprint) and what is checked without the
# database (an evidence bundle's signature, verified offline with the key file alone).
MASTER_BOUND = frozenset(
    {Purpose.KEY_WRAPPING, Purpose.FINGERPRINT, Purpose.EVIDENCE_BUNDLE, Purpose.ROOT_WRAPPING}
)


class MasterKey:
    """32 secret bytes and the keys derived from them. Its ``repr`` shows only the fingerprint."""

    __slots__ = ("_raw", "_root", "source")

    def __init__(self, raw: bytes, source: str, *, root: bytes | None = None) -> None:
        if len(raw) != MASTER_KEY_BYTES:
            raise ConfigError(f"A master key must be {MASTER_KEY_BYTES} bytes, not {len(raw)}.")
        if root is not None and len(root) != MASTER_KEY_BYTES:
            raise ConfigError(f"A derivation root must be {MASTER_KEY_BYTES} bytes, not {len(root)}.")
        self._raw = raw
        # Where the stored secrets derive from: this key itself until the database's master
        # key is first rotated (see the module's docstring).
        self._root = root if root is not None else raw
        self.source = source

    def derive(self, purpose: str) -> bytes:
        """A 32-byte key for ``purpose`` (one of :class:`Purpose`)."""
        secret = self._raw if purpose in MASTER_BOUND else self._root
        return HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=f"tui-migrator/{purpose}".encode()
        ).derive(secret)

    def with_root(self, root: bytes) -> MasterKey:
        """This key, deriving the stored secrets from ``root`` (a rotated database's root)."""
        return MasterKey(self._raw, self.source, root=root)

    @property
    def derivation_root(self) -> bytes:
        """The root's bytes, only to be wrapped under a new master key (never shown or logged)."""
        return self._root

    def same_key_as(self, other: MasterKey) -> bool:
        return hmac.compare_digest(self._raw, other._raw)

    @property
    def fingerprint(self) -> str:
        """Identifies the key without revealing it; stored in the database and safe to show."""
        mac = hmac.new(self.derive(Purpose.FINGERPRINT), _FINGERPRINT_MESSAGE, sha256)
        return mac.hexdigest()[:32]

    def __repr__(self) -> str:
        return f"MasterKey(fingerprint={self.fingerprint[:12]}…, source={self.source})"

    __str__ = __repr__


def generate_master_key() -> str:
    """A new random master key, base64-encoded."""
    return base64.b64encode(os.urandom(MASTER_KEY_BYTES)).decode("ascii")


def load_master_key(settings: Settings, *, create_if_missing: bool) -> MasterKey:
    """Load the master key from the environment or the key file.

    ``create_if_missing`` is true only when the database holds no keys yet: creating a fresh key
    for a database encrypted under another one would lock its data away.
    """
    if settings.master_key is not None:
        raw = _decode(
            settings.master_key.get_secret_value(), where=f"the environment variable {ENV_MASTER_KEY}"
        )
        return MasterKey(raw, source=f"environment ({ENV_MASTER_KEY})")
    path = settings.effective_master_key_file
    if not path.exists():
        if not create_if_missing or settings.master_key_file is not None:
            raise ConfigError(
                f"No master key: the key file {path} does not exist and {ENV_MASTER_KEY} is not set.",
                hint="Restore the key file this database was set up with, or set "
                f"{ENV_MASTER_KEY} to its base64 value.",
            )
        # Another process setting up at the same moment may win: its key is then the one.
        with contextlib.suppress(KeyFileExists):
            write_key_file(path, generate_master_key())
    return MasterKey(read_key_file(path), source=f"key file {path}")


class KeyFileExists(ConfigError):
    """The key file is already there; it is never overwritten."""


def write_key_file(path: Path, encoded_key: str) -> None:
    """Write a key file readable by its owner only; never overwrites an existing file.

    The key is written whole to a private temporary file first and then linked into place, which
    fails if the file exists: two processes starting at once never each write a different key,
    and a reader never sees a half-written one."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _KEY_FILE_MODE)
    try:
        with os.fdopen(descriptor, "w", encoding="ascii") as handle:
            handle.write(encoded_key + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.link(temporary, path)
    except FileExistsError:
        raise KeyFileExists(
            f"The key file {path} already exists; it was not overwritten.",
            hint="Choose another path, or move the existing file away first if it is not in use.",
        ) from None
    finally:
        temporary.unlink(missing_ok=True)


def read_key_file(path: Path) -> bytes:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise ConfigError(
            f"The key file {path} has permissions {mode:04o}, so other users can read it.",
            hint=f"Run: chmod 600 {path}",
        )
    return _decode(path.read_bytes().decode("ascii", "replace"), where=f"the key file {path}")


def _decode(encoded: str, *, where: str) -> bytes:
    try:
        raw = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != MASTER_KEY_BYTES:
        raise ConfigError(
            f"The master key in {where} is not base64 of exactly {MASTER_KEY_BYTES} bytes.",
            hint="Generate one with: tui-migrator keys generate",
        )
    return raw
