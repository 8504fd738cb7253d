"""A worker that joins a migration shares the read-back of its backup copies and its
verification, not only its batches (engine/window_steps.py, storage/shared_windows.py).

The owner runs in this process in the foreground and a joined worker in a thread of its own
(its own service, as another process would have). Each step's first window of the owner waits
until the joined worker has done one of that step's windows, so the sharing happens every run,
whatever the machine's speed; then the migration must be exact and reversible as ever: the
backup's read-back matches what the batches wrote whoever read which window, every row is
verified, nothing is encrypted twice, and a rollback restores every byte. A window the joined worker fails is done by
the owner, and one the server or the connection fails does not send the joined worker away; a
window the joined worker holds is waited for, not done twice; and a joined worker's window
commits nothing once the migration has been taken over.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from tests.support.databases import ADMIN
from tests.support.migration_helpers import assert_fully_encrypted, batch_log_rows, raw_dump, wait_for
from tui_migrator.common.settings import Settings
from tui_migrator.crypto.ciphers import RowSealer
from tui_migrator.crypto.tokens import TOKEN_PREFIX
from tui_migrator.engine import backup, verification
from tui_migrator.engine.cpu_pool import BatchContext
from tui_migrator.engine.joiner import JoinSummary
from tui_migrator.engine.window_steps import do_a_joined_window
from tui_migrator.service.facade import MigratorService
from tui_migrator.storage import migration_claims, shared_windows
from tui_migrator.storage.column_storage import key_of, reflect
from tui_migrator.storage.migration_records import MigrationRecord
from tui_migrator.storage.migration_status import Status
from tui_migrator.storage.shared_windows import StepName
from tui_migrator.storage.tables import migrations_table, shared_windows_table

# Small windows, so every table has several and the joined worker finds some open.
WINDOW_ROWS = 10
CONFIG = {"batch_size": 40, "max_concurrency": 1}


@pytest.fixture
def small_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backup, "READ_BACK_ROWS", WINDOW_ROWS)
    monkeypatch.setattr(verification, "BATCH", WINDOW_ROWS)


class JoinedThread:
    """A worker joining the only migration of ``settings``' database as soon as its owner has
    claimed it. ``joined`` is true in that thread only (the patched window functions ask)."""

    def __init__(self, settings: Settings) -> None:
        self.local = threading.local()
        self.summary: JoinSummary | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(settings,), daemon=True)
        self.thread.start()

    @property
    def joined(self) -> bool:
        return getattr(self.local, "joined", False)

    def _run(self, settings: Settings) -> None:
        self.local.joined = True
        try:
            with MigratorService.open(settings, user=ADMIN) as service:
                migration_id = self._wait_for_owner(service)
                self.summary = service.join(migration_id)
        except BaseException as error:
            self.error = error

    @staticmethod
    def _wait_for_owner(service: MigratorService) -> str:
        found: list[str] = []

        def claimed() -> bool:
            records, _ = service.list_migrations(limit=None, status=None)
            live = [r for r in records if r.stored_status.is_live and r.worker_alive and r.claim_epoch]
            found[:] = [r.id for r in live]
            return bool(found)

        wait_for(claimed, timeout=60)
        return found[0]

    def result(self) -> JoinSummary:
        self.thread.join(timeout=120)
        assert not self.thread.is_alive(), "the joined worker did not leave"
        if self.error is not None:
            raise self.error
        assert self.summary is not None
        return self.summary


def first_owner_window_waits_for_the_joined_worker(
    monkeypatch: pytest.MonkeyPatch,
    module: Any,
    function: str,
    joined: JoinedThread,
    joined_does: Callable[[Callable[..., Any], tuple[Any, ...]], Any] | None = None,
) -> threading.Event:
    """Patch ``module.function`` (a step's window function): in the owner, every window waits
    until the joined worker has done (or tried) one; in the joined worker, ``joined_does``
    decides what happens (by default, the window as it is)."""
    tried = threading.Event()
    original = getattr(module, function)

    def window(*arguments: Any) -> Any:
        if joined.joined:
            try:
                if joined_does is not None:
                    return joined_does(original, arguments)
                return original(*arguments)
            finally:
                tried.set()
        assert tried.wait(timeout=60), f"the joined worker did no {function} window"
        return original(*arguments)

    monkeypatch.setattr(module, function, window)
    return tried


def windows_left(service: MigratorService) -> int:
    with service.engine.connect() as connection:
        return int(
            connection.execute(sa.select(sa.func.count()).select_from(shared_windows_table)).scalar_one()
        )


def damage_every_token(service: MigratorService, record: MigrationRecord) -> None:
    """Make every token the migration wrote unopenable (one character added), so a rollback
    can only put the originals back from the sealed backups."""
    with service.engine.begin() as connection:
        for progress in record.tables:
            table = sa.Table(progress.name, sa.MetaData(), autoload_with=connection)
            for column in table.columns:
                if isinstance(column.type, sa.String):
                    connection.execute(
                        sa.update(table)
                        .where(column.startswith(TOKEN_PREFIX))
                        .values({column.name: sa.func.left(column, -6) + "+" + sa.func.right(column, 6)})
                    )


def assert_backed_up_verified_and_reversible(
    service: MigratorService, record: MigrationRecord, before: dict[str, Any], *, from_backups: bool = False
) -> None:
    """Whoever did which window: every row backed up once (the read-back matched the copy),
    verified, encrypted by one batch, and the rollback gives back every byte — with
    ``from_backups``, every row from its backup, whichever worker wrote it."""
    assert record.status is Status.COMPLETED, record.error_message
    assert sum(table.backup_rows or 0 for table in record.tables) == record.total_records
    assert record.verification is not None and record.verification["passed"]
    assert record.verification["verifiedRows"] == record.encrypted_records == record.total_records
    assert batch_log_rows(service, record.id) == record.total_records  # no batch done twice
    assert windows_left(service) == 0
    assert assert_fully_encrypted(service, service.mapping(), before) > 0
    if from_backups:
        damage_every_token(service, record)
    _, result = service.rollback(record.id, confirm=True)
    if from_backups:
        assert result.restored_from_backup == record.total_records
    assert raw_dump(service.engine) == before


@pytest.mark.usefixtures("small_windows")
@pytest.mark.backends("postgresql")
def test_a_worker_that_joins_shares_the_backups_read_back_and_the_verification(
    service: MigratorService, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = raw_dump(service.engine)
    joined = JoinedThread(settings)
    first_owner_window_waits_for_the_joined_worker(monkeypatch, backup, "read_back_window", joined)
    first_owner_window_waits_for_the_joined_worker(monkeypatch, verification, "verify_window", joined)

    record = service.start(CONFIG)
    summary = joined.result()

    # The joined worker read backups back and checked rows.
    assert summary.rows_by_step.get(backup.READ_BACK_STEP, 0) > 0, summary.to_json()
    assert summary.rows_by_step.get(verification.VERIFY_STEP, 0) > 0, summary.to_json()
    assert summary.left_because in {
        "the owner is past verification: nothing is left to share",
        "the migration is completed",  # when it looked again, after its last window
    }
    # Every row's backup gives back its original exactly, whichever worker's batch wrote it.
    assert_backed_up_verified_and_reversible(service, record, before, from_backups=True)


@pytest.mark.usefixtures("small_windows")
@pytest.mark.backends("postgresql")
def test_a_window_the_joined_worker_fails_is_done_by_the_owner(
    service: MigratorService, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = raw_dump(service.engine)
    joined = JoinedThread(settings)

    def fail(original: Callable[..., Any], arguments: tuple[Any, ...]) -> Any:
        original(*arguments)  # the backups are read back, then the worker fails before its result
        raise RuntimeError("the joined worker's window failed")

    first_owner_window_waits_for_the_joined_worker(monkeypatch, backup, "read_back_window", joined, fail)

    record = service.start(CONFIG)
    summary = joined.result()

    assert summary.left_because.startswith("a window it took failed (RuntimeError)"), summary.to_json()
    assert summary.rows_by_step == {}
    assert_backed_up_verified_and_reversible(service, record, before)


@pytest.mark.usefixtures("small_windows")
@pytest.mark.backends("postgresql")
def test_a_lost_connection_in_a_joined_window_does_not_send_the_worker_away(
    service: MigratorService, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server or the connection failing during a joined worker's window rolls the window
    back (the owner or the worker does it later) and the worker stays: it goes on to verify."""
    before = raw_dump(service.engine)
    joined = JoinedThread(settings)
    failures = [OperationalError("SELECT 1", None, Exception("server closed the connection unexpectedly"))]

    def fail_once(original: Callable[..., Any], arguments: tuple[Any, ...]) -> Any:
        if failures:
            raise failures.pop()
        return original(*arguments)

    first_owner_window_waits_for_the_joined_worker(monkeypatch, backup, "read_back_window", joined, fail_once)
    first_owner_window_waits_for_the_joined_worker(monkeypatch, verification, "verify_window", joined)

    record = service.start(CONFIG)
    summary = joined.result()

    assert failures == []  # the joined worker's window failed once
    assert summary.rows_by_step.get(verification.VERIFY_STEP, 0) > 0, summary.to_json()
    assert not summary.left_because.startswith("a window it took failed"), summary.to_json()
    assert_backed_up_verified_and_reversible(service, record, before)


@pytest.fixture
def published(service: MigratorService) -> Iterator[StepName]:
    name = StepName("migration_test", "verification", "patients")
    shared_windows.publish(service.engine, name, [(0, (1,), (10,)), (1, (11,), (20,))])
    yield name
    shared_windows.clear(service.engine, name)


def waiting_on_a_lock(service: MigratorService) -> bool:
    with service.engine.connect() as connection:
        return bool(
            connection.execute(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE wait_event_type = 'Lock' AND datname = current_database()"
                )
            ).scalar_one()
        )


@pytest.mark.parametrize("joined_commits", [True, False], ids=["done", "failed"])
@pytest.mark.backends("postgresql")
def test_the_owner_waits_for_a_window_a_joined_worker_holds(
    service: MigratorService, published: StepName, joined_commits: bool
) -> None:
    """The joined worker holds the last window (its lock) while it does it; the owner, asking
    for that window's result, waits on the lock — it neither reads a half-done window nor does
    it too — and then gets the committed summary, or, if the worker rolled back, the window to
    do itself."""
    engine = service.engine
    holding, release = threading.Event(), threading.Event()

    taken_windows: list[tuple[int, Any, Any]] = []

    def joined_worker() -> None:
        try:
            with shared_windows.joined_window(engine, "migration_test", "joined:1") as taken:
                assert taken is not None
                connection, window = taken
                taken_windows.append((window.seq, window.first, window.last))
                holding.set()
                release.wait(timeout=30)
                if not joined_commits:
                    raise RuntimeError("the window failed")  # rolled back: open again
                shared_windows.done(connection, window, {"rows": 10, "verified": 10})
        except RuntimeError:
            pass

    thread = threading.Thread(target=joined_worker)
    thread.start()
    assert holding.wait(timeout=30)
    # The furthest window from the owner, its keys as published.
    assert taken_windows == [(1, (11,), (20,))]
    # Window 0 is open and the owner's; window 1 is the joined worker's, so not the owner's.
    assert shared_windows.take(engine, published, 0, 1, "owner:1") == {0}
    answers: list[dict[str, Any] | None] = []
    owner = threading.Thread(
        target=lambda: answers.append(shared_windows.result_or_take(engine, published, 1, "owner:1"))
    )
    owner.start()
    wait_for(lambda: waiting_on_a_lock(service), timeout=30)
    assert answers == []
    release.set()
    owner.join(timeout=30)
    thread.join(timeout=30)
    with engine.connect() as connection:
        taken_by = connection.execute(
            sa.select(shared_windows_table.c.taken_by).where(shared_windows_table.c.seq == 1)
        ).scalar_one()
    if joined_commits:
        assert answers == [{"rows": 10, "verified": 10}] and taken_by == "joined:1"
    else:
        assert answers == [None] and taken_by == "owner:1"


def test_nothing_is_published_where_no_worker_can_join(
    service: MigratorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite: one writer at a time, so no worker joins and no window is published."""
    published: list[Any] = []
    monkeypatch.setattr(shared_windows, "publish", lambda *arguments: published.append(arguments))
    record = service.start(CONFIG)

    assert record.status is Status.COMPLETED and record.verification is not None
    assert record.verification["passed"]
    assert published == [] and windows_left(service) == 0


@pytest.mark.parametrize("taken_over", [False, True], ids=["still-the-owners", "taken-over"])
@pytest.mark.backends("postgresql")
def test_a_joined_workers_window_commits_only_under_the_claim_it_joined(
    service: MigratorService, taken_over: bool
) -> None:
    """A joined worker's window result commits only if the migration is still claimed as when
    it joined: a takeover (a resume's or a rollback's claim) during the window rolls it back,
    and the window is open again."""
    engine = service.engine
    record = service.start({**CONFIG, "data_categories": ["DEMOGRAPHICS"]})
    table = "demographics"
    with engine.connect() as connection:
        access = reflect(connection, service.mapping().table(table))
        keys = [key_of(access, row) for row in connection.execute(access.select_rows(limit=None)).mappings()]
    assert keys
    backup_table = backup.backup_table(access, backup.backup_table_name(record.id, table))
    name = StepName(record.id, backup.READ_BACK_STEP, table)
    shared_windows.publish(engine, name, [(0, min(keys), max(keys))])
    reading_back = backup.read_back_step(access, backup_table)

    def read_back_then_take_over(*arguments: Any) -> Any:
        read = backup.read_back_window(*arguments)
        if taken_over:
            with engine.begin() as connection:
                connection.execute(
                    sa.update(migrations_table)
                    .where(migrations_table.c.id == record.id)
                    .values(claim_epoch=migrations_table.c.claim_epoch + 1)
                )
        return read

    def window(*_: Any) -> Any:
        return dataclasses.replace(reading_back, work=read_back_then_take_over)

    session = service._session
    context = BatchContext(session.value_cipher(), RowSealer(session.master_key, record.id), engine)

    def done() -> Any:
        return do_a_joined_window(
            engine,
            record.id,
            "joined:1",
            window,
            context,
            lambda connection: migration_claims.check_epoch(connection, record.id, record.claim_epoch),
        )

    with engine.connect() as connection:
        if taken_over:
            with pytest.raises(migration_claims.ClaimLost):
                done()
            assert connection.execute(sa.select(shared_windows_table.c.taken_by)).scalar_one() is None
        else:
            taken, summary = done()
            assert taken == name and summary["rows"] == len(keys)
            assert connection.execute(sa.select(shared_windows_table.c.taken_by)).scalar_one() == "joined:1"
    shared_windows.clear(engine, name)
