"""Evidence bundles for the tests that tamper with one: a completed migration's bundle written once
per module, copied fresh for each test (checking a bundle needs no database)."""

from __future__ import annotations

import base64
import shutil
from dataclasses import dataclass
from pathlib import Path

from tests.support.databases import ADMIN, make_settings
from tests.support.migration_helpers import FAST
from tui_migrator.common.settings import Settings
from tui_migrator.crypto.keys import MasterKey, read_key_file
from tui_migrator.service.facade import MigratorService

# Everything report --evidence writes, the manifest and its signature included.
BUNDLE_FILES = ["audit.json", "evidence.json", "summary.md", "manifest.json", "manifest.sig"]


@dataclass(frozen=True)
class BuiltBundle:
    settings: Settings
    migration_id: str
    directory: Path

    def copy_to(self, target: Path) -> Path:
        shutil.copytree(self.directory, target)
        return target

    def master_key(self) -> MasterKey:
        return MasterKey(read_key_file(self.settings.effective_master_key_file), source="the test's key file")


def build_completed_bundle(template: Path, root: Path) -> BuiltBundle:
    """A copy of the demo template (``tests/conftest.py``'s ``demo_template``) under ``root``, a
    migration of it completed, and its evidence bundle in ``root/bundle``."""
    shutil.copy2(template / "parkml.db", root / "parkml.db")
    shutil.copytree(template / "data", root / "data")
    settings = make_settings(root)
    with MigratorService.open(settings, user=ADMIN) as service:
        record = service.start(FAST)
        service.export_evidence(record.id, root / "bundle")
    return BuiltBundle(settings, record.id, root / "bundle")


def alter_one_byte(path: Path) -> None:
    """Change one byte in the middle of ``path``, keeping its size (so only its digest tells)."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    # A hex digit for a hex digit, anything else for a digit: still text, never the same byte.
    data[middle] = ord("1") if data[middle] != ord("1") else ord("2")
    path.write_bytes(bytes(data))


def key_forms(secret: bytes) -> list[bytes]:
    """The ways a key could be written down: raw, hex and base64 (standard and URL-safe)."""
    return [
        secret,
        secret.hex().encode(),
        base64.b64encode(secret),
        base64.urlsafe_b64encode(secret).rstrip(b"="),
    ]
