"""Rows with large values are read a few at a time, in every phase that holds rows whole —
batches, the backups' read-back, verification, the sweep's sample and rollback — and migrate,
verify and roll back exactly; rows of ordinary size keep their reads' usual size."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.support.databases import BOTH_BACKENDS, opened_on_mapping
from tests.support.migration_helpers import raw_dump
from tui_migrator.engine import backup, batch_source, batches, read_sizes, rollback, verification
from tui_migrator.service.facade import MigratorService
from tui_migrator.storage import database
from tui_migrator.storage.column_storage import reflect
from tui_migrator.storage.mapping import parse_mapping, resolve_mapping
from tui_migrator.storage.migration_status import Status

pytestmark = BOTH_BACKENDS

MAPPING = """
[[tables]]
name = "scans"
category = "NON_MOTOR_SYMPTOMS"
primary_key = "id"
organization_column = "site"
columns = ["report", "image", "taken_on"]

[[tables]]
name = "notes"
category = "NON_MOTOR_SYMPTOMS"
primary_key = "id"
organization_column = "site"
columns = ["note"]
"""
SCANS = 24
REPORT_BYTES = 30_000
IMAGE_BYTES = 20_000
# Two scans' stored values at most (reports and images, or their tokens: a third larger).
BUDGET = 2 * 4 * (REPORT_BYTES + IMAGE_BYTES) // 3


@pytest.fixture
def archive(empty_database_url: str, tmp_path: Path) -> Iterator[MigratorService]:
    engine = sa.create_engine(empty_database_url)
    binary = "BYTEA" if engine.dialect.name == "postgresql" else "BLOB"
    with engine.begin() as connection:
        connection.exec_driver_sql(
            f"CREATE TABLE scans (id INTEGER PRIMARY KEY, site TEXT, report TEXT, image {binary}, taken_on DATE)"
        )
        connection.exec_driver_sql("CREATE TABLE notes (id INTEGER PRIMARY KEY, site TEXT, note TEXT)")
        scans = sa.table("scans", *(sa.column(c) for c in ("id", "site", "report", "image", "taken_on")))
        connection.execute(
            sa.insert(scans),
            [
                {
                    "id": n,
                    "site": f"org_{n % 2}",
                    "report": (f"Scan {n}: " + "ÿ lesion, no change; " * REPORT_BYTES)[:REPORT_BYTES],
                    "image": bytes([n]) * IMAGE_BYTES if n % 5 else None,
                    "taken_on": None,
                }
                for n in range(1, SCANS + 1)
            ],
        )
        notes = sa.table("notes", *(sa.column(c) for c in ("id", "site", "note")))
        connection.execute(
            sa.insert(notes), [{"id": n, "site": "org_0", "note": f"note {n:04d}"} for n in range(1, 61)]
        )
    engine.dispose()
    with opened_on_mapping(tmp_path, empty_database_url, MAPPING) as service:
        yield service


def test_a_rows_size_is_measured_on_the_server_from_both_ends_of_the_table(archive: MigratorService) -> None:
    with archive.engine.connect() as connection:
        access = reflect(connection, archive.mapping().table("scans"))
    # Its text in UTF-8 bytes ('ÿ' is two), its binary value's length, a NULL as nothing.
    report = len((("Scan 20: " + "ÿ lesion, no change; " * REPORT_BYTES)[:REPORT_BYTES]).encode())
    assert read_sizes.largest_row_bytes(archive.engine, access) == report + IMAGE_BYTES
    assert read_sizes.rows_per_read(archive.engine, access, 1000) == max(
        1, read_sizes.READ_BYTES // (report + IMAGE_BYTES)
    )
    # The last rows are sampled too: where only they are large, they decide.
    with archive.engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE scans SET report = 'short', image = NULL WHERE id < :last"), {"last": SCANS}
        )
    assert (
        read_sizes.largest_row_bytes(archive.engine, access)
        == len((("Scan 24: " + "ÿ lesion, no change; " * REPORT_BYTES)[:REPORT_BYTES]).encode()) + IMAGE_BYTES
    )


def test_every_phase_reads_large_rows_a_few_at_a_time_and_the_result_is_exact(
    archive: MigratorService, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """With room for two scans a read: each batch, each window of the backups' read-back and of
    verification, and each rollback batch of ``scans`` holds two rows at most, while ``notes``
    is read 25 rows at a time as asked; every value migrates, verifies and comes back exact."""
    monkeypatch.setattr(read_sizes, "READ_BYTES", BUDGET)
    caplog.set_level(logging.WARNING, logger=read_sizes.__name__)
    reads: dict[str, list[int]] = {"batches": [], "windows": [], "rollback": []}

    def counting(phase: str, function: Any) -> Any:
        def counted(*args: Any, **kwargs: Any) -> Any:
            rows = function(*args, **kwargs)
            reads[phase].append(len(rows))
            return rows

        return counted

    # Where each phase's rows (or, for the windows read in a worker, their keys) are fetched.
    monkeypatch.setattr(batches, "fetch_dicts", counting("batches", batches.fetch_dicts))
    monkeypatch.setattr(batch_source, "fetch_dicts", counting("batches", batch_source.fetch_dicts))
    monkeypatch.setattr(database, "fetch_tuples", counting("windows", database.fetch_tuples))
    restore_batch = rollback.restore_batch

    def restoring(context: Any, shape: Any, entries: Any) -> Any:
        if shape.mapped.name == "scans":
            reads["rollback"].append(len(entries))
        return restore_batch(context, shape, entries)

    # What each of the rollback's batches (read here: no worker processes for so few rows) opens.
    monkeypatch.setattr(rollback, "restore_batch", restoring)

    before = raw_dump(archive.engine)
    record = archive.start(
        {"batch_size": 25, "max_concurrency": 2, "data_categories": ["NON_MOTOR_SYMPTOMS"]}
    )
    assert record.status is Status.COMPLETED, record.error_message
    assert record.encrypted_records == SCANS + 60 and record.verification and record.verification["passed"]
    large = [rows for rows in reads["batches"] if rows <= 2]
    assert sum(large) == SCANS and max(reads["batches"]) == 25  # the notes: 25, 25 and 10
    assert reads["windows"] and all(rows <= 2 or rows in (60, 0) for rows in reads["windows"])
    assert sum(rows for rows in reads["windows"] if rows <= 2) >= 2 * SCANS  # read-back and verification

    # The log says once why the table's batches are small; the other table's are not cut.
    told = [r.getMessage() for r in caplog.records if r.name == read_sizes.__name__]
    assert len(told) == 1 and told[0].startswith(
        "rows of scans hold up to 50 KiB: it is read 2 rows at a time"
    )

    # The sweep keeps each value it samples: two scans, against the notes' every row.
    sampled = {
        t["table"]: t["sampledRows"]
        for t in archive.sweep(record.id, confirm=True).to_json()["proof"]["tables"]
    }
    assert 0 < sampled["scans"] <= 2 and sampled["notes"] == 60

    archive.rollback(record.id, confirm=True)
    assert reads["rollback"] and max(reads["rollback"]) <= 2 and sum(reads["rollback"]) == SCANS
    assert raw_dump(archive.engine) == before


def test_batches_follow_rows_that_grow_where_the_sample_did_not_look(
    archive: MigratorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows large only in the middle of the key range, which the sample of the table's ends does
    not see: the first batch that meets them holds them all, every batch after it two; where
    they are small again, batches grow back."""
    large = _large_only_in_the_middle(archive, monkeypatch)
    batches_read: list[list[int]] = []

    def recorded(function: Any) -> Any:
        def counted(*args: Any, **kwargs: Any) -> Any:
            rows = function(*args, **kwargs)
            if rows and "report" in rows[0]:
                batches_read.append([row["id"] for row in rows])
            return rows

        return counted

    monkeypatch.setattr(batches, "fetch_dicts", recorded(batches.fetch_dicts))
    monkeypatch.setattr(batch_source, "fetch_dicts", recorded(batch_source.fetch_dicts))
    before = raw_dump(archive.engine)
    record = archive.start(
        {"batch_size": 10, "max_concurrency": 1, "data_categories": ["NON_MOTOR_SYMPTOMS"]}
    )
    assert record.status is Status.COMPLETED and record.encrypted_records == SCANS + 60
    assert batches_read[0] == list(range(1, 11))  # all the sample allowed: it met them
    assert all(len(ids) <= 2 for ids in batches_read[1:] if any(i in large for i in ids)), batches_read
    assert sorted(i for ids in batches_read for i in ids) == list(range(1, SCANS + 1))

    # The rollback's batches (each row with its backup) likewise.
    restored: list[list[int]] = []
    restore_batch = rollback.restore_batch

    def restoring(context: Any, shape: Any, entries: Any) -> Any:
        if shape.mapped.name == "scans":
            restored.append(sorted(row["id"] for row, _recorded in entries))
        return restore_batch(context, shape, entries)

    monkeypatch.setattr(rollback, "restore_batch", restoring)
    monkeypatch.setattr(rollback, "BATCH", 10)
    archive.rollback(record.id, confirm=True)
    assert restored[0] == list(range(1, 11))
    assert all(len(ids) <= 2 for ids in restored[1:] if any(i in large for i in ids)), restored
    assert raw_dump(archive.engine) == before


def test_windows_read_rows_that_grow_where_the_sample_did_not_look_a_piece_at_a_time(
    archive: MigratorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Verification and the backups' read-back read each window where they check it (in a
    worker process, which sees its rows and not the sample): rows large only in the middle of
    the key range are held PROBE_ROWS at most by a window's first piece, and by every next one
    as many as fit the budget going by the largest row of the piece before; every row is
    checked once."""
    large = _large_only_in_the_middle(archive, monkeypatch)
    # Each piece read of the scans (or of their backups): its rows' keys and its largest row.
    checked: list[tuple[list[int], int]] = []
    read_back: list[tuple[list[int], int]] = []

    def recorded(into: list[tuple[list[int], int]], function: Any) -> Any:
        def counted(connection: Any, query: sa.Select[Any], *args: Any) -> Any:
            rows = function(connection, query, *args)
            # The scans' table, or their backups' (named after it).
            if rows and "scans" in query.get_final_froms()[0].name:
                values = [list(row.values()) if isinstance(row, dict) else list(row) for row in rows]
                largest = max(sum(len(v) for v in row if isinstance(v, (str, bytes))) for row in values)
                into.append(([row[0] for row in values], largest))
            return rows

        return counted

    monkeypatch.setattr(verification, "fetch_dicts", recorded(checked, verification.fetch_dicts))
    monkeypatch.setattr(backup, "fetch_tuples", recorded(read_back, backup.fetch_tuples))
    record = archive.start(
        {"batch_size": 10, "max_concurrency": 1, "data_categories": ["NON_MOTOR_SYMPTOMS"]}
    )
    assert record.status is Status.COMPLETED, record.error_message
    assert record.verification and record.verification["passed"]
    assert record.verification["verifiedRows"] == SCANS + 60
    for pieces in (checked, read_back):
        # Each pass (the run's, and for verification the start's calibration on its sample
        # before it) begins with a first piece of PROBE_ROWS: the sample saw small rows only,
        # so one window holds every scan.
        starts = [index for index, (ids, _largest) in enumerate(pieces) if ids[0] == 1]
        assert starts and all(pieces[index][0] == [1, 2, 3, 4] for index in starts), pieces
        for (_ids, largest), (ids, _largest) in itertools.pairwise(pieces):
            if ids[0] != 1:
                assert len(ids) <= max(1, BUDGET // largest), pieces
        assert all(len(ids) <= 3 for ids, _largest in pieces if large & set(ids) and ids[0] != 1), pieces
        # The run's pass reads every scan once.
        assert [i for ids, _largest in pieces[starts[-1] :] for i in ids] == list(range(1, SCANS + 1))


def _large_only_in_the_middle(archive: MigratorService, monkeypatch: pytest.MonkeyPatch) -> set[int]:
    """The scans' first and last three rows made small, the sample three rows at each end and
    the budget two scans: the sample sees small rows only. The ids of the large scans."""
    with archive.engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE scans SET report = 'short', image = NULL WHERE id <= 3 OR id > :last"),
            {"last": SCANS - 3},
        )
    monkeypatch.setattr(read_sizes, "READ_BYTES", BUDGET)
    monkeypatch.setattr(read_sizes, "SAMPLE_ROWS", 3)
    return set(range(4, SCANS - 2))


def test_the_estimates_calibration_reads_large_rows_a_few_at_a_time_too(
    archive: MigratorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(read_sizes, "READ_BYTES", BUDGET)
    limits: dict[str, list[int]] = {}
    pending_read = batches.TableBatches.pending_read

    def recorded(self: batches.TableBatches, **options: Any) -> Any:
        limits.setdefault(self.table_name, []).append(options["limit"])
        return pending_read(self, **options)

    monkeypatch.setattr(batches.TableBatches, "pending_read", recorded)
    estimate = archive.estimate({"batch_size": 25, "data_categories": ["NON_MOTOR_SYMPTOMS"]})
    assert estimate.estimated_records == SCANS + 60
    assert limits["scans"] and max(limits["scans"]) <= 2
    assert max(limits["notes"]) > 2


@pytest.mark.backends("postgresql")
def test_any_postgresql_type_is_measured(empty_database_url: str) -> None:
    """A text or binary value by its length (not its compressed size), anything else (an
    enum, which has no length function, an interval, an address, an array) by its stored size."""
    engine = sa.create_engine(empty_database_url)
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TYPE mood AS ENUM ('calm', 'anxious')")
        connection.exec_driver_sql(
            "CREATE TABLE odd (id INTEGER PRIMARY KEY, site TEXT, feeling mood, waited INTERVAL, "
            "seen_from INET, doses INTEGER[], letter TEXT)"
        )
        connection.exec_driver_sql(
            "INSERT INTO odd VALUES (1, 'org_0', 'calm', '3 days', '10.0.0.1', '{1,2}', repeat('a', 50000))"
        )
    mapping = resolve_mapping(
        parse_mapping(
            {
                "tables": [
                    {
                        "name": "odd",
                        "category": "NON_MOTOR_SYMPTOMS",
                        "primary_key": "id",
                        "organization_column": "site",
                        "columns": ["feeling", "waited", "seen_from", "doses", "letter"],
                    }
                ]
            },
            source="test",
        ),
        engine,
        source="test",
    )
    with engine.connect() as connection:
        access = reflect(connection, mapping.table("odd"))
    largest = read_sizes.largest_row_bytes(engine, access)
    # The letter compresses to a few hundred bytes on disk; its length is what a read holds.
    assert 50_000 < largest < 50_200
    engine.dispose()
