"""The sweep (engine/sweep.py): after a migration, no plaintext of its rows is left in the raw bytes
of the database's files — proven by grepping those bytes here, independently of the sweep's own
scanner, before (it is there, so this test can fail) and after (it is gone).

A connection that keeps an old snapshot open (an application's read transaction on SQLite, an
old REPEATABLE READ transaction on PostgreSQL) keeps old row versions alive: the sweep says so
and finds them, and once that transaction ends a second sweep removes them.
"""

from __future__ import annotations

import json
import logging
import os
import pwd
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

from tests.support.databases import BOTH_BACKENDS
from tests.support.migration_helpers import FAST, exiting_at_once, wait_for
from tests.support.raw_files import file_bytes
from tui_migrator.cli.main import main
from tui_migrator.common.errors import BadInput, OperationFailed, PermissionDenied
from tui_migrator.common.settings import Settings
from tui_migrator.engine import byte_search, database_files, detached, sweep, sweep_cleaning
from tui_migrator.engine.log_files import log_path
from tui_migrator.engine.sweep import Proof
from tui_migrator.service import sweeping
from tui_migrator.service.facade import MigratorService
from tui_migrator.storage import operation_guard
from tui_migrator.storage.database import database_file, writer_turn
from tui_migrator.storage.migration_status import Status
from tui_migrator.storage.tables import migrations_table, utc_now

pytestmark = BOTH_BACKENDS
# One table is enough where the whole demo is not the point: each test stays quick.
ONE_TABLE = {**FAST, "data_categories": ["DEMOGRAPHICS"]}


@pytest.fixture(autouse=True)
def _short_checkpoint_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    """A blocked checkpoint is reported after this long instead of two seconds."""
    monkeypatch.setattr(sweep_cleaning, "CHECKPOINT_WAIT_MS", 200)


def sensitive_values(service: MigratorService) -> set[bytes]:
    """The UTF-8 bytes of every mapped text value of at least 8 bytes, read before migrating."""
    values: set[bytes] = set()
    with service.engine.connect() as connection:
        for mapped in service.mapping().tables:
            table = sa.Table(mapped.name, sa.MetaData(), autoload_with=connection)
            for column in mapped.columns:
                if not isinstance(table.c[column.name].type, sa.String):
                    continue
                for (value,) in connection.execute(sa.select(table.c[column.name])):
                    if isinstance(value, str) and len(value.encode()) >= 8:
                        values.add(value.encode())
    return values


def raw_bytes(service: MigratorService) -> dict[str, bytes]:
    """Every file holding the mapped tables' rows, read whole: SQLite's database file and -wal;
    PostgreSQL's relation files (heap, TOAST, indexes) after a CHECKPOINT."""
    if service.engine.dialect.name == "sqlite":
        database = database_file(service.engine)
        assert database is not None
        paths = [database, Path(f"{database}-wal")]
        return {str(path): file_bytes(path) for path in paths if path.exists()}
    files: dict[str, bytes] = {}
    with service.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("CHECKPOINT")
        root = Path(connection.exec_driver_sql("SHOW data_directory").scalar_one())
        for mapped in service.mapping().tables:
            relations = connection.execute(
                sa.text(
                    "SELECT pg_relation_filepath(c.oid) FROM pg_class c WHERE c.oid = CAST(:t AS regclass) "
                    "OR c.oid = (SELECT reltoastrelid FROM pg_class WHERE oid = CAST(:t AS regclass)) "
                    "OR c.oid IN (SELECT indexrelid FROM pg_index WHERE indrelid = CAST(:t AS regclass))"
                ),
                {"t": mapped.name},
            ).scalars()
            for relative in relations:
                path = root / relative
                segments = [path, *sorted(path.parent.glob(path.name + ".[0-9]*"))]
                files[str(path)] = b"".join(segment.read_bytes() for segment in segments)
    return files


def found_in(files: dict[str, bytes], values: set[bytes]) -> set[bytes]:
    return {value for value in values if any(value in data for data in files.values())}


class Application:
    """An application's own connection to the database, beside the tool's."""

    def __init__(self, service: MigratorService) -> None:
        url = service.engine.url
        self.sqlite = url.get_backend_name() == "sqlite"
        if self.sqlite:
            self.connection: Any = sqlite3.connect(str(url.database), isolation_level=None)
        else:
            self.connection = psycopg.connect(
                host=url.host, port=url.port, user=url.username, dbname=url.database
            )

    @contextmanager
    def old_snapshot(self) -> Iterator[None]:
        """A transaction that begins now (before the migration) and stays open: on SQLite a read
        transaction; on PostgreSQL a REPEATABLE READ snapshot, taken on a table the migration
        does not touch (so it locks none of the migrated ones)."""
        if self.sqlite:
            self.connection.execute("BEGIN")
            self.connection.execute("SELECT count(*) FROM demographics").fetchone()
        else:
            self.connection.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            self.connection.execute("SELECT count(*) FROM organizations").fetchone()
        try:
            yield
        finally:
            if self.sqlite:
                self.connection.execute("COMMIT")
            else:
                self.connection.rollback()

    def rows(self, table: str) -> int:
        count = self.connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        if not self.sqlite:
            self.connection.rollback()
        return int(count)

    def close(self) -> None:
        self.connection.close()


@pytest.fixture
def application(service: MigratorService) -> Iterator[Application]:
    opened = Application(service)
    yield opened
    opened.close()


def test_sweep_leaves_no_migrated_plaintext_in_the_raw_database_bytes(
    service: MigratorService, application: Application
) -> None:
    sqlite = service.engine.dialect.name == "sqlite"
    values = sensitive_values(service)
    assert len(values) > 300
    with application.old_snapshot():
        record = service.start(FAST)
        assert record.status is Status.COMPLETED
        before = found_in(raw_bytes(service), values)
        # The UPDATEs left plaintext behind: this test would notice if the sweep did not remove it.
        assert len(before) > 50
        if sqlite:
            # Swept at completion, but the open read transaction stopped it, which it says.
            status = service.sweep_status(record.id)
            assert status.swept and status.proof == Proof.FOUND.value and not status.succeeded
            assert status.command == f"tui-migrator sweep {record.id}"
            blocked = service.sweep(record.id, confirm=False)
            assert [s.name for s in blocked.steps if not s.done] == ["wal_checkpoint"]
            assert "inside a transaction" in blocked.steps[-1].detail
        else:
            status = service.sweep_status(record.id)
            assert not status.swept and status.command == f"tui-migrator sweep {record.id} --yes"
            assert "locks each table" in status.summary
            blocked = service.sweep(record.id, confirm=True)
            assert blocked.cleaned  # VACUUM FULL ran, but had to keep what the snapshot may see
            assert any("in a transaction since" in warning for warning in blocked.warnings)
        assert blocked.proof is Proof.FOUND and blocked.found_values > 0 and not blocked.succeeded
        assert found_in(raw_bytes(service), values)

    result = service.sweep(record.id, confirm=True)

    assert result.proof is Proof.CLEAN and result.succeeded, result.to_json()
    assert result.searched_values > 300 and result.found_values == 0
    assert found_in(raw_bytes(service), values) == set()
    status = service.sweep_status(record.id)
    assert status.swept and status.succeeded and status.summary.startswith("no plaintext left")
    # The application's connection stayed open through it all, and still reads.
    assert application.rows("demographics") > 0


def test_sweep_result_audit_and_log_name_no_plaintext(
    service: MigratorService,
    application: Application,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    values = sensitive_values(service)
    caplog.set_level(logging.DEBUG, logger="tui_migrator")
    with application.old_snapshot():
        record = service.start(ONE_TABLE)
        found = service.sweep(record.id, confirm=True)
    assert found.proof is Proof.FOUND
    digests = [d for table in found.tables for d in table.found_digests]
    assert digests and all(len(d) == 64 for d in digests)
    settings = service.settings
    code = main(
        [
            "sweep",
            record.id,
            "--yes",
            "--json",
            "--db",
            str(settings.database_url),
            "--data-dir",
            str(settings.data_dir),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    written = [
        json.dumps(found.to_json()),
        printed,
        caplog.text,
        json.dumps(service.report(record.id)),
        *(json.dumps(e.details) for e in service.audit_entries(limit=None).entries),
    ]
    leaked = [value for value in values for text in written if value.decode() in text]
    assert leaked == []
    swept = [
        e
        for e in service.audit_entries(limit=None, migration_id=record.id).entries
        if e.operation == "data_migration_swept"
    ]
    assert {e.success for e in swept} == {False, True}
    assert set(swept[0].details) >= {"proof", "searchedValues", "foundValues", "bytesScanned"}


def test_cli_sweep_json_and_exit_codes(
    service: MigratorService, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    where = ["--db", str(settings.database_url), "--data-dir", str(settings.data_dir), "--json"]
    record = service.start(ONE_TABLE)

    assert main(["sweep", "migration_19990101_001", *where]) == 2
    assert "no migration" in json.loads(capsys.readouterr().out)["error"]
    if service.engine.dialect.name == "postgresql":
        # VACUUM FULL locks tables: without --yes and without a terminal it is refused.
        assert main(["sweep", record.id, *where]) == 2
        assert "--yes" in json.loads(capsys.readouterr().out)["hint"]
    assert main(["sweep", record.id, "--yes", "--sample-rows", "50", *where]) == 0
    payload = json.loads(capsys.readouterr().out)
    data = payload["data"]
    assert payload["success"] is True and data["migrationId"] == record.id
    assert data["proof"]["state"] == "clean" and data["cleaned"] is True
    assert {"searchedValues", "sampledRows", "foundValues", "tables", "files", "minimumValueBytes"} <= set(
        data["proof"]
    )
    assert all(table["sampledRows"] <= 50 for table in data["proof"]["tables"])
    assert data["outOfReach"] and data["steps"]

    assert main(["status", record.id, *where]) == 0
    assert json.loads(capsys.readouterr().out)["data"]["sweep"]["swept"] is True
    assert main(["report", record.id, *where]) == 0
    report = json.loads(capsys.readouterr().out)["data"]["sweep"]
    assert report["proof"] == "clean" and report["result"]["proof"]["foundValues"] == 0
    assert report["outOfReach"]


def test_sweep_is_refused_for_a_viewer_a_dry_run_and_a_running_migration(
    service: MigratorService, settings: Settings
) -> None:
    dry = service.start({**ONE_TABLE, "dry_run": True})
    with pytest.raises(BadInput, match="dry run"):
        service.sweep(dry.id, confirm=True)
    record = service.start(ONE_TABLE)
    service.grant("bob", "viewer")
    with MigratorService.open(settings, user="bob") as bob:
        with pytest.raises(PermissionDenied):
            bob.sweep(record.id, confirm=True)
        assert bob.sweep_status(record.id)  # reading it is allowed
    denied = service.audit_entries(limit=1).entries[0]
    assert (denied.operation, denied.details["attemptedOperation"]) == ("permission_denied", "sweep")
    with (
        operation_guard.exclusive(service.engine, record.id, "rollback"),
        pytest.raises(BadInput, match="Another rollback, purge-backups or sweep"),
    ):
        service.sweep(record.id, confirm=True)
    # As a worker running it would have it: status running, heartbeat fresh.
    with service.engine.begin() as connection:
        connection.execute(
            sa.update(migrations_table)
            .where(migrations_table.c.id == record.id)
            .values(status="running", heartbeat_at=utc_now())
        )
    with pytest.raises(BadInput, match="is running; only a completed or rolled back"):
        service.sweep(record.id, confirm=True)


@pytest.mark.backends("sqlite")
def test_sqlite_sweeps_after_completion_purge_and_rollback(service: MigratorService) -> None:
    record = service.start(ONE_TABLE)
    first = service.sweep_status(record.id)
    assert first.swept and first.succeeded
    service.purge_backups(record.id, confirm=True)
    purged = service.sweep_status(record.id)
    assert purged.swept and purged.succeeded and purged.swept_at and purged.swept_at > first.swept_at  # type: ignore[operator]
    service.rollback(record.id, confirm=True)
    rolled_back = service.sweep_status(record.id)
    assert rolled_back.swept and rolled_back.proof == Proof.NOT_APPLICABLE.value and rolled_back.succeeded
    operations = [e.operation for e in service.audit_entries(limit=None, migration_id=record.id).entries]
    assert operations.count("data_migration_swept") == 3


def test_a_background_sweep_returns_once_it_runs_or_says_its_process_never_began(
    service: MigratorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``sweep_in_background`` (the monitor's ``s``) returns once its detached process holds the
    migration's guard or has swept; a process gone before that is an error naming its log and
    the command, and nothing was swept."""
    service.grant(pwd.getpwuid(os.geteuid()).pw_name, "super_admin")
    record = service.start(ONE_TABLE)
    swept_before = service.sweep_status(record.id).swept_at

    with monkeypatch.context() as patched:
        patched.setattr(detached, "spawn", exiting_at_once)
        with pytest.raises(OperationFailed, match=r"sweep of .* exited \(code 3\) before it began") as raised:
            service.sweep_in_background(record.id, confirm=True)
    assert str(log_path(service.settings, record.id)) in str(raised.value.hint)
    assert f"tui-migrator sweep {record.id}" in str(raised.value.hint)
    unswept = service.sweep_status(record.id)
    assert unswept.swept_at == swept_before and not unswept.running

    service.sweep_in_background(record.id, confirm=True)
    # Begun when it returned: running now, or swept already.
    begun = service.sweep_status(record.id)
    assert begun.running or begun.swept_at != swept_before
    wait_for(lambda: not service.sweep_status(record.id).running, timeout=120)
    wait_for(lambda: service.sweep_status(record.id).swept_at != swept_before, timeout=10)
    assert service.sweep_status(record.id).succeeded


def test_a_rollback_forgets_the_sweep_with_the_change_not_after_it(
    service: MigratorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = service.start(ONE_TABLE)
    service.sweep(record.id, confirm=True)
    assert service.sweep_status(record.id).summary.startswith("no plaintext left")
    # As if the rollback's process died right after recording it, before anything ran after.
    monkeypatch.setattr(sweeping, "after_change", lambda *_args, **_options: None)

    service.rollback(record.id, confirm=True)

    status = service.sweep_status(record.id)
    assert not status.swept and status.proof is None
    assert status.summary == "not needed: rolled back, its values are plaintext again"


def test_a_database_failure_after_a_completed_rollback_leaves_its_outcome_standing(
    service: MigratorService, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    record = service.start(ONE_TABLE)

    def server_gone(*_args: Any) -> None:
        raise sa.exc.OperationalError("SELECT", {}, Exception("server closed the connection"))

    monkeypatch.setattr(sweeping, "migrations", SimpleNamespace(load=server_gone))

    rolled_back, result = service.rollback(record.id, confirm=True)

    assert result.restored_rows > 0
    assert rolled_back.status is Status.ROLLED_BACK
    assert f"the sweep of migration {record.id} failed; run: tui-migrator sweep {record.id}" in caplog.text


@pytest.mark.backends("postgresql")
def test_postgresql_proof_reads_through_the_server_or_says_not_proven(
    service: MigratorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = service.start(ONE_TABLE)
    # As if the server ran on another machine: the files are read with pg_read_binary_file.
    monkeypatch.setattr(database_files, "_direct_problem", lambda *_args: "the server runs elsewhere")
    through_server = service.sweep(record.id, confirm=True)
    assert through_server.proof is Proof.CLEAN
    assert all("read by the server" in finding.name for finding in through_server.files)
    # And without that privilege either: never "clean".
    monkeypatch.setattr(database_files, "_server_read_problem", lambda *_args: "no privilege")
    unproven = service.sweep(record.id, confirm=True)
    assert unproven.proof is Proof.NOT_PROVEN and not unproven.succeeded
    assert "the server runs elsewhere" in unproven.reason and "pg_read_server_files" in unproven.reason
    assert service.sweep_status(record.id).summary.startswith("not proven: ")


def test_values_that_are_also_live_data_are_not_counted_as_left_behind(service: MigratorService) -> None:
    # A patient's address also lives, in plaintext, in a column no migration encrypts.
    with service.engine.begin() as connection:
        connection.exec_driver_sql(
            "UPDATE demographics SET sex = address WHERE id = (SELECT min(id) FROM demographics)"
        )
    record = service.start(ONE_TABLE)
    result = service.sweep(record.id, confirm=True)
    # On SQLite the whole file is searched, where the other categories' tables, not migrated,
    # hold more copies (patients' surnames in their contacts' names, for one).
    live = result.tables[0].live_values
    assert live >= 1 and result.to_json()["proof"]["tables"][0]["skippedLiveValues"] == live
    assert result.proof is Proof.CLEAN and result.found_values == 0


@pytest.mark.backends("sqlite")
def test_sqlite_takes_the_sample_while_vacuum_runs(
    service: MigratorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The proof's sample is read in a thread of its own while VACUUM runs, after the first
    checkpoint, and has ended before the second (which a reader in a transaction would stop);
    the search's automaton is built there too, not after VACUUM. The proof is the same."""
    record = service.start(ONE_TABLE)
    events: list[tuple[str, str]] = []

    def traced(name: str, function: Any) -> Any:
        def run(*arguments: Any, **keywords: Any) -> Any:
            events.append((f"{name} begins", threading.current_thread().name))
            try:
                return function(*arguments, **keywords)
            finally:
                events.append((f"{name} ends", threading.current_thread().name))

        return run

    monkeypatch.setattr(sweep_cleaning, "_checkpoint", traced("checkpoint", sweep_cleaning._checkpoint))
    monkeypatch.setattr(sweep_cleaning, "_vacuum", traced("vacuum", sweep_cleaning._vacuum))
    monkeypatch.setattr(sweep, "_take_sample", traced("sample", sweep._take_sample))
    built_in: list[str] = []
    real_automaton = byte_search.Needles.automaton

    def automaton(self: byte_search.Needles) -> Any:
        if self._automaton is None:
            built_in.append(threading.current_thread().name)
        return real_automaton(self)

    monkeypatch.setattr(byte_search.Needles, "automaton", automaton)

    result = service.sweep(record.id, confirm=True)

    assert result.proof is Proof.CLEAN and result.succeeded, result.to_json()
    names = [name for name, _thread in events]
    assert names[:2] == ["checkpoint begins", "checkpoint ends"]
    assert names[-2:] == ["checkpoint begins", "checkpoint ends"]
    assert set(names[2:-2]) == {"vacuum begins", "vacuum ends", "sample begins", "sample ends"}
    sampled_in = {thread for name, thread in events if name.startswith("sample")}
    assert len(sampled_in) == 1 and sampled_in != {threading.current_thread().name}
    # The first automaton is the sample's (another is built only to tell live copies apart).
    assert built_in[:1] == list(sampled_in)


def _log_frames_and_copied(database: Path) -> tuple[int, int]:
    """From the write-ahead log's shared index (the -shm file): the frames the log holds
    (mxFrame of the index header) and how many of them a checkpoint copied back (nBackfill of
    the checkpoint information after the header's two copies), both native-endian."""
    index = file_bytes(database.parent / f"{database.name}-shm")
    return int.from_bytes(index[16:20], sys.byteorder), int.from_bytes(index[96:100], sys.byteorder)


@pytest.mark.backends("sqlite")
def test_the_sweeps_checkpoints_run_apart_from_this_processs_commits(
    service: MigratorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite's WAL-reset bug (storage/sqlite_library.py) needs a checkpoint right after a
    complete one while another connection's commit resets the log. Each of the sweep's
    checkpoints holds this process's writer turn, so none of its writers can commit meanwhile;
    and VACUUM does not checkpoint its own log on commit (the second checkpoint, in the turn,
    copies it back), after which the connection's automatic checkpoints are as they were.
    Observed on a rollback's sweep: without a sample read meanwhile (it keeps an automatic
    checkpoint from copying anything) VACUUM's commit would copy its log back."""
    record = service.start(ONE_TABLE)
    engine = service.engine
    database = database_file(engine)
    assert database is not None
    turn_free_during_checkpoint: list[bool] = []
    after_vacuum: list[tuple[int, int, int, int]] = []

    def turn_is_free() -> None:
        turn = writer_turn(engine)
        assert isinstance(turn, type(threading.RLock()))
        taken = turn.acquire(blocking=False)
        if taken:
            turn.release()
        turn_free_during_checkpoint.append(taken)

    def checkpoint(connection: sqlite3.Connection, path: Path) -> sweep_cleaning.Step:
        elsewhere = threading.Thread(target=turn_is_free)
        elsewhere.start()
        elsewhere.join()
        return real_checkpoint(connection, path)

    def vacuum(connection: sqlite3.Connection, path: Path) -> sweep_cleaning.Step:
        # A checkpoint on every commit (the demo is smaller than the default's 1000 pages).
        connection.execute("PRAGMA wal_autocheckpoint = 1")
        step = real_vacuum(connection, path)
        frames, copied = _log_frames_and_copied(path)
        automatic = connection.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
        pages = connection.execute("PRAGMA page_count").fetchone()[0]
        after_vacuum.append((frames, copied, pages, automatic))
        return step

    real_checkpoint, real_vacuum = sweep_cleaning._checkpoint, sweep_cleaning._vacuum
    monkeypatch.setattr(sweep_cleaning, "_checkpoint", checkpoint)
    monkeypatch.setattr(sweep_cleaning, "_vacuum", vacuum)

    service.rollback(record.id, confirm=True)

    swept = service.sweep_status(record.id)
    assert swept.swept and swept.succeeded and swept.proof == Proof.NOT_APPLICABLE.value
    assert turn_free_during_checkpoint == [False, False]
    [(frames, copied, pages, automatic)] = after_vacuum
    # Every page VACUUM wrote is in the log, none copied back yet; the setting restored.
    assert frames >= pages > 0 and copied == 0
    assert automatic == 1


@pytest.mark.backends("sqlite")
def test_after_a_sweep_this_process_still_holds_its_sqlite_locks(service: MigratorService) -> None:
    """The proof reads the database file in a child process (engine/database_files.raw_chunks):
    had this process read it and closed it, its connections would have lost their shared lock,
    and an application's process closing its last connection would take itself for the last
    one anywhere and delete the log under them. Here the application's process closes and the
    log stays, and what it committed is there."""
    database = database_file(service.engine)
    assert database is not None
    record = service.start(ONE_TABLE)  # its sweep runs here, after completion
    assert service.sweep_status(record.id).succeeded
    with service.engine.connect() as connection:  # a connection of this process, pooled after
        connection.exec_driver_sql("SELECT count(*) FROM tm_migrations").scalar_one()
    application = (
        "import sqlite3, sys\n"
        "connection = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "connection.execute('CREATE TABLE application_notes (note TEXT)')\n"
        "connection.execute(\"INSERT INTO application_notes VALUES ('kept')\")\n"
        "connection.close()\n"
    )
    subprocess.run([sys.executable, "-c", application, str(database)], check=True)
    assert Path(f"{database}-wal").exists() and Path(f"{database}-shm").exists()
    with service.engine.connect() as connection:
        notes = connection.exec_driver_sql("SELECT note FROM application_notes").scalars().all()
    assert notes == ["kept"]


def test_without_a_log_nothing_runs_beside_vacuum(tmp_path: Path) -> None:
    """Without a write-ahead log VACUUM and a reader lock each other out: what was to run
    meanwhile does not (the sweep then takes its sample after the cleaning)."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'journal.db'}")
    with engine.begin() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "delete"
        connection.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, note TEXT)")
    ran: list[str] = []
    steps = sweep_cleaning.clean_sqlite(engine, tmp_path / "journal.db", meanwhile=lambda: ran.append("ran"))
    engine.dispose()
    assert [step.name for step in steps] == ["secure_delete", "vacuum"] and all(step.done for step in steps)
    assert ran == []


def test_a_migration_started_to_sweep_later_is_left_unswept_until_the_operator_sweeps(
    service: MigratorService,
) -> None:
    sqlite = service.engine.dialect.name == "sqlite"
    values = sensitive_values(service)

    record = service.start({**FAST, "sweep_later": True})

    assert record.status is Status.COMPLETED and record.config.sweep_later
    status = service.sweep_status(record.id)
    assert not status.swept and status.proof is None
    started = service.audit_entries(limit=None, migration_id=record.id).entries[-1]
    assert started.operation == "data_migration_started" and started.details["sweepLater"] is True
    if sqlite:
        # Nothing ran at completion: what the UPDATEs left is still in the files.
        assert found_in(raw_bytes(service), values)
        assert status.command == f"tui-migrator sweep {record.id}"
        assert status.summary.startswith("not swept: put off at start")
        assert any("sweep is put off" in warning for warning in record.warnings)
        # The dashboard's first recommendation until it is swept.
        assert service.health().recommendations[0].startswith(f"Sweep {record.id}: its sweep was put off")
    else:
        # PostgreSQL's sweep is the operator's whatever the setting: it says so as ever.
        assert status.summary.startswith("not swept: run") and "locks each table" in status.summary
        assert not any("sweep is put off" in warning for warning in record.warnings)

    result = service.sweep(record.id, confirm=True)

    assert result.proof is Proof.CLEAN and result.succeeded, result.to_json()
    assert found_in(raw_bytes(service), values) == set()
    assert not any(line.startswith("Sweep ") for line in service.health().recommendations)
    if sqlite:
        # Put off is the completion's sweep only: a purge's runs as the purge ends.
        swept = service.sweep_status(record.id).swept_at
        service.purge_backups(record.id, confirm=True)
        purged = service.sweep_status(record.id)
        assert purged.swept and purged.succeeded and purged.swept_at > swept  # type: ignore[operator]
