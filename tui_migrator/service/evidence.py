"""An evidence bundle of one migration for auditors (HIPAA §164.312(b) audit controls and
§164.312(c) integrity): what was done, by whom, when, to how many records, how it was verified,
and the audit trail's entries with their proofs — as JSON for tools and Markdown for people,
signed so it can be checked later without the database (service/evidence_bundle.py).

It is built from what ``report``, ``status``, ``audit`` and ``keys list`` already read, and holds
identifiers, counts, names, digests and times only: never a record value, never key material.
Writing it is a read of the database; like ``audit --verify``, it is recorded in the trail only by
an operator who may change the database, so a viewer or a read-only session writes nothing there.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tui_migrator import __version__
from tui_migrator.common.errors import MigratorError
from tui_migrator.engine.plan import plan_migration
from tui_migrator.service import evidence_bundle, inspection, sweeping
from tui_migrator.service.access import authorize, can, role
from tui_migrator.service.evidence_bundle import BUNDLE_FORMAT, WrittenBundle
from tui_migrator.service.session import Session
from tui_migrator.service.views import audit_entry_data, audit_verification_data, iso, status_data
from tui_migrator.storage.audit import AuditEntry
from tui_migrator.storage.audit_operations import AuditOperation
from tui_migrator.storage.database import redacted
from tui_migrator.storage.keyring import DataKeyInfo
from tui_migrator.storage.migration_records import MigrationRecord
from tui_migrator.storage.migration_status import MigrationKind
from tui_migrator.storage.operators import Action
from tui_migrator.storage.tables import utc_now

EVIDENCE = "evidence.json"
AUDIT = "audit.json"
SUMMARY = "summary.md"
CONTAINS = (
    "Identifiers, counts, names, digests and times only: no record value and no key material "
    "(data keys are named by id, the master key by its fingerprint)."
)
PROOFS = {
    "entryHash": "SHA-256 over a canonical encoding of the entry's fields and previousHash.",
    "previousHash": "The entryHash of the entry before it in the whole trail (entries of other "
    "operations may lie between two entries of this migration).",
    "cryptographicProof": "HMAC-SHA-256 of entryHash under a key derived from the master key "
    "(HKDF-SHA-256, label tui-migrator/audit-proof/v1): only the master key's holder can make one.",
}


@dataclass(frozen=True)
class ExportedEvidence:
    migration_id: str
    bundle: WrittenBundle
    # Whether the export itself was recorded in the audit trail (evidence_exported).
    recorded: bool
    audit_entries: int
    chain_intact: bool


def export(session: Session, migration_id: str, directory: Path) -> ExportedEvidence:
    """Write the evidence bundle of ``migration_id`` into ``directory`` (new or empty)."""
    authorize(session, Action.READ, "report --evidence")
    # Before reading anything: a folder in use is refused with nothing written anywhere.
    evidence_bundle.check_target(directory)
    generated_at = iso(utc_now()) or ""
    report = inspection.report(session, migration_id)
    record = inspection.status(session, migration_id)
    status = status_data(record, sweep=sweeping.status_of(session, migration_id))
    page = inspection.audit_entries(session, limit=None, migration_id=migration_id)
    entries = sorted(page.entries, key=lambda entry: entry.seq)
    chain = inspection.verify_audit(session, record=False)
    organizations = organization_counts(session, record, counted_at=generated_at)
    keys = data_keys_in_scope(inspection.data_keys(session), record, organizations)
    evidence = {
        "format": BUNDLE_FORMAT,
        "generatedAt": generated_at,
        "generatedBy": {"user": session.user, "role": _role_name(session)},
        "tool": {"name": "tui-migrator", "version": __version__},
        "database": {
            "location": redacted(session.engine.url),
            "dialect": session.engine.dialect.name,
        },
        "contains": CONTAINS,
        "migration": migration_evidence(report, status, record, entries, organizations),
        "dataKeys": {
            "masterKeyFingerprint": session.master_key.fingerprint,
            "note": "The data keys of the organizations in scope, wrapped under the master key; each "
            "token names the key that sealed it. Never their material.",
            "keys": keys,
        },
        "auditTrail": {
            "file": AUDIT,
            "entries": len(entries),
            "chainIntact": chain.intact,
            "chainProblem": chain.problem,
        },
    }
    audit = {
        "format": BUNDLE_FORMAT,
        "migrationId": migration_id,
        "generatedAt": generated_at,
        "proofs": PROOFS,
        "entries": [audit_entry_data(entry) for entry in entries],
        "chainVerification": {**audit_verification_data(chain), "verifiedAt": generated_at},
    }
    contents = {
        EVIDENCE: _json_bytes(evidence),
        AUDIT: _json_bytes(audit),
        SUMMARY: summary_markdown(evidence, audit).encode("utf-8"),
    }
    bundle = evidence_bundle.write_bundle(
        directory, contents, session.master_key, migration_id=migration_id, generated_at=generated_at
    )
    recorded = can(session, Action.MIGRATE)
    if recorded:
        session.audit.record(
            AuditOperation.EVIDENCE_EXPORTED,
            user_id=session.user,
            success=True,
            migration_id=migration_id,
            details={
                "manifestSha256": bundle.manifest_sha256,
                "files": len(bundle.files),
                "chainIntact": chain.intact,
            },
        )
    return ExportedEvidence(migration_id, bundle, recorded, len(entries), chain.intact)


def migration_evidence(
    report: dict[str, Any],
    status: dict[str, Any],
    record: MigrationRecord,
    entries: list[AuditEntry],
    organizations: dict[str, Any],
) -> dict[str, Any]:
    """The migration's part of evidence.json, from the completion report and the status object."""
    timing = report["timing"]
    cancellation = status["cancellation"] or {}
    purges = _entries_of(entries, AuditOperation.BACKUPS_PURGED)
    return {
        "migrationId": record.id,
        "status": report["status"],
        "dryRun": report["dryRun"],
        "kind": report["kind"],
        "operator": record.created_by,
        "config": report["config"],
        "timeline": {
            "createdAt": iso(record.created_at),
            "startedAt": timing["startedAt"],
            "completedAt": timing["completedAt"],
            "cancelledAt": cancellation.get("cancelledAt"),
            "cancelledBy": cancellation.get("cancelledBy"),
            "cancelReason": cancellation.get("reason"),
            "rolledBackAt": iso(record.rolled_back_at),
            "backupsPurgedAt": purges[-1].timestamp if purges else None,
            "sweptAt": (report["sweep"] or {}).get("sweptAt"),
            "elapsedSeconds": timing["elapsedSeconds"],
            "pausedSeconds": timing["pausedSeconds"],
            "estimatedSeconds": timing["estimatedSeconds"],
            "phaseSeconds": timing["phaseSeconds"],
            "rollback": status["rollback"],
            "events": [
                {
                    "sequence": entry.seq,
                    "at": entry.timestamp,
                    "operation": entry.operation,
                    "userId": entry.user_id,
                    "success": entry.success,
                }
                for entry in entries
            ],
        },
        "counts": {
            **report["counts"],
            "byTable": [
                {
                    "table": table["name"],
                    "category": table["category"],
                    "totalRecords": table["totalRecords"],
                    "processedRecords": table["processedRecords"],
                    "encryptedRecords": table["encryptedRecords"],
                    "failedRecords": table["failedRecords"],
                    "done": table["done"],
                }
                for table in status["tables"]
            ],
            "byOrganization": organizations,
        },
        "failures": report["failures"],
        "verification": report["verification"],
        "backups": {
            "requested": record.config.create_backups,
            "created": [
                {
                    "table": entry.details.get("table"),
                    "backupTable": entry.details.get("backupTable"),
                    "rows": entry.details.get("backupRows"),
                    "digest": entry.details.get("digest"),
                    "at": entry.timestamp,
                    "by": entry.user_id,
                }
                for entry in _entries_of(entries, AuditOperation.BACKUP_CREATED)
            ],
            "kept": report["backups"],
            "purged": bool(purges) and not report["backups"],
            "purges": [
                {
                    "at": entry.timestamp,
                    "by": entry.user_id,
                    "droppedTables": entry.details.get("droppedTables", []),
                }
                for entry in purges
            ],
        },
        "sweep": report["sweep"],
        "warnings": report["warnings"],
        "errorMessage": report["errorMessage"],
    }


def organization_counts(session: Session, record: MigrationRecord, *, counted_at: str) -> dict[str, Any]:
    """Rows of the migration's tables per organization, counted now: the one figure the
    migration's record does not keep (it counts per table). Counting reads no value: it asks,
    per organization, how many rows are in scope and how many still hold plaintext."""
    migrated = {table.name for table in record.tables}
    try:
        scope = plan_migration(session.engine, session.mapping(), record.config).scope
    except MigratorError as error:
        return {"countedAt": counted_at, "available": False, "reason": error.message, "organizations": []}
    totals: dict[str, dict[str, int]] = {}
    by_table = []
    for table in scope.tables:
        if table.name not in migrated:
            continue
        for organization, rows in sorted(table.rows_by_organization.items()):
            plaintext = table.pending_by_organization.get(organization, 0)
            counts = totals.setdefault(organization, {"rowsInScope": 0, "rowsWithPlaintext": 0})
            counts["rowsInScope"] += rows
            counts["rowsWithPlaintext"] += plaintext
            by_table.append(
                {
                    "table": table.name,
                    "organizationId": organization,
                    "rowsInScope": rows,
                    "rowsWithPlaintext": plaintext,
                }
            )
    return {
        "countedAt": counted_at,
        "available": True,
        "note": "Counted when the bundle was written: rows of the migration's tables in its scope, "
        "and how many of them still hold plaintext in a mapped column.",
        "organizations": [
            {"organizationId": organization, **counts} for organization, counts in sorted(totals.items())
        ],
        "byTable": by_table,
    }


def data_keys_in_scope(
    keys: list[DataKeyInfo], record: MigrationRecord, organizations: dict[str, Any]
) -> list[dict[str, Any]]:
    """The data keys of the organizations the migration covered (every key when they are not known)."""
    wanted = set(record.config.organization_ids) | {
        item["organizationId"] for item in organizations.get("organizations", [])
    }
    return [
        {
            "keyId": key.key_id,
            "organizationId": key.organization_id,
            "generation": key.generation,
            "algorithm": key.algorithm,
            "status": key.status,
            "createdAt": iso(key.created_at),
            "createdBy": key.created_by,
        }
        for key in keys
        if not wanted or key.organization_id in wanted
    ]


def _entries_of(entries: Iterable[AuditEntry], operation: AuditOperation) -> list[AuditEntry]:
    return [entry for entry in entries if entry.operation == operation.value]


def _role_name(session: Session) -> str | None:
    current = role(session)
    return None if current is None else current.value


def _json_bytes(data: dict[str, Any]) -> bytes:
    return (json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n").encode("utf-8")


# -- summary.md ------------------------------------------------------------------------------


def summary_markdown(evidence: dict[str, Any], audit: dict[str, Any]) -> str:
    """The bundle for people: the same facts as the JSON files, in sections an auditor reads."""
    migration = evidence["migration"]
    timeline, counts = migration["timeline"], migration["counts"]
    lines = [
        f"# Evidence bundle: migration {migration['migrationId']}",
        "",
        (
            f"Written {evidence['generatedAt']} by {evidence['generatedBy']['user']} "
            f"({evidence['generatedBy']['role'] or 'no role'}) with tui-migrator {evidence['tool']['version']}, "
            f"from the {evidence['database']['dialect']} database {_code(evidence['database']['location'])}."
        ),
        "",
        f"{evidence['contains']}",
        "",
        "| file | what it holds |",
        "|---|---|",
        f"| {EVIDENCE} | configuration, operator, timeline, counts, verification, backups, sweep, data keys |",
        f"| {AUDIT} | the migration's audit entries with their hashes and proofs; the whole chain's verification |",
        f"| {SUMMARY} | this summary |",
        f"| {evidence_bundle.MANIFEST} | every file's SHA-256 and size, and the signing key's fingerprint |",
        f"| {evidence_bundle.SIGNATURE} | HMAC-SHA-256 of {evidence_bundle.MANIFEST} under a key derived from the master key |",
        "",
        "Check it (offline, with the master key): `tui-migrator evidence verify DIR`",
        "",
        "## Migration",
        "",
        *_pairs(
            [
                (
                    "Status",
                    migration["status"] + (" (dry run: no data was changed)" if migration["dryRun"] else ""),
                ),
                ("Kind", MigrationKind(migration["kind"]).described),
                ("Operator (created by)", migration["operator"]),
                ("Configuration", _code(json.dumps(migration["config"], sort_keys=True))),
            ]
        ),
        "",
        "## Timeline (UTC)",
        "",
        *_pairs(
            [
                ("Created", timeline["createdAt"]),
                ("Started", timeline["startedAt"]),
                ("Completed", timeline["completedAt"]),
                ("Cancelled", _cancelled(timeline)),
                ("Rolled back", timeline["rolledBackAt"]),
                ("Backups purged", timeline["backupsPurgedAt"]),
                ("Swept", timeline["sweptAt"]),
                ("Elapsed", f"{timeline['elapsedSeconds']} s (paused {timeline['pausedSeconds']} s)"),
                (
                    "Phases",
                    ", ".join(f"{phase} {seconds} s" for phase, seconds in timeline["phaseSeconds"].items())
                    or "not recorded",
                ),
            ]
        ),
        "",
        "| # | time | operation | user | result |",
        "|---|---|---|---|---|",
        *(
            f"| {event['sequence']} | {event['at']} | {event['operation']} | {_cell(event['userId'])} | "
            f"{'ok' if event['success'] else 'FAILED'} |"
            for event in timeline["events"]
        ),
        "",
        "## Records",
        "",
        (
            f"{counts['encryptedRecords']:,} encrypted, {counts['failedRecords']:,} failed, "
            f"{counts['processedRecords']:,} processed of {counts['totalRecords']:,} "
            f"({counts['alreadyEncryptedRecords']:,} were already encrypted)."
        ),
        "",
        "| table | category | total | processed | encrypted | failed | done |",
        "|---|---|---|---|---|---|---|",
        *(
            f"| {_cell(t['table'])} | {t['category']} | {t['totalRecords']:,} | {t['processedRecords']:,} | "
            f"{t['encryptedRecords']:,} | {t['failedRecords']:,} | {'yes' if t['done'] else 'no'} |"
            for t in counts["byTable"]
        ),
        "",
        *_organization_lines(counts["byOrganization"]),
        *_failure_lines(migration["failures"]),
        "## Integrity verification",
        "",
        *_verification_lines(migration["verification"]),
        "",
        "## Backups",
        "",
        *_backup_lines(migration["backups"]),
        "",
        "## Sweep (plaintext left in the database files)",
        "",
        *_sweep_lines(migration["sweep"]),
        "",
        "## Data keys",
        "",
        (
            f"Master key fingerprint: {_code(evidence['dataKeys']['masterKeyFingerprint'])}. "
            f"{evidence['dataKeys']['note']}"
        ),
        "",
        "| key id | organization | generation | algorithm | status | created (UTC) | by |",
        "|---|---|---|---|---|---|---|",
        *(
            f"| {_cell(k['keyId'])} | {_cell(k['organizationId'])} | {k['generation']} | {k['algorithm']} | "
            f"{k['status']} | {k['createdAt']} | {_cell(k['createdBy'])} |"
            for k in evidence["dataKeys"]["keys"]
        ),
        "",
        "## Audit trail",
        "",
        *_chain_lines(audit["chainVerification"]),
        "",
        *(f"- **{name}**: {words}" for name, words in audit["proofs"].items()),
        "",
        "| # | id | time | operation | user | result | entry hash | previous hash | proof |",
        "|---|---|---|---|---|---|---|---|---|",
        *(
            f"| {entry['sequence']} | {entry['id']} | {entry['timestamp']} | {entry['operation']} | "
            f"{_cell(entry['userId'])} | {'ok' if entry['success'] else 'FAILED'} | "
            f"{_code(entry['entryHash'])} | {_code(entry['previousHash'])} | {_code(entry['cryptographicProof'])} |"
            for entry in audit["entries"]
        ),
    ]
    if migration["warnings"] or migration["errorMessage"]:
        lines += ["", "## Warnings and errors", ""]
        lines += [f"- Warning: {_cell(warning)}" for warning in migration["warnings"]]
        if migration["errorMessage"]:
            lines.append(f"- Error: {_cell(migration['errorMessage'])}")
    return "\n".join(lines) + "\n"


def _pairs(pairs: list[tuple[str, Any]]) -> list[str]:
    return [f"- **{name}**: {'—' if value is None else value}" for name, value in pairs]


def _cancelled(timeline: dict[str, Any]) -> str | None:
    if timeline["cancelledAt"] is None:
        return None
    return f"{timeline['cancelledAt']} by {timeline['cancelledBy']}: {timeline['cancelReason']}"


def _organization_lines(organizations: dict[str, Any]) -> list[str]:
    if not organizations["available"]:
        return [f"Per organization: not counted ({organizations['reason']}).", ""]
    return [
        f"Per organization ({organizations['note']} Counted {organizations['countedAt']}.)",
        "",
        "| organization | rows in scope | still plaintext |",
        "|---|---|---|",
        *(
            f"| {_cell(o['organizationId'])} | {o['rowsInScope']:,} | {o['rowsWithPlaintext']:,} |"
            for o in organizations["organizations"]
        ),
        "",
    ]


def _failure_lines(failures: dict[str, Any]) -> list[str]:
    if not failures["count"]:
        return []
    return [
        f"Failed records: {failures['count']:,} (named in the tool by table and key, never by value).",
        "",
        *(f"- {count:,}: {_cell(reason)}" for reason, count in failures["byReason"].items()),
        "",
    ]


def _verification_lines(verification: dict[str, Any] | None) -> list[str]:
    if not verification:
        return ["Not run (integrity checks were skipped, or the migration did not reach it)."]
    return [
        f"{'PASSED' if verification['passed'] else 'FAILED'}: {verification['verifiedRows']:,} rows read "
        "back, opened and compared with their HMAC-SHA-256 digests"
        + (f"; {verification['problem']}" if verification.get("problem") else "."),
    ]


def _backup_lines(backups: dict[str, Any]) -> list[str]:
    if not backups["requested"]:
        return ["No backups were requested (rollback relies on decryption)."]
    lines = [
        f"- {_cell(item['table'])}: {item['rows']} rows sealed into {_cell(item['backupTable'])} at "
        f"{item['at']} by {_cell(item['by'])} (digest {_code(str(item['digest']))})"
        for item in backups["created"]
    ] or ["No backup was recorded as created."]
    for purge in backups["purges"]:
        lines.append(
            f"- Purged {purge['at']} by {_cell(purge['by'])}: {', '.join(purge['droppedTables']) or 'nothing left'}"
        )
    lines.append(
        "Backups kept now: " + (", ".join(_cell(item["backupTable"]) for item in backups["kept"]) or "none")
    )
    return lines


def _sweep_lines(sweep: dict[str, Any] | None) -> list[str]:
    if not sweep:
        return ["No sweep result."]
    return [
        f"{_cell(sweep['summary'])}" + (f" (swept {sweep['sweptAt']})" if sweep.get("sweptAt") else ""),
        "",
        "Not reachable by any sweep (the operator's to handle):",
        "",
        *(f"- {_cell(item)}" for item in sweep.get("outOfReach", [])),
    ]


def _chain_lines(chain: dict[str, Any]) -> list[str]:
    if chain["intact"]:
        anchor = (
            f"; all {chain['anchoredEntries']} entries anchored outside the database are in it"
            if chain["anchor"]
            else "; no anchor of this database in this data dir"
        )
        return [
            f"Whole chain verified {chain['verifiedAt']}: intact, {chain['verifiedEntries']} entries{anchor}."
        ]
    return [f"Whole chain verified {chain['verifiedAt']}: BROKEN. {_cell(chain['problem'])}"]


def _cell(value: Any) -> str:
    """Text inside a Markdown table: its pipes escaped, on one line."""
    return str(value).replace("|", "\\|").replace("\n", " ")


def _code(value: str) -> str:
    return f"`{value.replace('`', '')}`"
