"""The sweep: remove the plaintext a finished migration left in the database's files, then prove it.

Encrypting in place with UPDATE leaves each row's old version behind until its space is reused
(see sweep_cleaning.py for what is removed and how). The proof does not trust the cleaning: it
opens the tokens of a sample of migrated rows in memory (sweep_sample.py) and searches the raw
bytes of the database's files for them (database_files.py, byte_search.py). It reports counts
per table and per file, and found values only by keyed digest. Where the files cannot be read,
or nothing could be searched for, the answer is "not proven" with the reason — never "clean".

What no sweep can reach (copies, snapshots, WAL archives, replicas, backups) is part of every
result, so the completion report hands it to the operator.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, NamedTuple

from sqlalchemy.engine import Engine

from tui_migrator.common.cores import usable_cores
from tui_migrator.crypto.ciphers import ValueCipher
from tui_migrator.engine import byte_search, database_files, read_sizes, sweep_cleaning, sweep_sample
from tui_migrator.engine.database_files import FilesUnreachable, RawFile
from tui_migrator.engine.sweep_cleaning import Step
from tui_migrator.engine.sweep_sample import PlaintextSample, TableSample
from tui_migrator.storage.column_storage import reflect
from tui_migrator.storage.database import database_file
from tui_migrator.storage.mapping import ResolvedMapping
from tui_migrator.storage.migration_records import MigrationRecord
from tui_migrator.storage.migration_status import Status
from tui_migrator.storage.tables import utc_now

OUT_OF_REACH = {
    "sqlite": [
        "copies of the database file made outside this tool (backups, cp, rsync, replication such as Litestream) before the sweep",
        "file-system and volume snapshots (ZFS, btrfs, LVM, cloud disk snapshots) taken before the sweep",
        "disk blocks the file system freed when the files shrank: the disk may keep them until they are overwritten (full-disk encryption covers this)",
        "the page caches of applications' own connections, and swap",
    ],
    "postgresql": [
        "WAL segments still in pg_wal, and every WAL archive (archive_command, pgBackRest, Barman, WAL-G): they carried the old rows",
        "replicas: standbys replay the VACUUM FULL but keep the WAL that carried the old rows; logical subscribers keep their own old row versions until VACUUM FULL runs there",
        "base backups and pg_dump files taken before the sweep",
        "disk blocks of the old relation files, which the file system freed but the disk may keep (full-disk encryption covers this), and file-system or volume snapshots",
        "server logs, if statements with values were logged (log_statement, auto_explain)",
    ],
}


class Proof(StrEnum):
    CLEAN = "clean"  # none of the sampled values is in the files
    FOUND = "found"  # some are
    NOT_PROVEN = "not_proven"  # the files could not be read, or nothing could be searched for
    NOT_APPLICABLE = "not_applicable"  # rolled back: the values are plaintext again by design


@dataclass(frozen=True)
class FileFinding:
    name: str
    bytes_read: int
    values_found: int

    def to_json(self) -> dict[str, Any]:
        return {"file": self.name, "bytesScanned": self.bytes_read, "valuesFound": self.values_found}


@dataclass
class SweepResult:
    migration_id: str
    backend: str
    automatic: bool
    swept_at: datetime
    steps: list[Step] = field(default_factory=list)
    proof: Proof = Proof.NOT_PROVEN
    reason: str = ""
    tables: list[TableSample] = field(default_factory=list)
    files: list[FileFinding] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def cleaned(self) -> bool:
        """Every cleaning step did its work."""
        return all(step.done for step in self.steps)

    @property
    def succeeded(self) -> bool:
        """Cleaned and proven clean (or nothing to prove): the exit code 0 of ``sweep``."""
        return self.cleaned and self.proof in (Proof.CLEAN, Proof.NOT_APPLICABLE)

    @property
    def searched_values(self) -> int:
        return sum(table.searched_values for table in self.tables)

    @property
    def found_values(self) -> int:
        return sum(table.found_values for table in self.tables)

    def to_json(self) -> dict[str, Any]:
        return {
            "migrationId": self.migration_id,
            "backend": self.backend,
            "automatic": self.automatic,
            "sweptAt": self.swept_at.isoformat().replace("+00:00", "Z"),
            "succeeded": self.succeeded,
            "cleaned": self.cleaned,
            "steps": [step.to_json() for step in self.steps],
            "proof": {
                "state": self.proof.value,
                "reason": self.reason,
                "minimumValueBytes": byte_search.MIN_BYTES,
                "sampledRows": sum(table.sampled_rows for table in self.tables),
                "searchedValues": self.searched_values,
                "foundValues": self.found_values,
                "tables": [table.to_json() for table in self.tables],
                "files": [finding.to_json() for finding in self.files],
            },
            "warnings": self.warnings,
            "outOfReach": OUT_OF_REACH.get(self.backend, []),
            "durationSeconds": round(self.seconds, 3),
        }

    def audit_details(self) -> dict[str, Any]:
        """Counts only, for the audit trail."""
        return {
            "automatic": self.automatic,
            "proof": self.proof.value,
            "cleaned": self.cleaned,
            "failedSteps": [step.name for step in self.steps if not step.done],
            "sampledRows": sum(table.sampled_rows for table in self.tables),
            "searchedValues": self.searched_values,
            "foundValues": self.found_values,
            "filesScanned": len(self.files),
            "bytesScanned": sum(finding.bytes_read for finding in self.files),
            "durationSeconds": round(self.seconds, 3),
        }


def sweep(
    engine: Engine,
    record: MigrationRecord,
    mapping: ResolvedMapping,
    cipher: ValueCipher,
    *,
    automatic: bool,
    rows_per_table: int = sweep_sample.DEFAULT_ROWS_PER_TABLE,
) -> SweepResult:
    """Clean the files of ``record``'s tables, then search them for a sample of its plaintext."""
    started = time.perf_counter()
    result = SweepResult(record.id, engine.dialect.name, automatic, utc_now())
    tables = [progress.name for progress in record.tables]
    files: list[RawFile] = []
    unreachable: str | None = None
    # Taken while SQLite's VACUUM runs (it reads only live values, which VACUUM keeps as they
    # are), or else after the cleaning.
    sampled: list[Sampled] = []
    if engine.dialect.name == "sqlite":
        database = database_file(engine)
        if database is None:
            unreachable = "an in-memory database has no files to sweep"
        else:

            def take_sample() -> None:
                sampled.append(_take_sample(engine, record, mapping, cipher, rows_per_table))

            # A rolled-back migration proves nothing (see _prove): no sample to take.
            meanwhile = None if record.status is Status.ROLLED_BACK else take_sample
            result.steps = sweep_cleaning.clean_sqlite(engine, database, meanwhile=meanwhile)
            files = database_files.sqlite_files(database)
    else:
        ended = record.rolled_back_at or record.completed_at
        with engine.connect() as connection:
            result.warnings += [
                f"{holder}: VACUUM FULL keeps the row versions it may still see"
                for holder in sweep_cleaning.old_transactions(connection, ended)
            ]
        result.steps = sweep_cleaning.clean_postgresql(engine, tables)
        try:
            with engine.connect() as connection:
                relations = [
                    r for table in tables for r in database_files.postgresql_relations(connection, table)
                ]
            files = database_files.postgresql_files(engine, relations)
        except FilesUnreachable as error:
            unreachable = str(error)

    def the_sample() -> Sampled:
        return sampled[0] if sampled else _take_sample(engine, record, mapping, cipher, rows_per_table)

    _prove(engine, record, the_sample, files, unreachable, result)
    result.seconds = time.perf_counter() - started
    return result


class Sampled(NamedTuple):
    """The proof's sample of plaintext, and the text encoding of the database it was taken in
    (None: one the sweep cannot search; then there is no sample)."""

    encoding: str | None
    sample: PlaintextSample | None


def _take_sample(
    engine: Engine,
    record: MigrationRecord,
    mapping: ResolvedMapping,
    cipher: ValueCipher,
    rows_per_table: int,
) -> Sampled:
    with engine.connect() as connection:
        encoding = sweep_sample.text_encoding(connection)
        if encoding is None:
            return Sampled(None, None)
        sample = PlaintextSample()
        for progress in record.tables:
            access = reflect(connection, mapping.table(progress.name))
            # The sample keeps each value it searches for: fewer rows where they are large.
            rows = read_sizes.rows_per_read(engine, access, rows_per_table)
            sweep_sample.sample_table(connection, access, cipher, sample, rows=rows, encoding=encoding)
    if sample.searched_values:
        # Built here, where the sample is taken while SQLite's VACUUM runs, rather than on the
        # search's first buffer after it: 0.2 s for a sample of six text columns.
        sample.needles.automaton()
    return Sampled(encoding, sample)


def _prove(
    engine: Engine,
    record: MigrationRecord,
    sample_of: Callable[[], Sampled],
    files: list[RawFile],
    unreachable: str | None,
    result: SweepResult,
) -> None:
    """``sample_of``: the proof's sample (asked for only where there is something to prove)."""
    if record.status is Status.ROLLED_BACK:
        result.proof = Proof.NOT_APPLICABLE
        result.reason = (
            "The migration was rolled back: its values are plaintext in the tables again, so there "
            "is nothing to prove; the sweep removed the old row versions."
        )
        return
    if unreachable is not None:
        result.proof, result.reason = Proof.NOT_PROVEN, f"Not proven: {unreachable}."
        return
    encoding, sample = sample_of()
    if encoding is None or sample is None:
        result.proof = Proof.NOT_PROVEN
        result.reason = "Not proven: the database stores text in an encoding the sweep cannot search."
        return
    result.tables = sample.tables
    if not sample.searched_values:
        result.proof = Proof.NOT_PROVEN
        result.reason = (
            "Not proven: no sampled value could be searched for (only text values of at least "
            f"{byte_search.MIN_BYTES} bytes can be told apart from other bytes in a file)."
        )
        return
    # The search is CPU work over every byte of the files: every core takes part.
    threads = usable_cores()
    found_in = {raw.name: byte_search.search(sample.needles, raw.read(), threads=threads) for raw in files}
    found = set().union(*(findings.found_values(sample.needles) for findings in found_in.values()))
    # SQLite's one file holds every table; PostgreSQL's files searched hold the migrated ones.
    searched_tables = None if engine.dialect.name == "sqlite" else [t.name for t in record.tables]
    live = _live(engine, sample, found, encoding, searched_tables)
    for name, findings in found_in.items():
        left = findings.found_values(sample.needles) - live
        result.files.append(FileFinding(name, findings.bytes_read, len(left)))
    for number in sorted(found):
        table, digest, _value = sample.owners[number]
        if number in live:
            table.live_values += 1
            table.searched_values -= 1
        else:
            table.found_digests.append(digest)
    _conclude(result, sample.searched_values - len(live), len(found - live))


def _live(
    engine: Engine, sample: PlaintextSample, found: set[int], encoding: str, tables: list[str] | None
) -> set[int]:
    """Which of the values found are also live data (see sweep_sample.live_copies)."""
    if not found:
        return set()
    numbers = sorted(found)
    with engine.connect() as connection:
        copies = sweep_sample.live_copies(
            connection, [sample.owners[n][2] for n in numbers], encoding, tables
        )
    return {numbers[position] for position in copies}


def _conclude(result: SweepResult, searched: int, found: int) -> None:
    scanned = f"{len(result.files)} files ({sum(f.bytes_read for f in result.files):,} bytes)"
    failed = [step for step in result.steps if not step.done]
    if found:
        where = ", ".join(f"{f.name}: {f.values_found}" for f in result.files if f.values_found)
        causes = [step.detail for step in failed] + result.warnings
        result.proof = Proof.FOUND
        result.reason = f"{found} of {searched} sampled values were found in the raw bytes ({where})." + (
            f" Why: {' '.join(causes)}" if causes else ""
        )
        return
    unflushed = [step for step in failed if step.name == "checkpoint" and result.backend == "postgresql"]
    if unflushed:
        result.proof = Proof.NOT_PROVEN
        result.reason = (
            f"Not proven: none of {searched} sampled values was found in {scanned}, but {unflushed[0].detail}"
        )
        return
    result.proof = Proof.CLEAN
    result.reason = f"None of {searched} sampled values was found in {scanned}."
