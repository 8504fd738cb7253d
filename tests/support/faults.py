"""Faults for the rollback and exit-code tests: a database trigger that fails a migration
deterministically, a gate that holds batches until an operator's request is written, tampering
with tokens and sealed backups, and a count of the rows that hold tokens."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

from tui_migrator.crypto.tokens import is_token, parse_token
from tui_migrator.engine import batches as batches_module
from tui_migrator.storage.mapping import ResolvedMapping

FAULT_MESSAGE = "permission denied for table (revoked by the test)"


def fail_batches_after(monkeypatch: pytest.MonkeyPatch, table: str, committed: int) -> None:
    """Let the first ``committed`` batches of ``table`` commit; every later batch of it does all
    its writes (backups, the UPDATE, row metadata, counters) in its transaction and then meets a
    database error as if the UPDATE privilege had been revoked meanwhile: not transient (so not
    retried) and not one row's refusal (so not recorded as a failed row), it fails the migration.

    The estimate's calibration, which also writes batches (in a transaction it rolls back), is
    left alone."""
    real = batches_module.TableBatches.write_in
    lock = threading.Lock()
    written = {"batches": 0}

    def failing(
        self: batches_module.TableBatches, connection: sa.Connection, *args: Any, **kwargs: Any
    ) -> None:
        real(self, connection, *args, **kwargs)
        if self.migration_id == "calibration" or self.dry_run or self.table_name != table:
            return
        with lock:
            written["batches"] += 1
            fails = written["batches"] > committed
        if fails:
            raise sa.exc.ProgrammingError("UPDATE", {}, Exception(FAULT_MESSAGE))

    monkeypatch.setattr(batches_module.TableBatches, "write_in", failing)


class BatchGate:
    """Lets the first ``open_for`` batches of a migration through, then holds every later batch
    (before it seals or writes anything) until :meth:`release`. A test waits for
    :attr:`holding`, writes its pause or cancel request, then releases: the request is then
    certainly written while the migration still has batches to do, whatever the machine's speed.

    It wraps ``TableBatches.seal_rows``, which both the keyset (SQLite) and the claimed
    (PostgreSQL) batch paths call; the estimate's calibration passes through untouched."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *, open_for: int, timeout: float = 60.0) -> None:
        self.open_for = open_for
        self.timeout = timeout
        self.holding = threading.Event()
        self._released = threading.Event()
        self._lock = threading.Lock()
        self._batches = 0
        real = batches_module.TableBatches.seal_rows
        gate = self

        def gated(self: batches_module.TableBatches, rows: Any) -> Any:
            if self.migration_id != "calibration" and not self.dry_run:
                gate._wait_turn()
            return real(self, rows)

        monkeypatch.setattr(batches_module.TableBatches, "seal_rows", gated)

    def _wait_turn(self) -> None:
        with self._lock:
            self._batches += 1
            through = self._batches <= self.open_for
        if through:
            return
        self.holding.set()
        # Bounded, so a test that fails before releasing never hangs the suite.
        self._released.wait(self.timeout)

    def release(self) -> None:
        self._released.set()


def tampered_token(token: str) -> str:
    """``token`` with one character of its base64 payload changed: it still parses as a token
    (so rollback tries to open it) but its bytes differ, so AES-GCM authentication fails."""
    head, payload = token.rsplit(":", 1)
    middle = len(payload) // 2
    replacement = "A" if payload[middle] != "A" else "B"
    changed = f"{head}:{payload[:middle]}{replacement}{payload[middle + 1 :]}"
    original, parsed = parse_token(token), parse_token(changed)
    assert is_token(changed) and original is not None and parsed is not None
    assert (parsed.nonce, parsed.ciphertext) != (original.nonce, original.ciphertext)
    return changed


def flipped_byte(sealed: bytes) -> bytes:
    """``sealed`` with one bit of its middle byte flipped (inside the AES-GCM ciphertext)."""
    data = bytearray(sealed)
    data[len(data) // 2] ^= 0x01
    return bytes(data)


def sealed_rows(engine: sa.Engine, mapping: ResolvedMapping) -> int:
    """How many rows of the mapped tables hold at least one token (in place or in a companion)."""
    return sum(len(sealed_keys(engine, mapping, mapped.name)) for mapped in mapping.tables)


def sealed_keys(engine: sa.Engine, mapping: ResolvedMapping, table: str) -> list[tuple[Any, ...]]:
    """The primary keys, in key order, of the rows of ``table`` that hold at least one token."""
    mapped = mapping.table(table)
    with engine.connect() as connection:
        present = {column["name"] for column in sa.inspect(connection).get_columns(table)}
        conditions = []
        for column in mapped.columns:
            if column.companion is not None:
                if column.companion in present:
                    conditions.append(f'"{column.companion}" IS NOT NULL')
            else:
                conditions.append(f"substr(\"{column.name}\", 1, 6) = 'tmenc:'")
        if not conditions:  # only companion columns, none added yet
            return []
        key = ", ".join(f'"{name}"' for name in mapped.primary_key)
        return [
            tuple(row)
            for row in connection.exec_driver_sql(
                f'SELECT {key} FROM "{table}" WHERE {" OR ".join(conditions)} ORDER BY {key}'
            )
        ]


@dataclass(frozen=True)
class TamperedContact:
    """An emergency contact (composite key) whose ``contact_name`` token and sealed backup were
    both altered after a completed migration, so neither can give its original back."""

    patient: int
    contact: int
    backup_table: str
    sealed: bytes  # the backup's bytes before they were altered

    @property
    def where(self) -> dict[str, Any]:
        return {"patient": self.patient, "contact": self.contact}

    def shown(self) -> str:
        """How rollback names the row."""
        return f"emergency_contacts ({self.patient}, {self.contact})"

    def repair_backup(self, engine: sa.Engine) -> None:
        with engine.begin() as connection:
            _write_sealed(connection, self.backup_table, self.sealed, self.where)


def tamper_contact_and_backup(engine: sa.Engine, backup_table: str) -> TamperedContact:
    with engine.begin() as connection:
        patient, contact, token = connection.exec_driver_sql(
            "SELECT patient_id, contact_no, contact_name FROM emergency_contacts "
            "WHERE contact_name IS NOT NULL ORDER BY patient_id, contact_no LIMIT 1"
        ).one()
        where = {"patient": patient, "contact": contact}
        connection.execute(
            sa.text(
                "UPDATE emergency_contacts SET contact_name = :bad "
                "WHERE patient_id = :patient AND contact_no = :contact"
            ),
            {"bad": tampered_token(token), **where},
        )
        sealed = bytes(
            connection.execute(
                sa.text(
                    f'SELECT tm_sealed FROM "{backup_table}" '
                    "WHERE patient_id = :patient AND contact_no = :contact"
                ),
                where,
            ).scalar_one()
        )
        _write_sealed(connection, backup_table, flipped_byte(sealed), where)
    return TamperedContact(patient, contact, backup_table, sealed)


def _write_sealed(connection: sa.Connection, backup_table: str, sealed: bytes, where: dict[str, Any]) -> None:
    updated = connection.execute(
        sa.text(
            f'UPDATE "{backup_table}" SET tm_sealed = :sealed '
            "WHERE patient_id = :patient AND contact_no = :contact"
        ),
        {"sealed": sealed, **where},
    ).rowcount
    assert updated == 1


def with_row_from(
    expected: dict[str, Any], source: dict[str, Any], table: str, key: dict[str, Any]
) -> dict[str, Any]:
    """``expected`` (a raw dump) with the row of ``table`` whose columns equal ``key`` taken from
    the dump ``source`` instead: what a dump looks like when only that row was left as it was."""
    info, rows = expected[table]
    _, source_rows = source[table]
    columns = [column[1] for column in info]

    def matches(row: tuple[Any, ...]) -> bool:
        return all(row[columns.index(name)][0] == value for name, value in key.items())

    index = next(i for i, row in enumerate(rows) if matches(row))
    assert matches(source_rows[index])
    return {**expected, table: (info, [*rows[:index], source_rows[index], *rows[index + 1 :]])}


def server_restarting() -> sa.exc.OperationalError:
    """What a PostgreSQL session's next call raises once its server is shutting down (the
    driver's error, as SQLAlchemy wraps it)."""
    return sa.exc.OperationalError(
        "SELECT 1", {}, psycopg.errors.AdminShutdown("terminating connection due to administrator command")
    )
