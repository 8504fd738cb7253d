"""The name of every operation the audit trail records: the one list a reader of the trail, a
filter or a test can rely on. Stored as the enum's text, so entries written before an operation
was added here read the same."""

from __future__ import annotations

from enum import StrEnum


class AuditOperation(StrEnum):
    # The tool and its operators
    TOOL_INITIALIZED = "tool_initialized"
    PERMISSION_DENIED = "permission_denied"
    OPERATOR_GRANTED = "operator_granted"
    OPERATOR_REVOKED = "operator_revoked"
    # Operators' API tokens, and a request whose token was refused (never the token itself)
    API_TOKEN_CREATED = "api_token_created"
    API_TOKEN_REVOKED = "api_token_revoked"
    API_REQUEST_REFUSED = "api_request_refused"
    AUDIT_VERIFIED = "audit_verified"
    # An evidence bundle of a migration written for auditors (never its values)
    EVIDENCE_EXPORTED = "evidence_exported"
    # Keys: the master key replaced (by fingerprint), data key generations made and retired
    MASTER_KEY_ROTATED = "master_key_rotated"
    DATA_KEYS_ROTATED = "data_keys_rotated"
    DATA_KEYS_RETIRED = "data_keys_retired"
    # A change refused because tm_audit's append-only triggers were gone, and their restoring
    AUDIT_UNPROTECTED = "audit_unprotected_refusal"
    AUDIT_TRIGGERS_RESTORED = "audit_triggers_restored"
    DEMO_REBUILT = "demo_database_rebuilt"
    # A migration's life
    MIGRATION_STARTED = "data_migration_started"
    MIGRATION_RUNNING = "data_migration_running"
    MIGRATION_PAUSE_REQUESTED = "data_migration_pause_requested"
    MIGRATION_PAUSED = "data_migration_paused"
    MIGRATION_CONTINUE_REQUESTED = "data_migration_continue_requested"
    MIGRATION_CONTINUED = "data_migration_continued"
    MIGRATION_CANCEL_REQUESTED = "data_migration_cancel_requested"
    MIGRATION_CANCELLED = "data_migration_cancelled"
    MIGRATION_RESUMED = "data_migration_resumed"
    MIGRATION_FAILED = "data_migration_failed"
    MIGRATION_COMPLETED = "data_migration_completed"
    # Its stages
    BACKUP_CREATED = "backup_created"
    BACKUPS_PURGED = "backups_purged"
    INTEGRITY_VERIFIED = "integrity_verified"
    WORKER_JOINED = "worker_joined"
    WORKER_LEFT = "worker_left"
    # A worker found the migration claimed by another process since (a resume, a rollback)
    WORKER_FENCED = "worker_fenced"
    # Removing the plaintext the UPDATEs left in the database files, and proving it
    MIGRATION_SWEPT = "data_migration_swept"
    # Undoing it
    ROLLBACK_STARTED = "data_migration_rollback_started"
    ROLLBACK_FAILED = "data_migration_rollback_failed"
    ROLLED_BACK = "data_migration_rolled_back"
