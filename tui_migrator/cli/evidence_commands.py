"""The evidence bundle for auditors: ``report ID --evidence DIR`` writes it, ``evidence verify DIR``
checks it offline (with the master key only: no database is opened)."""

from __future__ import annotations

import argparse

from rich.text import Text

from tui_migrator.cli.output import Result
from tui_migrator.common.settings import Settings
from tui_migrator.service.evidence_bundle import verify_with_settings
from tui_migrator.service.facade import MigratorService


def export(service: MigratorService, args: argparse.Namespace) -> Result:
    exported = service.export_evidence(args.migration_id, args.evidence)
    bundle = exported.bundle
    data = {
        "migrationId": exported.migration_id,
        "directory": str(bundle.directory),
        "files": bundle.files,
        "manifestSha256": bundle.manifest_sha256,
        "masterKeyFingerprint": bundle.key_fingerprint,
        "auditEntries": exported.audit_entries,
        "auditChainIntact": exported.chain_intact,
        "recordedInAuditTrail": exported.recorded,
    }
    lines = [
        (
            f"Evidence bundle of {exported.migration_id} written to {bundle.directory}: "
            f"{', '.join(bundle.files)} (manifest SHA-256 {bundle.manifest_sha256[:16]}…, signed under the "
            f"master key {bundle.key_fingerprint[:12]})."
        ),
        f"{exported.audit_entries} audit entries with their proofs; the whole audit chain is "
        + ("intact." if exported.chain_intact else "BROKEN: see audit.json and tui-migrator audit --verify."),
        f"Check it any time with: tui-migrator evidence verify {bundle.directory}",
    ]
    if not exported.recorded:
        lines.append("Not recorded in the audit trail: this session does not write to the database.")
    return Result(data=data, text=[Text("\n".join(lines))])


def verify(args: argparse.Namespace, settings: Settings) -> Result:
    checked = verify_with_settings(settings, args.directory)
    data = checked.to_json()
    if checked.intact:
        words = (
            f"Evidence bundle {checked.directory} of {checked.migration_id} is intact: the signature "
            f"under master key {checked.key_fingerprint[:12]} is valid and all {checked.checked_files} "
            "files match the manifest."
        )
        return Result(data=data, text=[Text(words)])
    lines = [f"EVIDENCE BUNDLE NOT INTACT: {checked.directory}"]
    lines += [f"  {problem}" for problem in checked.problems]
    return Result(data=data, text=[Text("\n".join(lines))], success=False, error=checked.problem)
