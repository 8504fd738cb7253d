"""An evidence bundle on disk: its files, their manifest and the manifest's signature.

The manifest (``manifest.json``) lists every other file with its SHA-256 and size, and names the
master key that signed it by its fingerprint; ``manifest.sig`` holds the hex HMAC-SHA-256 of the
manifest's bytes under a key derived from the master key. So whoever holds the master key can
check, without the database, that no file was altered, removed or added since it was written —
and nobody without it can write a bundle that passes. (What goes into the files is
service/evidence.py's business.)

The bundle names patients' records only by counts, ids and digests, but it is still the
operator's: the folder is made 0700 and each file 0600, as the logs are (engine/log_files.py).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tui_migrator.common.errors import BadInput, ConfigError
from tui_migrator.common.settings import Settings
from tui_migrator.crypto.keys import MasterKey, Purpose, load_master_key

MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
BUNDLE_FORMAT = "tui-migrator evidence bundle v1"
SIGNATURE_ALGORITHM = "HMAC-SHA-256"
PRIVATE_FOLDER = 0o700
PRIVATE_FILE = 0o600


class EvidenceDirectoryInUse(BadInput):
    """The folder asked for already holds something: a bundle is only written into an empty one."""

    code = "evidence_directory_not_empty"


class NotABundle(BadInput):
    """The folder given to ``evidence verify`` is not an evidence bundle at all."""

    code = "not_an_evidence_bundle"


@dataclass(frozen=True)
class WrittenBundle:
    directory: Path
    # Every file written, the manifest and its signature included.
    files: list[str]
    manifest_sha256: str
    key_fingerprint: str


@dataclass(frozen=True)
class BundleVerification:
    """What checking a bundle found. ``intact`` only with a valid signature and every file as
    the manifest lists it."""

    directory: Path
    migration_id: str | None
    signature_valid: bool
    key_fingerprint: str
    signed_fingerprint: str | None
    checked_files: int
    altered: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.problems

    @property
    def problem(self) -> str | None:
        return " ".join(self.problems) if self.problems else None

    def to_json(self) -> dict[str, Any]:
        return {
            "directory": str(self.directory),
            "migrationId": self.migration_id,
            "intact": self.intact,
            "signatureValid": self.signature_valid,
            "altered": self.altered,
            "missing": self.missing,
            "extra": self.extra,
            "checkedFiles": self.checked_files,
            "keyFingerprint": self.key_fingerprint,
            "signedWithFingerprint": self.signed_fingerprint,
            "problems": self.problems,
        }


def check_target(directory: Path) -> None:
    """Refuse a folder that exists and is not empty (or is not a folder): a bundle never mixes
    with other files, and nothing already there is overwritten."""
    if not directory.exists():
        return
    if not directory.is_dir():
        raise EvidenceDirectoryInUse(
            f"{directory} exists and is not a folder; nothing was written.",
            hint="Give the path of a new or empty folder for the evidence bundle.",
        )
    if any(directory.iterdir()):
        raise EvidenceDirectoryInUse(
            f"The folder {directory} is not empty; nothing was written (a bundle is written only "
            "into a new or empty folder, so no file of it is ever mixed with others).",
            hint="Give the path of a new or empty folder for the evidence bundle.",
        )


def write_bundle(
    directory: Path,
    contents: dict[str, bytes],
    master_key: MasterKey,
    *,
    migration_id: str,
    generated_at: str,
) -> WrittenBundle:
    """Write ``contents`` (file name → bytes), then their manifest and its signature, into
    ``directory`` (created 0700 if it does not exist; it must be empty). A failure part-way
    removes what was written."""
    check_target(directory)
    manifest = manifest_bytes(contents, master_key, migration_id=migration_id, generated_at=generated_at)
    files = {**contents, MANIFEST: manifest, SIGNATURE: (sign(manifest, master_key) + "\n").encode("ascii")}
    created_folder = not directory.exists()
    written: list[Path] = []
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=PRIVATE_FOLDER)
        # mkdir's mode is filtered by the umask, and an existing empty folder keeps its own.
        directory.chmod(PRIVATE_FOLDER)
        for name, data in files.items():
            path = directory / name
            _write_private(path, data)
            written.append(path)
        _sync_folder(directory)
    except OSError as error:
        for path in written:
            path.unlink(missing_ok=True)
        if created_folder:
            with contextlib.suppress(OSError):
                directory.rmdir()
        raise ConfigError(
            f"Cannot write the evidence bundle into {directory}: {error.strerror or error}. "
            "Nothing of it was kept.",
            hint="Give a folder you can write to.",
        ) from None
    return WrittenBundle(
        directory=directory,
        files=list(files),
        manifest_sha256=hashlib.sha256(manifest).hexdigest(),
        key_fingerprint=master_key.fingerprint,
    )


def manifest_bytes(
    contents: dict[str, bytes], master_key: MasterKey, *, migration_id: str, generated_at: str
) -> bytes:
    manifest = {
        "format": BUNDLE_FORMAT,
        "migrationId": migration_id,
        "generatedAt": generated_at,
        "signature": {
            "file": SIGNATURE,
            "algorithm": SIGNATURE_ALGORITHM,
            "key": f"HKDF-SHA-256 of the master key, label tui-migrator/{Purpose.EVIDENCE_BUNDLE}",
            "masterKeyFingerprint": master_key.fingerprint,
        },
        "files": [
            {"name": name, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
            for name, data in sorted(contents.items())
        ],
    }
    return (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def sign(manifest: bytes, master_key: MasterKey) -> str:
    return hmac.new(master_key.derive(Purpose.EVIDENCE_BUNDLE), manifest, hashlib.sha256).hexdigest()


def verify_with_settings(settings: Settings, directory: Path) -> BundleVerification:
    """Check a bundle with the configured master key (the key file or the environment, as every
    command reads it): no database is opened."""
    _refuse_unless_bundle(directory)
    return verify_bundle(directory, load_master_key(settings, create_if_missing=False))


def verify_bundle(directory: Path, master_key: MasterKey) -> BundleVerification:
    """Recompute every file's SHA-256 against the manifest and the manifest's HMAC, and name
    every file altered, missing or not listed."""
    _refuse_unless_bundle(directory)
    missing: list[str] = []
    problems: list[str] = []
    manifest_path, signature_path = directory / MANIFEST, directory / SIGNATURE
    manifest = manifest_path.read_bytes() if manifest_path.is_file() else None
    stated = _parse_manifest(manifest)
    signed_fingerprint = None if stated is None else stated.fingerprint
    signature_valid = False
    if manifest is None:
        missing.append(MANIFEST)
        problems.append(f"The manifest {MANIFEST} is missing, so no file of the bundle can be checked.")
    elif not signature_path.is_file():
        missing.append(SIGNATURE)
        problems.append(f"The signature {SIGNATURE} is missing, so the manifest cannot be trusted.")
    elif signed_fingerprint is not None and not hmac.compare_digest(
        signed_fingerprint, master_key.fingerprint
    ):
        problems.append(
            f"The bundle was signed under the master key with fingerprint {signed_fingerprint[:12]}, "
            f"not under this one ({master_key.fingerprint[:12]}, from {master_key.source}): its "
            "signature cannot be checked with it."
        )
    else:
        given = signature_path.read_bytes().decode("ascii", "replace").strip()
        signature_valid = hmac.compare_digest(given, sign(manifest, master_key))
        if not signature_valid:
            problems.append(
                f"{MANIFEST} does not match its signature in {SIGNATURE}: one of the two was altered "
                "since the bundle was written (or it was signed under another master key)."
            )
    if manifest is not None and stated is None:
        problems.append(
            f"{MANIFEST} is not a manifest this tool wrote (it does not parse as one), so no file "
            "of the bundle can be checked."
        )
    listed = {} if stated is None else stated.files
    altered: list[str] = []
    for name, (size, digest) in sorted(listed.items()):
        path = directory / name
        if not path.is_file():
            missing.append(name)
            continue
        data = path.read_bytes()
        if len(data) != size or not hmac.compare_digest(hashlib.sha256(data).hexdigest(), digest):
            altered.append(name)
    # Without a readable manifest nothing is known to belong, so nothing is called extra either.
    expected = set(listed) | {MANIFEST, SIGNATURE}
    extra = (
        []
        if stated is None
        else sorted(entry.name for entry in directory.iterdir() if entry.name not in expected)
    )
    if altered:
        problems.append(f"Altered since the bundle was written: {', '.join(altered)}.")
    content_missing = [name for name in missing if name not in (MANIFEST, SIGNATURE)]
    if content_missing:
        problems.append(f"Missing: {', '.join(content_missing)}.")
    if extra:
        problems.append(f"Not part of the bundle (added since): {', '.join(extra)}.")
    return BundleVerification(
        directory=directory,
        migration_id=None if stated is None else stated.migration_id,
        signature_valid=signature_valid,
        key_fingerprint=master_key.fingerprint,
        signed_fingerprint=signed_fingerprint,
        checked_files=len(listed),
        altered=altered,
        missing=missing,
        extra=extra,
        problems=problems,
    )


def _refuse_unless_bundle(directory: Path) -> None:
    if not directory.is_dir():
        raise NotABundle(
            f"{directory} is not a folder, so it is not an evidence bundle.",
            hint="Give the folder written by: tui-migrator report ID --evidence DIR",
        )
    if not (directory / MANIFEST).exists() and not (directory / SIGNATURE).exists():
        raise NotABundle(
            f"{directory} holds neither {MANIFEST} nor {SIGNATURE}, so it is not an evidence bundle.",
            hint="Give the folder written by: tui-migrator report ID --evidence DIR",
        )


@dataclass(frozen=True)
class _StatedManifest:
    """What a manifest says: each file's size and SHA-256 by name, who signed it, of what."""

    files: dict[str, tuple[int, str]]
    fingerprint: str | None
    migration_id: str | None


def _parse_manifest(manifest: bytes | None) -> _StatedManifest | None:
    """None where there is no manifest or it does not parse as one. A listed name that is not a
    plain file name (a path) makes it unreadable: nothing outside the folder is ever read."""
    if manifest is None:
        return None
    try:
        parsed = json.loads(manifest)
        files = {str(item["name"]): (int(item["bytes"]), str(item["sha256"])) for item in parsed["files"]}
        signature = parsed.get("signature") or {}
        fingerprint = signature.get("masterKeyFingerprint")
        migration_id = parsed.get("migrationId")
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    if any(name in ("", ".", "..", MANIFEST, SIGNATURE) or Path(name).name != name for name in files):
        return None
    return _StatedManifest(
        files=files,
        fingerprint=fingerprint if isinstance(fingerprint, str) else None,
        migration_id=migration_id if isinstance(migration_id, str) else None,
    )


def _write_private(path: Path, data: bytes) -> None:
    # O_EXCL: a file that appeared meanwhile is never overwritten.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    # os.open's mode is filtered by the umask; the file is the operator's only either way.
    if stat.S_IMODE(path.stat().st_mode) != PRIVATE_FILE:
        path.chmod(PRIVATE_FILE)


def _sync_folder(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
