"""The audit trail's anchor: an append-only file outside the database that records, for every
entry this machine appended, its sequence number and hash with an HMAC under the master key.

The chain and its head live in the database, so whoever can write the database can cut the
tail and put back a head saved earlier: the chain alone still looks whole. The anchor is out of
that writer's reach (a file in the operator's data dir, 0600, in a 0700 folder): verification
checks that every entry it names is still in the chain with the same hash, and names the first
one that is not. Each line is written with ``O_APPEND`` and fsynced after the entry's
transaction commits, so the anchor never names an entry that was rolled back; a crash between
the two leaves an entry the anchor does not name, which costs nothing but that entry's anchoring.

What it cannot do: prove entries appended from another machine (each data dir anchors its own
appends), or survive someone who can write the operator's files and holds the master key.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from tui_migrator.crypto.keys import MasterKey, Purpose

PRIVATE_FOLDER = 0o700
PRIVATE_FILE = 0o600
# chain id, sequence, entry hash, proof
_LINE = re.compile(r"^([0-9a-f]{32}) (\d+) ([0-9a-f]{64}) ([0-9a-f]{64})$")


@dataclass
class AnchorReading:
    """What the anchor file holds: the entries it names, and the lines that do not verify."""

    hashes: dict[int, str] = field(default_factory=dict)
    # (line number, why): a line altered, forged, or naming one entry with two hashes.
    bad_lines: list[tuple[int, str]] = field(default_factory=list)


class AuditAnchor:
    def __init__(self, path: Path, master_key: MasterKey) -> None:
        self.path = path
        self._key = master_key.derive(Purpose.AUDIT_ANCHOR)

    def record(self, chain: str, seq: int, entry_hash: str) -> None:
        """Append one line and make it durable before returning."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=PRIVATE_FOLDER)
        descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, PRIVATE_FILE)
        try:
            line = f"{chain} {seq} {entry_hash} {self._prove(chain, seq, entry_hash)}\n"
            os.write(descriptor, line.encode("ascii"))
            os.fsync(descriptor)
        finally:
            os.close(descriptor)

    def lines(self) -> list[str] | None:
        """The file's lines as they are now; None where this data dir has never anchored an
        entry of this database. Read before the chain they are checked against (see
        AuditTrail.verify)."""
        if not self.path.exists():
            return None
        lines = self.path.read_text(encoding="ascii", errors="replace").split("\n")
        return lines[:-1] if lines[-1] == "" else lines

    def reading(self, lines: list[str] | None, chain: str) -> AnchorReading | None:
        """The ``lines`` (from :meth:`lines`) of chain ``chain`` (those of a chain the database
        had before are not its business); None where there were none to read."""
        if lines is None:
            return None
        reading = AnchorReading()
        for number, line in enumerate(lines, start=1):
            match = _LINE.match(line)
            if match is None:
                reading.bad_lines.append((number, "it is not an anchor line"))
                continue
            line_chain, seq, entry_hash, proof = match[1], int(match[2]), match[3], match[4]
            if not hmac.compare_digest(self._prove(line_chain, seq, entry_hash), proof):
                reading.bad_lines.append((number, "its proof does not verify under this master key"))
            elif line_chain != chain:
                continue
            elif reading.hashes.setdefault(seq, entry_hash) != entry_hash:
                reading.bad_lines.append((number, f"it names entry #{seq} with a second hash"))
        return reading

    def _prove(self, chain: str, seq: int, entry_hash: str) -> str:
        text = f"anchor:{chain}:{seq}:{entry_hash}"
        return hmac.new(self._key, text.encode("ascii"), hashlib.sha256).hexdigest()
