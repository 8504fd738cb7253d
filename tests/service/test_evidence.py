"""The evidence bundle for auditors (service/evidence.py, service/evidence_bundle.py): what a
completed migration's bundle holds, that it verifies offline, that any file altered, removed or
added — or the manifest itself — is named, that another master key cannot pass it off, and that it
holds no record value and no key material."""

from __future__ import annotations

import base64
import hashlib
import json
import stat
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.support.databases import ADMIN, BOTH_BACKENDS
from tests.support.evidence_bundles import (
    BUNDLE_FILES,
    BuiltBundle,
    alter_one_byte,
    build_completed_bundle,
    key_forms,
)
from tests.support.migration_helpers import FAST, raw_dump
from tui_migrator.common.errors import UnknownMigration
from tui_migrator.common.settings import Settings
from tui_migrator.crypto.keys import MasterKey, Purpose, generate_master_key, read_key_file
from tui_migrator.service.evidence_bundle import (
    EvidenceDirectoryInUse,
    NotABundle,
    manifest_bytes,
    sign,
    verify_bundle,
)
from tui_migrator.service.facade import MigratorService
from tui_migrator.storage.audit_operations import AuditOperation


@pytest.fixture(scope="module")
def built(demo_template: Path, tmp_path_factory: pytest.TempPathFactory) -> BuiltBundle:
    """One completed migration's bundle for the tests that only tamper with its files."""
    return build_completed_bundle(demo_template, tmp_path_factory.mktemp("evidence"))


def sensitive_values(service: MigratorService) -> set[bytes]:
    """The UTF-8 bytes of every mapped text value of at least 8 bytes (shorter ones turn up in
    any text by chance), read before migrating."""
    values: set[bytes] = set()
    with service.engine.connect() as connection:
        for mapped in service.mapping().tables:
            table = sa.Table(mapped.name, sa.MetaData(), autoload_with=connection)
            for column in mapped.columns:
                for (value,) in connection.execute(sa.select(table.c[column.name])):
                    if isinstance(value, str) and len(value.encode()) >= 8:
                        values.add(value.encode())
    return values


def master_key_of(settings: Settings) -> MasterKey:
    return MasterKey(read_key_file(settings.effective_master_key_file), source="the test's key file")


def load(directory: Path, name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((directory / name).read_text())
    return loaded


@BOTH_BACKENDS
def test_a_completed_migrations_bundle_holds_its_record_and_verifies(
    service: MigratorService, tmp_path: Path
) -> None:
    record = service.start(FAST)
    directory = tmp_path / "evidence"
    exported = service.export_evidence(record.id, directory)

    assert sorted(exported.bundle.files) == sorted(BUNDLE_FILES)
    assert sorted(path.name for path in directory.iterdir()) == sorted(BUNDLE_FILES)
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert {stat.S_IMODE((directory / name).stat().st_mode) for name in BUNDLE_FILES} == {0o600}
    checked = verify_bundle(directory, master_key_of(service.settings))
    assert checked.intact and checked.signature_valid, checked.problems
    assert checked.migration_id == record.id and checked.checked_files == 3

    evidence = load(directory, "evidence.json")
    migration = evidence["migration"]
    assert migration["status"] == "completed" and migration["operator"] == ADMIN
    assert migration["config"]["batchSize"] == FAST["batch_size"]
    timeline = migration["timeline"]
    assert timeline["createdAt"] and timeline["startedAt"] and timeline["completedAt"]
    assert "batch_processing" in timeline["phaseSeconds"]
    counts = migration["counts"]
    assert counts["encryptedRecords"] == record.encrypted_records > 0
    assert sum(t["encryptedRecords"] for t in counts["byTable"]) == counts["encryptedRecords"]
    organizations = counts["byOrganization"]["organizations"]
    assert len(organizations) == 3 and all(o["rowsWithPlaintext"] == 0 for o in organizations)
    assert sum(o["rowsInScope"] for o in organizations) == counts["totalRecords"]
    assert migration["verification"]["passed"] is True
    assert [b["table"] for b in migration["backups"]["created"]] == [t.name for t in record.tables]
    assert migration["backups"]["purged"] is False
    assert migration["sweep"]["summary"]
    keys = evidence["dataKeys"]
    assert keys["masterKeyFingerprint"] == service.master_key_fingerprint
    assert {k["organizationId"] for k in keys["keys"]} == {o["organizationId"] for o in organizations}
    assert all(k["algorithm"] and k["keyId"] for k in keys["keys"])

    audit = load(directory, "audit.json")
    operations = [entry["operation"] for entry in audit["entries"]]
    assert operations[0] == AuditOperation.MIGRATION_STARTED
    assert AuditOperation.MIGRATION_COMPLETED in operations
    assert all(
        len(entry["entryHash"]) == 64
        and len(entry["previousHash"]) == 64
        and entry["cryptographicProof"].startswith("hmac-sha256:")
        for entry in audit["entries"]
    )
    assert audit["chainVerification"]["intact"] is True
    summary = (directory / "summary.md").read_text()
    assert f"# Evidence bundle: migration {record.id}" in summary and "completed" in summary

    # The export is recorded, naming the manifest it wrote.
    newest = service.audit_entries(limit=1).entries[0]
    assert newest.operation == AuditOperation.EVIDENCE_EXPORTED and newest.migration_id == record.id
    manifest = (directory / "manifest.json").read_bytes()
    assert newest.details["manifestSha256"] == hashlib.sha256(manifest).hexdigest()
    assert newest.details["files"] == len(BUNDLE_FILES)


@BOTH_BACKENDS
def test_the_bundle_holds_no_record_value_and_no_key_material(
    service: MigratorService, tmp_path: Path
) -> None:
    values = sensitive_values(service)
    assert len(values) > 100
    record = service.start(FAST)
    directory = tmp_path / "evidence"
    service.export_evidence(record.id, directory)

    written = {path.name: path.read_bytes() for path in directory.iterdir()}
    assert sorted(written) == sorted(BUNDLE_FILES)
    found = {name: [v for v in values if v in data] for name, data in written.items()}
    assert not any(found.values()), {name: hits[:3] for name, hits in found.items()}
    master = master_key_of(service.settings)
    raw = read_key_file(service.settings.effective_master_key_file)
    secrets = [raw] + [
        master.derive(purpose)
        for purpose in vars(Purpose).values()
        if isinstance(purpose, str) and "/" in purpose
    ]
    for secret in secrets:
        for form in key_forms(secret):
            assert not any(form in data for data in written.values())


@pytest.mark.parametrize("name", BUNDLE_FILES)
def test_altering_any_one_file_fails_verification_naming_it(
    built: BuiltBundle, tmp_path: Path, name: str
) -> None:
    directory = built.copy_to(tmp_path / "bundle")
    alter_one_byte(directory / name)
    checked = verify_bundle(directory, built.master_key())
    assert not checked.intact
    assert name in (checked.problem or "")
    if name in ("manifest.json", "manifest.sig"):
        assert not checked.signature_valid
    else:
        assert checked.altered == [name] and checked.signature_valid


def test_a_removed_file_is_named_missing(built: BuiltBundle, tmp_path: Path) -> None:
    directory = built.copy_to(tmp_path / "bundle")
    (directory / "audit.json").unlink()
    checked = verify_bundle(directory, built.master_key())
    assert not checked.intact and checked.missing == ["audit.json"]
    assert "audit.json" in (checked.problem or "")


def test_a_removed_signature_is_named_missing(built: BuiltBundle, tmp_path: Path) -> None:
    directory = built.copy_to(tmp_path / "bundle")
    (directory / "manifest.sig").unlink()
    checked = verify_bundle(directory, built.master_key())
    assert not checked.intact and not checked.signature_valid and checked.missing == ["manifest.sig"]


def test_an_added_file_is_named_extra(built: BuiltBundle, tmp_path: Path) -> None:
    directory = built.copy_to(tmp_path / "bundle")
    (directory / "notes.txt").write_text("added later\n")
    checked = verify_bundle(directory, built.master_key())
    assert not checked.intact and checked.extra == ["notes.txt"] and checked.signature_valid
    assert "notes.txt" in (checked.problem or "")


def test_a_manifest_rewritten_to_match_an_altered_file_fails_its_signature(
    built: BuiltBundle, tmp_path: Path
) -> None:
    """Whoever alters a file and lists its new digest still cannot sign the manifest."""
    directory = built.copy_to(tmp_path / "bundle")
    evidence = directory / "evidence.json"
    evidence.write_bytes(evidence.read_bytes().replace(b'"completed"', b'"failed"', 1))
    manifest = json.loads((directory / "manifest.json").read_text())
    for item in manifest["files"]:
        if item["name"] == "evidence.json":
            item["sha256"] = hashlib.sha256(evidence.read_bytes()).hexdigest()
            item["bytes"] = evidence.stat().st_size
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    checked = verify_bundle(directory, built.master_key())
    assert not checked.intact and not checked.signature_valid and checked.altered == []
    assert "manifest.json" in (checked.problem or "")


def test_a_bundle_signed_under_another_master_key_fails(built: BuiltBundle, tmp_path: Path) -> None:
    directory = built.copy_to(tmp_path / "bundle")
    other = MasterKey(base64.b64decode(generate_master_key()), source="another key")
    # Checked with another key: the manifest names the key that signed it.
    checked = verify_bundle(directory, other)
    assert not checked.intact and not checked.signature_valid
    assert checked.signed_fingerprint == built.master_key().fingerprint
    assert "signed under the master key with fingerprint" in (checked.problem or "")
    # Re-signed under another key claiming to be ours (the fingerprint rewritten too): refused.
    contents = {
        name: (directory / name).read_bytes() for name in ("audit.json", "evidence.json", "summary.md")
    }
    forged = manifest_bytes(
        contents, other, migration_id=built.migration_id, generated_at="2026-01-01T00:00:00Z"
    )
    forged = forged.replace(other.fingerprint.encode(), built.master_key().fingerprint.encode())
    (directory / "manifest.json").write_bytes(forged)
    (directory / "manifest.sig").write_text(sign(forged, other) + "\n")
    checked = verify_bundle(directory, built.master_key())
    assert not checked.intact and not checked.signature_valid


def test_a_folder_that_is_not_a_bundle_is_refused(built: BuiltBundle, tmp_path: Path) -> None:
    with pytest.raises(NotABundle):
        verify_bundle(tmp_path / "nowhere", built.master_key())
    (tmp_path / "empty").mkdir()
    with pytest.raises(NotABundle, match="neither manifest.json nor manifest.sig"):
        verify_bundle(tmp_path / "empty", built.master_key())


def test_a_viewer_exports_and_the_database_is_unchanged(
    service: MigratorService, settings: Settings, tmp_path: Path
) -> None:
    record = service.start(FAST)
    service.grant("vera", "viewer")
    before = raw_dump(service.engine), service.audit_entries(limit=None).total_entries
    with MigratorService.open(settings, user="vera") as viewer:
        exported = viewer.export_evidence(record.id, tmp_path / "evidence")
    assert not exported.recorded
    assert verify_bundle(tmp_path / "evidence", master_key_of(settings)).intact
    assert (raw_dump(service.engine), service.audit_entries(limit=None).total_entries) == before
    assert load(tmp_path / "evidence", "evidence.json")["generatedBy"] == {"user": "vera", "role": "viewer"}


def test_a_folder_in_use_is_refused_with_nothing_written(service: MigratorService, tmp_path: Path) -> None:
    record = service.start(FAST)
    directory = tmp_path / "evidence"
    directory.mkdir()
    (directory / "keep.txt").write_text("mine\n")
    entries = service.audit_entries(limit=None).total_entries
    with pytest.raises(EvidenceDirectoryInUse, match="is not empty; nothing was written"):
        service.export_evidence(record.id, directory)
    assert [path.name for path in directory.iterdir()] == ["keep.txt"]
    with pytest.raises(EvidenceDirectoryInUse, match="is not a folder"):
        service.export_evidence(record.id, directory / "keep.txt")
    assert service.audit_entries(limit=None).total_entries == entries


def test_an_empty_folder_is_used_and_made_private(service: MigratorService, tmp_path: Path) -> None:
    record = service.start({**FAST, "data_categories": ["DEMOGRAPHICS"]})
    directory = tmp_path / "evidence"
    directory.mkdir(mode=0o755)
    directory.chmod(0o755)
    service.export_evidence(record.id, directory)
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert verify_bundle(directory, master_key_of(service.settings)).intact


def test_an_unknown_migration_writes_no_bundle(service: MigratorService, tmp_path: Path) -> None:
    with pytest.raises(UnknownMigration) as unknown:
        service.export_evidence("nope", tmp_path / "evidence")
    assert unknown.value.code == "unknown_migration"
    assert not (tmp_path / "evidence").exists()
