"""The run's worker processes: batches sealed and opened there are exactly what this process
would produce, a key the workers were not given is handled here, and key material never
reaches a worker's command line."""

from __future__ import annotations

import base64
import multiprocessing
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tui_migrator.common.categories import DataCategory
from tui_migrator.common.cores import usable_cores
from tui_migrator.crypto.ciphers import KeyNotGiven, RowSealer, ValueCipher
from tui_migrator.crypto.data_keys import ThrowawayKeys
from tui_migrator.crypto.keys import MasterKey
from tui_migrator.engine import backup, batch_transport, batches, verification
from tui_migrator.engine.cpu_pool import (
    MIGRATION_WORKERS_FROM_ROWS,
    REPLACEMENTS,
    BatchContext,
    CpuPool,
    WorkerProcessDied,
    kept,
    migration_processes,
    processes_for,
)
from tui_migrator.storage.column_storage import RowShape
from tui_migrator.storage.database import create_database_engine, url_for_another_process
from tui_migrator.storage.mapping import ResolvedColumn, ResolvedTable, Storage
from tui_migrator.storage.row_metadata import Recorded
from tui_migrator.storage.sealed_cells import SealedCells

TABLE = ResolvedTable(
    name="records",
    category=DataCategory.DEMOGRAPHICS,
    primary_key=("id",),
    organization_column="organization_id",
    default_organization=None,
    columns=(
        ResolvedColumn("name", "TEXT", True, Storage.IN_PLACE),
        ResolvedColumn("born", "DATE", True, Storage.COMPANION),
    ),
)
ROWS = [
    {"id": number, "organization_id": f"org_{number % 2}", "name": f"patient {number}", "born": None}
    for number in range(1, 41)
] + [{"id": 99, "organization_id": "org_0", "name": None, "born": "1950-02-03"}]


def worker_pid(_crypto: BatchContext) -> int:
    return os.getpid()


def dies_while_deaths_are_left(_crypto: BatchContext, deaths: str, value: int) -> int:
    """Kills its own worker process (as the out-of-memory killer would) where it can take one
    of the files left in the folder ``deaths`` (each taken once, by one worker); else gives back
    ``value``."""
    for death in sorted(Path(deaths).iterdir()):
        try:
            death.unlink()
        except FileNotFoundError:
            continue  # another worker took it
        os.kill(os.getpid(), signal.SIGKILL)
    return value


def interrupted(_crypto: BatchContext, value: int) -> int:
    """Gets the SIGINT a terminal's Ctrl-C sends every process of its foreground group, then
    gives back ``value``; -1 where the signal raised KeyboardInterrupt, which would have killed
    a worker mid-batch (caught here, so that it cannot reach the test run itself)."""
    try:
        os.kill(os.getpid(), signal.SIGINT)
    except KeyboardInterrupt:
        return -1
    return value


def _deaths(folder: Path, count: int) -> str:
    folder.mkdir()
    for number in range(count):
        (folder / str(number)).touch()
    return str(folder)


# What identity_of was given, held so that no two live values can share an id.
_held: list[object] = []


def identity_of(_context: BatchContext, value: object) -> tuple[int, int, str]:
    _held.append(value)
    return os.getpid(), id(value), type(value).__name__


def rows_read(context: BatchContext, table: str) -> tuple[int, int, str | None]:
    """What a worker reads from the run's database through its own engine."""
    with context.engine.connect() as connection:
        count = connection.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar_one()
    return os.getpid(), count, context.engine.url.password


@pytest.fixture
def local() -> BatchContext:
    master = MasterKey(os.urandom(32), "test")
    cipher = ValueCipher(ThrowawayKeys(), master, actor="tester")
    cipher.prepare(["org_0", "org_1"])
    return BatchContext(cipher, RowSealer(master, "migration_1"))


def test_the_workers_are_other_processes_given_keys_through_their_pipe_only(local: BatchContext) -> None:
    keys = local.cipher.worker_keys(["org_0", "org_1"], local.sealer)
    with CpuPool(local, 2, keys) as pool:
        pids = {pool.run(worker_pid) for _ in range(8)}
        assert os.getpid() not in pids
        secrets = [raw for *_ids, raw in keys.data_keys] + [keys.digest_key]
        for pid in pids:
            command_line = Path(f"/proc/{pid}/cmdline").read_bytes()
            environment = Path(f"/proc/{pid}/environ").read_bytes()
            for secret in secrets:
                for form in (secret, secret.hex().encode(), base64.b64encode(secret)):
                    assert form not in command_line and form not in environment
    assert "data keys" in repr(keys) and keys.digest_key.hex() not in repr(keys)


# Rows whose sealed batch is large enough to come back through shared memory, not the pipe
# (engine/batch_transport.py).
LARGE_ROWS = [{**row, "name": f"{row['name']} " + "report " * 6_000} for row in ROWS]


@pytest.mark.parametrize("rows", [ROWS, LARGE_ROWS], ids=["through the pipe", "through shared memory"])
def test_a_batch_sealed_in_a_worker_opens_here_to_the_original_values(
    local: BatchContext, rows: list[dict[str, object]]
) -> None:
    keys = local.cipher.worker_keys(["org_0", "org_1"], local.sealer)
    shape = RowShape(TABLE)
    with CpuPool(local, 2, keys) as pool:
        sealed, failures = pool.run(batches.seal_batch, shape, rows, dry_run=False, with_backups=True)
    assert not failures and len(sealed) == len(rows)
    shipped = batch_transport.ship((sealed, failures), "size", Path("/nonexistent"))
    large = rows is LARGE_ROWS
    assert (len(shipped.pickled or b"") >= batch_transport.SHARED_FROM_BYTES) is large
    by_index = {item["index"]: item for item in sealed}
    for index, row in enumerate(rows):
        item = by_index[index]
        written = {
            **row,
            **{k: v for k, v in item["parameters"].items() if k in ("name", "born", "born__tm_token")},
        }
        recorded = Recorded(item["digest"], item["sealed_columns"], item["tokens_digest"])
        cells = SealedCells.from_metadata(recorded.sealed_columns, TABLE)
        verified = verification.RowCheck.VERIFIED
        # The tokens' digest the worker took is the one of the tokens written here...
        assert verification.check_row(shape, written, cells, recorded, local.cipher) is verified
        # ... and the values' digest the one this process recomputes from the opened tokens.
        opening = recorded._replace(tokens_digest=None)
        assert verification.check_row(shape, written, cells, opening, local.cipher) is verified
        assert verification.original_values(shape, written, local.cipher) == [row["name"], row["born"]]
        assert local.sealer is not None
        opened = backup.open_backup(shape, row, item["backup"][backup.SEALED_COLUMN], local.sealer)
        assert opened == [row["name"], row["born"]]


def test_a_key_the_workers_were_not_given_is_used_here(local: BatchContext) -> None:
    # The workers know org_0 only; org_1's rows (a key created after they started) seal here.
    keys = local.cipher.worker_keys(["org_0"], local.sealer)
    shape = RowShape(TABLE)
    with pytest.raises(KeyNotGiven):
        keys.cipher().key_id_for("org_1")
    with CpuPool(local, 2, keys) as pool:
        sealed, failures = pool.run(batches.seal_batch, shape, ROWS, dry_run=False, with_backups=False)
    assert not failures and len(sealed) == len(ROWS)
    assert {item["key_id"] for item in sealed} == {
        local.cipher.key_id_for("org_0"),
        local.cipher.key_id_for("org_1"),
    }


def test_one_process_per_batch_in_flight_up_to_the_cores() -> None:
    cores = usable_cores()
    assert processes_for(1) == 0  # one batch at a time: this process does the work
    assert processes_for(cores + 5) == (cores if cores > 1 else 0)


def test_a_migration_too_small_to_gain_from_worker_processes_starts_none() -> None:
    """Starting them costs more than they save below MIGRATION_WORKERS_FROM_ROWS rows."""
    assert migration_processes(10, MIGRATION_WORKERS_FROM_ROWS - 1, cores=2) == 0
    assert migration_processes(10, MIGRATION_WORKERS_FROM_ROWS, cores=2) == 2
    assert migration_processes(1, 10**6, cores=2) == 0


def test_the_cores_are_those_the_process_may_run_on_not_the_machines(monkeypatch: pytest.MonkeyPatch) -> None:
    # A container's cpuset (or a taskset) of two cores on a 64-core host.
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {6, 7}, raising=False)
    assert usable_cores() == 2
    assert processes_for(10) == 2
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {6}, raising=False)
    assert processes_for(10) == 0  # one core: the run's own process does the work
    # Where the platform does not tell (no sched_getaffinity): the machine's count.
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    assert usable_cores() == 64


START_SERVER = """
import multiprocessing.forkserver, sys
from tui_migrator.engine.cpu_pool import start_process_server
start_process_server(int(sys.argv[1]), int(sys.argv[2]))
print(multiprocessing.forkserver._forkserver._forkserver_pid)
"""


@pytest.mark.skipif(usable_cores() == 1, reason="one core: a run has no worker processes")
def test_a_run_with_workers_starts_their_server_before_its_first_batch_and_one_without_does_not() -> None:
    def server_pid(max_concurrency: int, rows: int = MIGRATION_WORKERS_FROM_ROWS) -> str:
        done = subprocess.run(
            [sys.executable, "-c", START_SERVER, str(max_concurrency), str(rows)],
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout.strip()

    assert server_pid(1) == "None"
    assert server_pid(2).isdigit()
    # A migration too small for workers (migration_processes) has no use for their server.
    assert server_pid(2, rows=MIGRATION_WORKERS_FROM_ROWS - 1) == "None"


WORKER_MODULES = """
from concurrent.futures import ProcessPoolExecutor
from tui_migrator.engine.process_server import process_context
with ProcessPoolExecutor(1, mp_context=process_context()) as pool:
    # What the worker has imported before it runs anything of its own: the fork server's.
    print(pool.submit(eval, "sorted(__import__('sys').modules)").result())
"""


@pytest.mark.skipif(
    "forkserver" not in multiprocessing.get_all_start_methods(),
    reason="no fork server here: each worker imports what it needs (spawn)",
)
def test_a_worker_starts_with_the_batch_functions_and_the_postgresql_driver_imported() -> None:
    # The driver: SQLAlchemy imports it only when an engine first connects, in every worker.
    done = subprocess.run([sys.executable, "-c", WORKER_MODULES], capture_output=True, text=True, check=True)
    imported = done.stdout
    assert "'tui_migrator.engine.batches'" in imported
    assert "'tui_migrator.engine.verification'" in imported
    assert "'psycopg'" in imported


def test_a_worker_process_killed_mid_batch_is_replaced_and_its_batches_run_again(
    local: BatchContext, tmp_path: Path
) -> None:
    deaths = _deaths(tmp_path / "deaths", 1)
    keys = local.cipher.worker_keys(["org_0"], None)
    with CpuPool(local, 2, keys) as pool:
        # Four in flight: the killed worker's and its neighbours' come back broken together.
        pending = [pool.submit(dies_while_deaths_are_left, deaths, n) for n in range(4)]
        assert [each.result() for each in pending] == [0, 1, 2, 3]
        assert pool.replacements == 1
        # The fresh processes go on taking batches.
        assert pool.run(dies_while_deaths_are_left, deaths, 7) == 7
        assert pool.replacements == 1


def test_a_ctrl_c_reaching_the_workers_leaves_their_batches_to_finish(local: BatchContext) -> None:
    # The run's process decides what a Ctrl-C means (the first: finish the batches in flight).
    keys = local.cipher.worker_keys(["org_0"], None)
    with CpuPool(local, 2, keys) as pool:
        pending = [pool.submit(interrupted, n) for n in range(4)]
        assert [each.result() for each in pending] == [0, 1, 2, 3]
        assert pool.replacements == 0


def test_workers_that_keep_dying_stop_the_run_in_plain_words(local: BatchContext, tmp_path: Path) -> None:
    deaths = _deaths(tmp_path / "deaths", REPLACEMENTS + 1)
    keys = local.cipher.worker_keys(["org_0"], None)
    with CpuPool(local, 2, keys) as pool, pytest.raises(WorkerProcessDied) as stopped:
        pool.run(dies_while_deaths_are_left, deaths, 1)
    assert pool.replacements == REPLACEMENTS
    assert f"died {REPLACEMENTS + 1} times" in stopped.value.message
    assert "Nothing of the batches it held was written" in stopped.value.message
    assert stopped.value.hint is not None and "resume" in stopped.value.hint


def test_two_batches_per_worker_are_kept_in_flight_and_one_without_workers(local: BatchContext) -> None:
    assert CpuPool(local, processes=0).batches_in_flight == 1
    keys = local.cipher.worker_keys(["org_0"], local.sealer)
    with CpuPool(local, processes=2, keys=keys) as pool:
        assert pool.batches_in_flight == 4


def test_a_sealed_row_says_whether_it_held_a_token_already_in_a_cell_it_kept(local: BatchContext) -> None:
    shape = RowShape(TABLE)
    fresh = {"id": 1, "organization_id": "org_0", "name": "patient 1", "born": None}
    (first,), _ = batches.seal_batch(local, shape, [fresh], dry_run=False, with_backups=False)
    assert first["held_tokens"] is False
    # The application writes a new name beside the sealed one: a second pass seals the name
    # and keeps the row's other token (the companion's), which the row held already.
    born = {**fresh, "born": "1950-02-03"}
    (sealed_born,), _ = batches.seal_batch(local, shape, [born], dry_run=False, with_backups=False)
    partly = {
        **born,
        "name": "patient 1, renamed",
        **{k: v for k, v in sealed_born["parameters"].items() if k in ("born", "born__tm_token")},
    }
    (again,), _ = batches.seal_batch(local, shape, [partly], dry_run=False, with_backups=False)
    assert set(again["tokens"]) == {"name"}
    assert again["held_tokens"] is True


def test_a_worker_reads_the_runs_database_through_its_own_connection(
    local: BatchContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A relative path: the worker opens the same file whatever its working directory.
    monkeypatch.chdir(tmp_path)
    engine = create_database_engine("sqlite:///records.db")
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE records (id INTEGER PRIMARY KEY)")
        connection.exec_driver_sql("INSERT INTO records VALUES (1), (2), (3)")
    reading = BatchContext(local.cipher, None, engine)
    keys = local.cipher.worker_keys(["org_0"], None)
    with CpuPool(reading, 2, keys) as pool:
        pid, count, _password = pool.run(rows_read, "records")
    assert pid != os.getpid() and count == 3
    assert url_for_another_process(engine) == engine.url.set(database=str(tmp_path / "records.db"))
    engine.dispose()


def test_the_databases_password_reaches_the_workers_through_their_pipe_only(local: BatchContext) -> None:
    secret = "pw-" + os.urandom(8).hex()
    # Never connected to: the engine is made in each worker, which connects on first use only.
    engine = create_database_engine(f"postgresql+psycopg://operator:{secret}@127.0.0.1:1/hospital")
    keys = local.cipher.worker_keys(["org_0"], None)
    with CpuPool(BatchContext(local.cipher, None, engine), 2, keys) as pool:
        pids = {pool.run(worker_pid) for _ in range(8)}
        for pid in pids:
            for place in ("cmdline", "environ"):
                assert secret.encode() not in Path(f"/proc/{pid}/{place}").read_bytes()
    assert pids and os.getpid() not in pids


def test_a_database_in_memory_no_worker_can_open_keeps_the_work_here(local: BatchContext) -> None:
    engine = create_database_engine("sqlite://")
    keys = local.cipher.worker_keys(["org_0"], None)
    assert url_for_another_process(engine) is None
    with CpuPool(BatchContext(local.cipher, None, engine), 2, keys) as pool:
        assert pool.processes == 0 and pool.run(worker_pid) == os.getpid()


def test_a_kept_argument_is_unpickled_once_per_worker_and_given_as_its_value(local: BatchContext) -> None:
    keys = local.cipher.worker_keys(["org_0"], None)
    value = {"table": "records", "columns": list(range(100))}
    with CpuPool(local, 2, keys) as pool:
        shipped = kept(value)
        seen = [pool.submit(identity_of, shipped) for _ in range(16)]
        by_worker: dict[int, set[int]] = {}
        for pending in seen:
            pid, identity, kind = pending.result()
            assert kind == "dict"
            by_worker.setdefault(pid, set()).add(identity)
        assert all(len(identities) == 1 for identities in by_worker.values())
        # A value not kept is a new object in the worker for every batch.
        plain = [pool.submit(identity_of, value).result()[:2] for _ in range(8)]
        assert len(set(plain)) == len(plain)
    with CpuPool(local, 0) as here:
        assert here.run(identity_of, kept(value)) == (os.getpid(), id(value), "dict")
