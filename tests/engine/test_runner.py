"""The migration engine on the demo database: complete, roll back, dry run, incremental,
failures, pause, cancel and resume — every path that writes data proves the original comes back."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests.support.databases import BOTH_BACKENDS
from tests.support.migration_helpers import (
    FAST,
    Background,
    assert_fully_encrypted,
    latest,
    latest_is,
    raw_dump,
    wait_for,
)
from tui_migrator.common.errors import BadInput, InvalidMigrationConfig, PermissionDenied
from tui_migrator.crypto.codec import UnsupportedValue
from tui_migrator.engine import batch_source, cpu_pool
from tui_migrator.engine import batches as batches_module
from tui_migrator.engine import estimate as estimating
from tui_migrator.engine import runner as runner_module
from tui_migrator.engine.retry import RetryPolicy
from tui_migrator.reader import RecordReader
from tui_migrator.service.facade import MigratorService
from tui_migrator.storage.migration_status import Status

pytestmark = BOTH_BACKENDS


def test_no_plaintext_copy_of_sensitive_values_stays_anywhere_in_the_database(
    service: MigratorService,
) -> None:
    mapping = service.mapping()
    sensitive: set[bytes] = set()
    with service.engine.connect() as connection:
        for mapped in mapping.tables:
            for column in mapped.columns:
                for (value,) in connection.exec_driver_sql(f'SELECT "{column.name}" FROM "{mapped.name}"'):
                    if isinstance(value, str) and len(value.encode()) >= 8:
                        sensitive.add(value.encode())
    assert len(sensitive) > 100
    record = service.start(FAST)
    assert record.status is Status.COMPLETED
    # Everywhere a copy could hide: the tool's tables (backups, metadata, audit, failures) and
    # the mapped columns with their companions. Other columns hold plaintext by design.
    queries = [
        f'SELECT * FROM "{name}"'
        for name in sa.inspect(service.engine).get_table_names()
        if name.startswith("tm_")
    ]
    for mapped in mapping.tables:
        names = [f'"{c.name}"' for c in mapped.columns] + [
            f'"{c.companion}"' for c in mapped.columns if c.companion
        ]
        queries.append(f'SELECT {", ".join(names)} FROM "{mapped.name}"')
    stored: list[bytes] = []
    with service.engine.connect() as connection:
        for query in queries:
            for row in connection.exec_driver_sql(query):
                stored += [v if isinstance(v, bytes) else str(v).encode() for v in row if v is not None]
    haystack = b"\x00".join(stored)
    leaked = [value for value in sensitive if value in haystack]
    assert leaked == []


def test_dry_run_writes_nothing_to_data_or_backups(service: MigratorService) -> None:
    before = raw_dump(service.engine)
    tables_before = set(sa.inspect(service.engine).get_table_names())
    record = service.start({**FAST, "dry_run": True})
    assert record.status is Status.COMPLETED and record.dry_run
    assert record.encrypted_records == record.total_records  # would encrypt
    assert raw_dump(service.engine) == before
    assert set(sa.inspect(service.engine).get_table_names()) == tables_before
    with pytest.raises(BadInput, match="dry run"):
        service.rollback(record.id, confirm=True)


def test_incremental_run_migrates_only_rows_added_since(service: MigratorService) -> None:
    first = service.start(FAST)
    with service.engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO demographics (id, patient_id, organization_id, sex, updated_at, first_name, last_name, notes) "
            "VALUES (900001, 1, 'org_charite_berlin', 'female', '2026-01-01 00:00:00.000000', 'Zoë', 'Ærøe', 'added after the first run')"
        )
    second = service.start(FAST)
    assert second.status is Status.COMPLETED
    assert second.total_records == 1 and second.encrypted_records == 1
    assert second.skipped_records == first.total_records
    with service.engine.connect() as connection:
        stored = connection.exec_driver_sql(
            "SELECT first_name FROM demographics WHERE id = 900001"
        ).scalar_one()
    reader = RecordReader.for_service(service)
    assert (
        reader.read_value(
            stored,
            table="demographics",
            column="first_name",
            primary_key=900001,
            organization_id="org_charite_berlin",
        )
        == "Zoë"
    )
    # Rolling back the incremental run restores only its own row.
    service.rollback(second.id, confirm=True)
    with service.engine.connect() as connection:
        assert (
            connection.exec_driver_sql("SELECT first_name FROM demographics WHERE id = 900001").scalar_one()
            == "Zoë"
        )
        assert (
            connection.exec_driver_sql("SELECT first_name FROM demographics WHERE id = 1")
            .scalar_one()
            .startswith("tmenc:")
        )


def test_per_record_failure_is_recorded_without_values_and_resume_retries_it(
    service: MigratorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = raw_dump(service.engine)
    real_seal = batches_module.seal_row

    def failing_seal(access, row, cipher):  # type: ignore[no-untyped-def]
        if access.mapped.name == "motor_symptoms" and row["id"] in (3, 4):
            raise UnsupportedValue("values of type Exotic cannot be encrypted exactly")
        return real_seal(access, row, cipher)

    monkeypatch.setattr(batches_module, "seal_row", failing_seal)
    # One batch at a time seals in this process, where the patch is (worker processes have the
    # real seal_row).
    record = service.start({**FAST, "max_concurrency": 1})
    assert record.status is Status.COMPLETED
    assert record.failed_records == 2
    failed = service.failed_records(record.id)
    assert [(f["table_name"], f["key_display"]) for f in failed] == [
        ("motor_symptoms", "3"),
        ("motor_symptoms", "4"),
    ]
    assert "Exotic" in failed[0]["reason"]
    assert record.verification and record.verification["failedRows"] == 2 and record.verification["passed"]

    monkeypatch.setattr(batches_module, "seal_row", real_seal)
    resumed = service.resume(record.id)
    assert resumed.status is Status.COMPLETED and resumed.failed_records == 0
    assert_fully_encrypted(service, service.mapping(), before)
    service.rollback(record.id, confirm=True)
    assert raw_dump(service.engine) == before


def test_database_failure_mid_run_fails_loudly_then_resume_finishes(
    service: MigratorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = raw_dump(service.engine)
    service.retry_policy = RetryPolicy(attempts=2, first_delay=0.01)
    real_write = batches_module.TableBatches.write_in
    calls = {"n": 0}

    def broken_write(self, connection, *args, **kwargs):  # type: ignore[no-untyped-def]
        # The run's writes only: a start's calibration writes its sample too (rolled back).
        ours = self.migration_id != estimating.CALIBRATION_MIGRATION_ID
        if self.access.mapped.name == "non_motor_symptoms" and not self.dry_run and ours:
            calls["n"] += 1
            if calls["n"] > 1:
                raise sa.exc.OperationalError("UPDATE", {}, Exception("disk I/O error"))
        return real_write(self, connection, *args, **kwargs)

    monkeypatch.setattr(batches_module.TableBatches, "write_in", broken_write)
    record = service.start(FAST)
    assert record.status is Status.FAILED
    assert "non_motor_symptoms" in (record.error_message or "") and "disk I/O error" in (
        record.error_message or ""
    )
    assert 0 < record.encrypted_records < record.total_records
    assert record.can_rollback

    monkeypatch.setattr(batches_module.TableBatches, "write_in", real_write)
    resumed = service.resume(record.id)
    assert resumed.status is Status.COMPLETED
    assert resumed.encrypted_records == resumed.total_records
    assert assert_fully_encrypted(service, service.mapping(), before) == resumed.total_records
    service.rollback(record.id, confirm=True)
    assert raw_dump(service.engine) == before


def test_pause_then_continue(service: MigratorService, monkeypatch: pytest.MonkeyPatch) -> None:
    _slow_batches(monkeypatch)
    running = Background(lambda: service.start({"batch_size": 20, "max_concurrency": 1}))
    wait_for(latest_is(service, lambda r: r.status is Status.RUNNING and r.encrypted_records > 0))
    migration_id = latest(service).id
    service.pause(migration_id)
    wait_for(lambda: service.status(migration_id).stored_status is Status.PAUSED)
    frozen = service.status(migration_id).encrypted_records
    import time

    time.sleep(0.6)
    paused = service.status(migration_id)
    assert paused.encrypted_records == frozen and paused.worker_alive  # heartbeat kept while paused
    service.continue_(migration_id)
    record = running.join()
    assert record.status is Status.COMPLETED
    assert record.paused_seconds >= 0.5
    operations = [e.operation for e in service.audit_entries(limit=None, migration_id=migration_id).entries]
    assert "data_migration_paused" in operations and "data_migration_continued" in operations


def test_cancel_then_resume_encrypts_nothing_twice(
    service: MigratorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = raw_dump(service.engine)
    _slow_batches(monkeypatch)
    running = Background(lambda: service.start({"batch_size": 20, "max_concurrency": 2}))
    wait_for(latest_is(service, lambda r: r.encrypted_records > 40))
    migration_id = latest(service).id
    cancelled = service.cancel(migration_id, "Emergency maintenance required")
    assert running.join().status is Status.CANCELLED
    assert cancelled.status is Status.CANCELLED
    partial = service.status(migration_id)
    assert 0 < partial.encrypted_records < partial.total_records
    assert partial.cancel_reason == "Emergency maintenance required"

    monkeypatch.undo()
    resumed = service.resume(migration_id)
    assert resumed.status is Status.COMPLETED
    assert resumed.encrypted_records == resumed.total_records
    # A value encrypted twice would open to a token, not to the original.
    assert assert_fully_encrypted(service, service.mapping(), before) == resumed.total_records


def test_second_migration_over_the_same_tables_is_refused(
    service: MigratorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    _slow_batches(monkeypatch)
    running = Background(lambda: service.start({"batch_size": 20, "max_concurrency": 1}))
    wait_for(latest_is(service, lambda r: r.status is Status.RUNNING))
    with pytest.raises(BadInput, match="is held by migration"):
        service.start(FAST)
    service.cancel(latest(service).id, "test over")
    running.join()
    with pytest.raises(BadInput, match="is held by migration"):  # a cancelled one still holds them
        service.start(FAST)


def test_rows_without_organization_are_refused_before_any_write(service: MigratorService) -> None:
    _bypassing_foreign_keys(
        service, "UPDATE emergency_contacts SET organization_id = '' WHERE patient_id <= 3"
    )
    before = raw_dump(service.engine)
    with pytest.raises(
        BadInput,
        match=r"emergency_contacts: \d+ rows with NULL or empty 'organization_id'.*default_organization",
    ):
        service.start(FAST)
    assert raw_dump(service.engine) == before
    assert service.list_migrations()[1] == []


def test_viewer_cannot_start_cancel_or_roll_back(service: MigratorService, settings) -> None:  # type: ignore[no-untyped-def]
    record = service.start(FAST)
    service.grant("bob", "viewer")
    with MigratorService.open(settings, user="bob") as bob:
        assert bob.status(record.id).status is Status.COMPLETED
        for attempt in (
            lambda: bob.start(FAST),
            lambda: bob.rollback(record.id, confirm=True),
            lambda: bob.cancel(record.id, "no"),
            lambda: bob.purge_backups(record.id, confirm=True),
        ):
            with pytest.raises(PermissionDenied):
                attempt()
    denials = [e for e in service.audit_entries(limit=None).entries if e.operation == "permission_denied"]
    assert len(denials) == 4


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"batch_size": 0}, "--batch-size: must be from 1 to 1000"),
        ({"batch_size": 1001}, "--batch-size"),
        ({"max_concurrency": 11}, "--max-concurrency: must be from 1 to 10"),
        ({"data_categories": ["GENOMICS"]}, "GENOMICS is not a data category"),
        ({"organization_ids": ["org_nowhere"]}, "org_nowhere: no rows"),
    ],
)
def test_bad_config_is_refused_and_nothing_is_written(service: MigratorService, values, message) -> None:  # type: ignore[no-untyped-def]
    before = raw_dump(service.engine)
    with pytest.raises(InvalidMigrationConfig, match=message):
        service.start(values)
    assert raw_dump(service.engine) == before
    assert service.list_migrations()[1] == []


def test_scope_by_category_and_organization(service: MigratorService) -> None:
    record = service.start(
        {**FAST, "data_categories": ["DEMOGRAPHICS"], "organization_ids": ["org_pitie_paris"]}
    )
    assert [t.name for t in record.tables] == ["demographics"]
    with service.engine.connect() as connection:
        rows = connection.exec_driver_sql("SELECT organization_id, first_name FROM demographics").all()
    for organization, first_name in rows:
        assert (first_name is None or first_name.startswith("tmenc:")) == (
            organization == "org_pitie_paris"
        ) or first_name is None


def test_a_value_the_application_changes_during_a_batch_is_read_again_not_overwritten(
    service: MigratorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The guarded UPDATE on a JSON column (PostgreSQL's json type has no equality operator).

    On PostgreSQL batches are claimed with row locks, so the application cannot change a row in
    the middle of its batch (the next test); the guard protects the keyset path, which a
    claimed batch falls back to after a lost connection, and which this test takes."""
    monkeypatch.setattr(batch_source, "row_locks_supported", lambda _engine: False)
    real_seal_rows = batches_module.TableBatches.seal_rows
    changed: dict[str, int] = {}

    def application_writes_after_the_read(self, rows):  # type: ignore[no-untyped-def]
        sealed = real_seal_rows(self, rows)
        if self.access.mapped.name == "autonomic_symptoms" and self.migration_id != "calibration":
            target = next((r for r in rows if r["measurements"] is not None), None)
            if target is not None and not changed:
                with self.engine.begin() as connection:
                    connection.exec_driver_sql(
                        "UPDATE autonomic_symptoms SET measurements = '{\"changed\":  [1.10]}' "
                        f"WHERE id = {int(target['id'])}"
                    )
                changed["id"] = int(target["id"])
        return sealed

    monkeypatch.setattr(batches_module.TableBatches, "seal_rows", application_writes_after_the_read)
    record = service.start(FAST)
    assert record.status is Status.COMPLETED, record.error_message
    assert record.failed_records == 0 and "id" in changed
    with service.engine.connect() as connection:
        token = connection.exec_driver_sql(
            f"SELECT measurements__tm_token, organization_id FROM autonomic_symptoms WHERE id = {changed['id']}"
        ).one()
    opened = RecordReader.for_service(service).read_value(
        token[0],
        table="autonomic_symptoms",
        column="measurements",
        primary_key=changed["id"],
        organization_id=token[1],
    )
    # The application's new value was sealed, exactly as written, not the value read before it.
    assert opened == '{"changed":  [1.10]}'


@pytest.mark.backends("postgresql")
def test_a_claimed_batch_holds_its_rows_so_an_application_write_waits_for_it(
    service: MigratorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_seal_rows = batches_module.TableBatches.seal_rows
    outcome: dict[str, str] = {}

    def application_writes_during_the_batch(self, rows):  # type: ignore[no-untyped-def]
        if (
            self.access.mapped.name == "autonomic_symptoms"
            and self.migration_id != "calibration"
            and not outcome
        ):
            try:
                with self.engine.begin() as connection:
                    connection.exec_driver_sql("SET LOCAL lock_timeout = '200ms'")
                    connection.exec_driver_sql(
                        f"UPDATE autonomic_symptoms SET measurements = NULL WHERE id = {int(rows[0]['id'])}"
                    )
                outcome["write"] = "went through"
            except sa.exc.OperationalError as error:
                outcome["write"] = "waited" if "lock timeout" in str(error.orig) else str(error.orig)
        return real_seal_rows(self, rows)

    monkeypatch.setattr(batches_module.TableBatches, "seal_rows", application_writes_during_the_batch)
    before = raw_dump(service.engine)
    record = service.start(FAST)
    assert outcome == {"write": "waited"}
    assert record.status is Status.COMPLETED and record.failed_records == 0
    service.rollback(record.id, confirm=True)
    assert raw_dump(service.engine) == before


@pytest.mark.backends("sqlite")
def test_a_small_migration_seals_in_its_own_process_and_a_large_one_in_worker_processes(
    service: MigratorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The demo's 531 rows go faster without worker processes to start (cpu_pool.migration_processes);
    from MIGRATION_WORKERS_FROM_ROWS rows on, a run at concurrency 2 has them (two cores here)."""
    pools: list[int] = []
    made = runner_module.CpuPool

    def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        pool = made(*args, **kwargs)
        pools.append(pool.processes)
        return pool

    monkeypatch.setattr(runner_module, "CpuPool", counted)
    before = raw_dump(service.engine)
    small = service.start({"batch_size": 40, "max_concurrency": 2})
    assert small.status is Status.COMPLETED and small.total_records < cpu_pool.MIGRATION_WORKERS_FROM_ROWS
    assert pools[-1] == 0
    service.rollback(small.id, confirm=True)
    assert raw_dump(service.engine) == before
    monkeypatch.setattr(cpu_pool, "MIGRATION_WORKERS_FROM_ROWS", small.total_records)
    large = service.start({"batch_size": 40, "max_concurrency": 2})
    assert large.status is Status.COMPLETED
    assert pools[-1] == cpu_pool.processes_for(2)
    service.rollback(large.id, confirm=True)
    assert raw_dump(service.engine) == before


def test_auto_batch_size_adapts(service: MigratorService) -> None:
    record = service.start({"batch_size": "auto", "max_concurrency": 2})
    assert record.status is Status.COMPLETED
    assert record.config.batch_size == "auto"


def _bypassing_foreign_keys(service: MigratorService, statement: str) -> None:
    """Run ``statement`` with foreign keys unchecked, so rows can lose their organization."""
    if service.engine.dialect.name == "sqlite":
        import sqlite3

        # A plain sqlite3 connection does not enforce foreign keys.
        with sqlite3.connect(service.engine.url.database) as raw:
            raw.execute(statement)
        return
    with service.engine.begin() as connection:
        # The replica role skips the foreign-key triggers (the test cluster's user is a superuser).
        connection.exec_driver_sql("SET LOCAL session_replication_role = replica")
        connection.exec_driver_sql(statement)


def _slow_batches(monkeypatch: pytest.MonkeyPatch, seconds: float = 0.03) -> None:
    import time

    real = batches_module.TableBatches.process

    def slow(self, rows, *, after):  # type: ignore[no-untyped-def]
        time.sleep(seconds)
        return real(self, rows, after=after)

    monkeypatch.setattr(batches_module.TableBatches, "process", slow)


def test_transient_database_errors_are_retried_and_the_migration_completes(
    service: MigratorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    service.retry_policy = RetryPolicy(attempts=4, first_delay=0.01)
    real_write = batches_module.TableBatches.write_in
    failures = {"left": 3}

    def flaky_write(self, connection, *args, **kwargs):  # type: ignore[no-untyped-def]
        if failures["left"] and self.migration_id != "calibration":
            failures["left"] -= 1
            raise sa.exc.OperationalError("UPDATE", {}, Exception("database is locked"))
        return real_write(self, connection, *args, **kwargs)

    monkeypatch.setattr(batches_module.TableBatches, "write_in", flaky_write)
    record = service.start(FAST)
    assert failures["left"] == 0
    assert record.status is Status.COMPLETED and record.encrypted_records == record.total_records


def test_status_raises_the_seeds_high_error_rate_alert(
    service: MigratorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tui_migrator.service.views import status_data

    real_seal = batches_module.seal_row

    def failing_seal(access, row, cipher):  # type: ignore[no-untyped-def]
        if access.mapped.name == "motor_symptoms":
            raise UnsupportedValue("values of type Exotic cannot be encrypted exactly")
        return real_seal(access, row, cipher)

    monkeypatch.setattr(batches_module, "seal_row", failing_seal)
    # One batch at a time seals in this process, where the patch is (worker processes have the
    # real seal_row).
    record = service.start({**FAST, "max_concurrency": 1})
    assert record.failed_records / record.processed_records > 0.05
    alerts = status_data(record)["alerts"]
    assert any(alert.startswith("High error rate:") for alert in alerts)
