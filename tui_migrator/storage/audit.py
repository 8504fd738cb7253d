"""The append-only, tamper-evident audit trail.

Each entry's hash is SHA-256 over a canonical encoding of its fields and the previous entry's
hash, so the entries form a chain; its proof is an HMAC of that hash under a key derived from the
master key, so nobody without the key can forge a consistent entry. The latest sequence number
and hash (the head) are kept, authenticated, in ``tm_meta``: that exposes entries cut from the
end by someone who cannot put back a head saved earlier. Someone who can write the database can,
so every entry is also anchored outside it (storage/audit_anchor.py) once its transaction
commits. Appends take the head row's lock, so concurrent processes extend one chain instead of
forking it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from tui_migrator.crypto.keys import MasterKey, Purpose
from tui_migrator.storage.audit_anchor import AuditAnchor
from tui_migrator.storage.database import after_commit, serialized_write
from tui_migrator.storage.tables import (
    META_AUDIT_CHAIN,
    META_AUDIT_HEAD,
    audit_table,
    meta_table,
    read_meta,
    write_meta,
)

log = logging.getLogger(__name__)

GENESIS_HASH = "0" * 64


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    entry_id: str
    operation: str
    user_id: str
    success: bool
    timestamp: str
    migration_id: str | None
    details: dict[str, Any]
    previous_hash: str
    entry_hash: str
    proof: str


@dataclass(frozen=True)
class AuditVerification:
    """Outcome of recomputing the chain. ``problem`` names the first bad entry in words."""

    verified_entries: int
    total_entries: int
    first_broken_seq: int | None = None
    first_broken_entry_id: str | None = None
    problem: str | None = None
    # How many entries the anchor outside the database names (all found in the chain when
    # intact), and where it is; None where this data dir never anchored an entry here.
    anchored_entries: int = 0
    anchor: str | None = None

    @property
    def intact(self) -> bool:
        return self.problem is None


class AuditTrail:
    def __init__(self, engine: Engine, master_key: MasterKey, anchor: AuditAnchor | None = None) -> None:
        self._engine = engine
        self._proof_key = master_key.derive(Purpose.AUDIT)
        self.anchor = anchor

    def record(
        self,
        operation: str,
        *,
        user_id: str,
        success: bool,
        migration_id: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> AuditEntry:
        """Append one entry in its own transaction."""
        with serialized_write(self._engine) as connection:
            return self.append(
                connection,
                operation,
                user_id=user_id,
                success=success,
                migration_id=migration_id,
                details=details,
            )

    def append(
        self,
        connection: Connection,
        operation: str,
        *,
        user_id: str,
        success: bool,
        migration_id: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> AuditEntry:
        """Append one entry inside the caller's transaction (opened with ``serialized_write``),
        so the audited change and its entry commit or roll back together."""
        head_seq, head_hash = self._lock_head(connection)
        # Normally the head's successor; past any row inserted behind the tool's back, so that
        # tampering is reported by --verify and never stops operations from being recorded.
        highest = connection.execute(sa.select(sa.func.max(audit_table.c.seq))).scalar_one()
        seq = max(head_seq, highest or 0) + 1
        entry_id = f"audit_{seq:06d}"
        timestamp = _timestamp_now()
        entry_details = dict(details or {})
        fields = {
            "seq": seq,
            "entryId": entry_id,
            "operation": operation,
            "userId": user_id,
            "success": bool(success),
            "timestamp": timestamp,
            "migrationId": migration_id,
            "details": entry_details,
            "previousHash": head_hash,
        }
        entry_hash = _hash_fields(fields)
        proof = self._prove(entry_hash)
        connection.execute(
            sa.insert(audit_table).values(
                seq=seq,
                entry_id=entry_id,
                operation=operation,
                user_id=user_id,
                success=bool(success),
                timestamp=timestamp,
                migration_id=migration_id,
                details=_canonical(entry_details),
                previous_hash=head_hash,
                entry_hash=entry_hash,
                proof=proof,
            )
        )
        write_meta(connection, META_AUDIT_HEAD, self._head_value(seq, entry_hash))
        chain = self._chain_identity(connection, new_chain=head_seq == 0)
        if self.anchor is not None and chain is not None:
            after_commit(connection, partial(self._anchor, self.anchor, chain, seq, entry_hash))
        return AuditEntry(
            seq=seq,
            entry_id=entry_id,
            operation=operation,
            user_id=user_id,
            success=bool(success),
            timestamp=timestamp,
            migration_id=migration_id,
            details=entry_details,
            previous_hash=head_hash,
            entry_hash=entry_hash,
            proof=proof,
        )

    def entries(
        self, *, limit: int | None = None, migration_id: str | None = None
    ) -> tuple[list[AuditEntry], int]:
        """Newest first, with the total count matching the filter."""
        condition = sa.true() if migration_id is None else audit_table.c.migration_id == migration_id
        query = sa.select(audit_table).where(condition).order_by(audit_table.c.seq.desc())
        if limit is not None:
            query = query.limit(limit)
        with self._engine.connect() as connection:
            total = connection.execute(
                sa.select(sa.func.count()).select_from(audit_table).where(condition)
            ).scalar_one()
            rows = connection.execute(query).mappings().all()
        return [_entry_from_row(row) for row in rows], total

    def verify(self) -> AuditVerification:
        """Recompute the whole chain and report the first entry altered, removed or inserted;
        then check it against its head in tm_meta and against the anchor outside the database."""
        verified = 0
        previous_hash = GENESIS_HASH
        expected_seq = 1
        hashes: dict[int, str] = {}
        # The anchor first: each of its lines is written after its entry committed, so every
        # entry it names is in the database's state read next. Read after that state, an entry
        # appended in between was named by the anchor and missing from the chain read: tampering
        # reported where there was none (a sweep's entries, written while `GET /audit` checked).
        anchor_lines = self.anchor.lines() if self.anchor is not None else None
        with self._engine.connect() as connection:
            if connection.dialect.name == "postgresql":
                # One snapshot for the head, the chain's identity and every entry: by default each
                # statement has its own, and an entry appended between them put the head ahead of
                # the entries read. (SQLite's read transaction is one snapshot already.)
                connection.execution_options(isolation_level="REPEATABLE READ")
            head_text = read_meta(connection, META_AUDIT_HEAD)
            chain_text = read_meta(connection, META_AUDIT_CHAIN)
            total = connection.execute(sa.select(sa.func.count()).select_from(audit_table)).scalar_one()
            rows = (
                connection.execution_options(yield_per=1000)
                .execute(sa.select(audit_table).order_by(audit_table.c.seq))
                .mappings()
            )
            for row in rows:
                entry = _entry_from_row(row)
                problem = self._check(entry, expected_seq, previous_hash)
                if problem:
                    return AuditVerification(verified, total, entry.seq, entry.entry_id, problem)
                verified += 1
                hashes[entry.seq] = entry.entry_hash
                previous_hash = entry.entry_hash
                expected_seq = entry.seq + 1
        if total == 0:
            # Setting the tool up writes the first entry in the transaction that makes its
            # creator super_admin: a set-up database never has an empty trail.
            return AuditVerification(
                0,
                0,
                1,
                None,
                "The audit trail has no entries, but this database was set up: every entry was removed.",
            )
        problem = self._check_head(head_text, expected_seq - 1, previous_hash)
        if problem:
            return AuditVerification(verified, total, expected_seq - 1 or None, None, problem)
        chain = self._parse_chain(chain_text)
        if chain is None:
            what = "missing from" if chain_text is None else "altered in"
            return AuditVerification(
                verified, total, None, None, f"The audit chain's identity record is {what} tm_meta."
            )
        return self._check_anchor(chain, anchor_lines, hashes, verified, total)

    def _check_anchor(
        self, chain: str, anchor_lines: list[str] | None, hashes: dict[int, str], verified: int, total: int
    ) -> AuditVerification:
        reading = self.anchor.reading(anchor_lines, chain) if self.anchor is not None else None
        if self.anchor is None or reading is None:
            return AuditVerification(verified, total)
        where = str(self.anchor.path)
        anchored = len(reading.hashes)
        if reading.bad_lines:
            number, why = reading.bad_lines[0]
            return AuditVerification(
                verified,
                total,
                problem=f"The audit anchor {where} was altered at line {number}: {why}.",
                anchored_entries=anchored,
                anchor=where,
            )
        last = max(hashes, default=0)
        for seq in sorted(reading.hashes):
            if seq not in hashes:
                problem = (
                    f"Audit entry #{seq} is missing: the anchor {where} recorded it, and the "
                    f"chain now ends at #{last}"
                    + (" (entries were cut from the end and the head put back)." if seq > last else ".")
                )
            elif hashes[seq] != reading.hashes[seq]:
                problem = f"Audit entry #{seq} was replaced: the anchor {where} recorded another hash for it."
            else:
                continue
            return AuditVerification(verified, total, seq, None, problem, anchored, where)
        return AuditVerification(verified, total, anchored_entries=anchored, anchor=where)

    def _check(self, entry: AuditEntry, expected_seq: int, previous_hash: str) -> str | None:
        label = f"Audit entry #{entry.seq} ({entry.entry_id})"
        if _hash_fields(_fields_of(entry)) != entry.entry_hash:
            return f"{label} was altered: its content no longer matches its hash."
        if not hmac.compare_digest(self._prove(entry.entry_hash), entry.proof):
            return (
                f"{label} was inserted or forged: its proof does not verify under this database's master key."
            )
        if entry.previous_hash != previous_hash or entry.seq != expected_seq:
            if entry.seq > expected_seq:
                return (
                    f"Audit entries were removed before #{entry.seq} ({entry.entry_id}): "
                    f"expected #{expected_seq}, and #{entry.seq} chains to an entry that is gone."
                )
            return f"{label} does not chain to the entry before it: it was inserted or reordered."
        return None

    def _check_head(self, head_text: str | None, last_seq: int, last_hash: str) -> str | None:
        if head_text is None:
            return "The audit head record is missing from tm_meta."
        head = json.loads(head_text)
        if not hmac.compare_digest(self._head_value(head["seq"], head["hash"]), head_text):
            return "The audit head record in tm_meta was altered: its proof does not verify."
        if head["seq"] != last_seq or head["hash"] != last_hash:
            return (
                f"The audit trail ends at #{last_seq} but its head records #{head['seq']}: "
                f"the last {head['seq'] - last_seq} entries were removed."
                if head["seq"] > last_seq
                else f"The audit trail ends at #{last_seq} but its head records #{head['seq']}."
            )
        return None

    def _chain_identity(self, connection: Connection, *, new_chain: bool) -> str | None:
        """This chain's random id, authenticated, which its anchor lines carry: a chain begun
        anew on the same database (a rebuilt demo, a recreated file) is not held to the anchor
        lines of the one before. Made with the chain's first entry (or by ensure_chain_identity
        for a chain older than ids); None where it was removed, which verify reports."""
        stored = read_meta(connection, META_AUDIT_CHAIN)
        if stored is None and new_chain:
            chain = secrets.token_hex(16)
            write_meta(connection, META_AUDIT_CHAIN, self._chain_value(chain))
            return chain
        return self._parse_chain(stored)

    def ensure_chain_identity(self, connection: Connection) -> None:
        """Give a chain begun before chains had ids its id (once, when its database is upgraded)."""
        if read_meta(connection, META_AUDIT_CHAIN) is None:
            write_meta(connection, META_AUDIT_CHAIN, self._chain_value(secrets.token_hex(16)))

    def _chain_value(self, chain: str) -> str:
        return json.dumps({"id": chain, "proof": self._prove(f"chain:{chain}")}, sort_keys=True)

    def _parse_chain(self, stored: str | None) -> str | None:
        """The id if the stored record is the tool's, else None."""
        try:
            chain = str(json.loads(stored or "")["id"])
        except (ValueError, KeyError, TypeError):
            return None
        return chain if hmac.compare_digest(self._chain_value(chain), stored or "") else None

    @staticmethod
    def _anchor(anchor: AuditAnchor, chain: str, seq: int, entry_hash: str) -> None:
        # After the commit: the audited change has happened. An anchor that cannot be written
        # (a full disk) leaves that entry unanchored, which verification does not count as
        # tampering; the operator learns of it here rather than through a failed command.
        try:
            anchor.record(chain, seq, entry_hash)
        except OSError as error:
            log.error("audit entry #%d was not anchored in %s: %s", seq, anchor.path, error)

    def _lock_head(self, connection: Connection) -> tuple[int, str]:
        query = sa.select(meta_table.c.value).where(meta_table.c.name == META_AUDIT_HEAD)
        if connection.dialect.name == "postgresql":
            query = query.with_for_update()
        head_text = connection.execute(query).scalar_one_or_none()
        if head_text is None:
            return 0, GENESIS_HASH
        head = json.loads(head_text)
        return int(head["seq"]), str(head["hash"])

    def _head_value(self, seq: int, entry_hash: str) -> str:
        proof = self._prove(f"head:{seq}:{entry_hash}")
        return json.dumps({"seq": seq, "hash": entry_hash, "proof": proof}, sort_keys=True)

    def _prove(self, text: str) -> str:
        return hmac.new(self._proof_key, text.encode("ascii"), hashlib.sha256).hexdigest()


def _timestamp_now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _hash_fields(fields: Mapping[str, Any]) -> str:
    return hashlib.sha256(_canonical(fields).encode("utf-8")).hexdigest()


def _fields_of(entry: AuditEntry) -> dict[str, Any]:
    return {
        "seq": entry.seq,
        "entryId": entry.entry_id,
        "operation": entry.operation,
        "userId": entry.user_id,
        "success": entry.success,
        "timestamp": entry.timestamp,
        "migrationId": entry.migration_id,
        "details": entry.details,
        "previousHash": entry.previous_hash,
    }


def _entry_from_row(row: sa.RowMapping) -> AuditEntry:
    return AuditEntry(
        seq=row["seq"],
        entry_id=row["entry_id"],
        operation=row["operation"],
        user_id=row["user_id"],
        success=bool(row["success"]),
        timestamp=row["timestamp"],
        migration_id=row["migration_id"],
        details=json.loads(row["details"]),
        previous_hash=row["previous_hash"],
        entry_hash=row["entry_hash"],
        proof=row["proof"],
    )
