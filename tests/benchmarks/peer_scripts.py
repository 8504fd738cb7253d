"""The hand-written peers tests/benchmarks/peers.py times against tui-migrator: each one what a
developer would write to encrypt the ``records`` table of the benchmark, run as its own process.

Run: .venv/bin/python tests/benchmarks/peer_scripts.py {same-work,encrypt-only,naive} URL

URL is ``sqlite:///path`` or ``postgresql+psycopg://user@host:port/dbname`` (a password is better
given in PGPASSWORD than in the URL, which any user can read with ps). Every key is generated
inside the script and dies with it. Prints one JSON object: the rows it processed and, for
same-work, what its verification found; exits 1 if that found anything wrong.

- ``same-work``: raw sqlite3 / psycopg, keyset batches of 1,000 rows on id. Per batch, in one
  transaction: a sealed backup of each row (AES-256-GCM of its six values, length-prefixed, into
  ``records_backup``); each non-NULL value sealed with AES-256-GCM under its organization's key,
  with associated data binding it to table, column, primary key and organization, written as the
  text ``peer:v1:<base64url(nonce || ciphertext)>``; an HMAC-SHA-256 digest of the row's original
  values (bound to table, key and organization) into ``records_meta``. Then a verification pass
  reads every row back, opens every token, recomputes the digest and compares it with
  ``records_meta``, and opens every sealed backup and checks it against the same digest. What it
  does not do that tui-migrator does: guard the UPDATE against concurrent application writes,
  keep type tags, an audit trail, a heartbeat, resumable checkpoints, the sweep.
- ``encrypt-only``: raw sqlite3 / psycopg, keyset batches of 1,000: AES-256-GCM of each non-NULL
  value (no associated data) as base64url text, executemany UPDATE, commit. Nothing else.
- ``naive``: the SQLAlchemy ORM with a declarative class for ``records``, Fernet for each value,
  pages of 100 rows by id (an OFFSET would make it quadratic), commit after every page.
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import sqlite3
import sys
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

TABLE = "records"
COLUMNS = ("first_name", "last_name", "address", "phone", "email", "notes")
BATCH = 1000
NAIVE_PAGE = 100
TOKEN_PREFIX = "peer:v1:"
NULL_MARK = b"\xff\xff\xff\xff"


class Database:
    """One DB-API connection to SQLite or PostgreSQL, with the placeholder its driver wants."""

    def __init__(self, url: str) -> None:
        self.is_sqlite = url.startswith("sqlite:")
        self.connection: Any
        if self.is_sqlite:
            self.connection = sqlite3.connect(url.split(":///", 1)[1])
            self.mark = "?"
            self.blob = "BLOB"
        else:
            import psycopg

            parts = urlsplit(url)
            # libpq takes the same URL without SQLAlchemy's "+driver".
            self.connection = psycopg.connect(parts._replace(scheme="postgresql").geturl())
            self.mark = "%s"
            self.blob = "BYTEA"

    def sql(self, statement: str) -> str:
        return statement.replace("?", self.mark)

    def fetch(self, statement: str, parameters: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        cursor = self.connection.cursor()
        cursor.execute(self.sql(statement), parameters)
        rows: list[tuple[Any, ...]] = cursor.fetchall()
        cursor.close()
        return rows

    def execute(self, statement: str, parameters: Sequence[object] = ()) -> None:
        cursor = self.connection.cursor()
        cursor.execute(self.sql(statement), parameters)
        cursor.close()

    def executemany(self, statement: str, rows: Sequence[Sequence[object]]) -> None:
        cursor = self.connection.cursor()
        cursor.executemany(self.sql(statement), rows)
        cursor.close()

    def batches(self, select: str, key: str) -> Any:
        """Keyset batches of ``select`` (which must end in a WHERE clause on ``key > ?``)."""
        last = -(2**62)
        while rows := self.fetch(f"{select} ORDER BY {key} LIMIT {BATCH}", (last,)):
            yield rows
            last = rows[-1][0]


def pack(*parts: str | bytes | None) -> bytes:
    """Length-prefixed concatenation: no two different tuples pack to the same bytes."""
    out = bytearray()
    for part in parts:
        if part is None:
            out += NULL_MARK
            continue
        data = part.encode() if isinstance(part, str) else part
        out += len(data).to_bytes(4, "big") + data
    return bytes(out)


def unpack(data: bytes) -> list[str | None]:
    values: list[str | None] = []
    at = 0
    while at < len(data):
        head = data[at : at + 4]
        at += 4
        if head == NULL_MARK:
            values.append(None)
            continue
        size = int.from_bytes(head, "big")
        values.append(data[at : at + size].decode())
        at += size
    return values


class Keys:
    """A random master key, and keys derived from it: one per organization, one for backups,
    one for digests."""

    def __init__(self) -> None:
        self._master = os.urandom(32)
        self.backup = AESGCM(self.derive(b"backup"))
        self.digest_key = self.derive(b"digest")
        self._organizations: dict[str, AESGCM] = {}

    def derive(self, label: bytes) -> bytes:
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=label).derive(self._master)

    def organization(self, organization: str) -> AESGCM:
        aead = self._organizations.get(organization)
        if aead is None:
            aead = self._organizations[organization] = AESGCM(self.derive(b"data:" + organization.encode()))
        return aead

    def digest(self, key: bytes, organization: str, values: Sequence[str | None]) -> str:
        return hmac.new(self.digest_key, pack(TABLE, key, organization, *values), hashlib.sha256).hexdigest()


def packed_key(row_id: int) -> bytes:
    return pack("int", str(row_id))


def seal_token(aead: AESGCM, value: str, associated: bytes) -> str:
    nonce = os.urandom(12)
    sealed = nonce + aead.encrypt(nonce, value.encode(), associated)
    return TOKEN_PREFIX + base64.urlsafe_b64encode(sealed).decode()


def open_token(aead: AESGCM, token: str, associated: bytes) -> str:
    if not token.startswith(TOKEN_PREFIX):
        raise ValueError("not a token")
    sealed = base64.urlsafe_b64decode(token[len(TOKEN_PREFIX) :])
    return aead.decrypt(sealed[:12], sealed[12:], associated).decode()


def same_work(url: str) -> dict[str, int]:
    db, keys = Database(url), Keys()
    db.execute(f"CREATE TABLE {TABLE}_backup (id INTEGER PRIMARY KEY, sealed {db.blob} NOT NULL)")
    db.execute(f"CREATE TABLE {TABLE}_meta (id INTEGER PRIMARY KEY, digest TEXT NOT NULL)")
    db.connection.commit()
    columns = ", ".join(COLUMNS)
    assignments = ", ".join(f"{column} = ?" for column in COLUMNS)
    rows = values = 0
    for batch in db.batches(f"SELECT id, organization_id, {columns} FROM {TABLE} WHERE id > ?", "id"):
        backups, digests, updates = [], [], []
        for row_id, organization, *originals in batch:
            key = packed_key(row_id)
            nonce = os.urandom(12)
            backups.append((row_id, nonce + keys.backup.encrypt(nonce, pack(*originals), pack(TABLE, key))))
            digests.append((row_id, keys.digest(key, organization, originals)))
            aead = keys.organization(organization)
            sealed: list[object] = []
            for column, value in zip(COLUMNS, originals, strict=True):
                if value is None:
                    sealed.append(None)
                    continue
                sealed.append(seal_token(aead, value, pack(TABLE, column, key, organization)))
                values += 1
            updates.append((*sealed, row_id))
        db.executemany(f"INSERT INTO {TABLE}_backup (id, sealed) VALUES (?, ?)", backups)
        db.executemany(f"UPDATE {TABLE} SET {assignments} WHERE id = ?", updates)
        db.executemany(f"INSERT INTO {TABLE}_meta (id, digest) VALUES (?, ?)", digests)
        db.connection.commit()
        rows += len(batch)
    verified, mismatches = verify_values(db, keys)
    backup_rows, backup_mismatches = verify_backups(db, keys)
    db.connection.close()
    return {
        "rows": rows,
        "sealedValues": values,
        "verifiedRows": verified,
        "mismatches": mismatches,
        "backupRows": backup_rows,
        "backupMismatches": backup_mismatches,
    }


def verify_values(db: Database, keys: Keys) -> tuple[int, int]:
    """Read every row back, open every token, recompute the digest: (rows, mismatched rows)."""
    columns = ", ".join(f"r.{column}" for column in COLUMNS)
    select = (
        f"SELECT r.id, r.organization_id, m.digest, {columns} FROM {TABLE} r "
        f"JOIN {TABLE}_meta m ON m.id = r.id WHERE r.id > ?"
    )
    rows = mismatches = 0
    for batch in db.batches(select, "r.id"):
        for row_id, organization, digest, *tokens in batch:
            key, aead = packed_key(row_id), keys.organization(organization)
            try:
                opened = [
                    None if token is None else open_token(aead, token, pack(TABLE, column, key, organization))
                    for column, token in zip(COLUMNS, tokens, strict=True)
                ]
            except (ValueError, InvalidTag):
                mismatches += 1
                continue
            if not hmac.compare_digest(keys.digest(key, organization, opened), digest):
                mismatches += 1
        rows += len(batch)
        db.connection.commit()
    return rows, mismatches


def verify_backups(db: Database, keys: Keys) -> tuple[int, int]:
    """Open every sealed backup and check it against the row's digest: (rows, mismatched rows)."""
    select = (
        f"SELECT b.id, r.organization_id, m.digest, b.sealed FROM {TABLE}_backup b "
        f"JOIN {TABLE}_meta m ON m.id = b.id JOIN {TABLE} r ON r.id = b.id WHERE b.id > ?"
    )
    rows = mismatches = 0
    for batch in db.batches(select, "b.id"):
        for row_id, organization, digest, sealed in batch:
            key, sealed = packed_key(row_id), bytes(sealed)
            try:
                originals = unpack(keys.backup.decrypt(sealed[:12], sealed[12:], pack(TABLE, key)))
            except InvalidTag:
                mismatches += 1
                continue
            if not hmac.compare_digest(keys.digest(key, organization, originals), digest):
                mismatches += 1
        rows += len(batch)
        db.connection.commit()
    return rows, mismatches


def encrypt_only(url: str) -> dict[str, int]:
    db, aead = Database(url), AESGCM(AESGCM.generate_key(bit_length=256))
    columns = ", ".join(COLUMNS)
    assignments = ", ".join(f"{column} = ?" for column in COLUMNS)

    def seal(value: str | None) -> str | None:
        if value is None:
            return None
        nonce = os.urandom(12)
        return base64.urlsafe_b64encode(nonce + aead.encrypt(nonce, value.encode(), None)).decode()

    rows = 0
    for batch in db.batches(f"SELECT id, {columns} FROM {TABLE} WHERE id > ?", "id"):
        db.executemany(
            f"UPDATE {TABLE} SET {assignments} WHERE id = ?",
            [(*(seal(value) for value in values), row_id) for row_id, *values in batch],
        )
        db.connection.commit()
        rows += len(batch)
    db.connection.close()
    return {"rows": rows}


def naive(url: str) -> dict[str, int]:
    # Imported here so the raw scripts do not pay for SQLAlchemy. No ``from __future__ import
    # annotations`` in this module: the ORM reads the class's annotations at run time.
    from cryptography.fernet import Fernet
    from sqlalchemy import create_engine, select
    from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

    class Base(DeclarativeBase):
        pass

    class Record(Base):
        __tablename__ = TABLE
        id: Mapped[int] = mapped_column(primary_key=True)
        organization_id: Mapped[str]
        first_name: Mapped[str | None]
        last_name: Mapped[str | None]
        address: Mapped[str | None]
        phone: Mapped[str | None]
        email: Mapped[str | None]
        notes: Mapped[str | None]

    fernet = Fernet(Fernet.generate_key())
    engine = create_engine(url)
    rows, last = 0, None
    first_page = select(Record).order_by(Record.id).limit(NAIVE_PAGE)
    with Session(engine) as session:
        while page := session.scalars(
            first_page if last is None else first_page.where(Record.id > last)
        ).all():
            for record in page:
                for column in COLUMNS:
                    value = getattr(record, column)
                    if value is not None:
                        setattr(record, column, fernet.encrypt(value.encode()).decode())
            last = page[-1].id
            session.commit()
            rows += len(page)
    engine.dispose()
    return {"rows": rows}


SCRIPTS: dict[str, Callable[[str], dict[str, int]]] = {
    "same-work": same_work,
    "encrypt-only": encrypt_only,
    "naive": naive,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("script", choices=sorted(SCRIPTS))
    parser.add_argument("url", help="sqlite:///path or postgresql+psycopg://user@host:port/dbname")
    args = parser.parse_args()
    result = SCRIPTS[args.script](args.url)
    print(json.dumps(result))
    return 1 if result.get("mismatches") or result.get("backupMismatches") else 0


if __name__ == "__main__":
    sys.exit(main())
