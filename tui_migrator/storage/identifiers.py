"""Names the tool makes up for objects in the user's database, kept within PostgreSQL's limit.

PostgreSQL truncates an identifier longer than 63 bytes (UTF-8), so two long generated names
could become one, and a name looked up later would not be found. A generated name that does not
fit is shortened and given a hash of the whole name: the same name always gives the same result
(in any process, on any run: resume, rollback and verification find objects by name), and two
names sharing a long prefix still differ. A name that fits is used unchanged.
"""

from __future__ import annotations

import hashlib

from sqlalchemy.engine import Dialect

# PostgreSQL's identifier limit (NAMEDATALEN - 1), in bytes.
MAX_IDENTIFIER_BYTES = 63
# Hex digits of the hash a shortened name ends with (after an underscore).
HASH_DIGITS = 8


def fit_identifier(name: str, limit: int = MAX_IDENTIFIER_BYTES) -> str:
    """``name`` if it is at most ``limit`` bytes in UTF-8, else its longest prefix (whole
    characters) that leaves room for ``_`` and the first :data:`HASH_DIGITS` hex digits of the
    SHA-256 of the whole name."""
    encoded = name.encode("utf-8")
    if len(encoded) <= limit:
        return name
    if limit <= HASH_DIGITS + 1:
        raise ValueError(f"an identifier limit of {limit} bytes leaves no room for a name")
    suffix = hashlib.sha256(encoded).hexdigest()[:HASH_DIGITS]
    # Cut at a byte boundary; a character cut in two is dropped whole.
    head = encoded[: limit - HASH_DIGITS - 1].decode("utf-8", errors="ignore")
    return f"{head}_{suffix}"


def identifier_limit(dialect: Dialect) -> int | None:
    """The identifier limit in bytes of a database, or None where there is none (SQLite).

    For names the tool has always generated without a limit on SQLite (companion columns),
    so the ones existing databases hold keep their names there."""
    return MAX_IDENTIFIER_BYTES if dialect.name == "postgresql" else None
