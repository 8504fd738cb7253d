"""A batch's commit on PostgreSQL does not wait for its write-ahead log to reach disk
(``synchronous_commit = off`` for that transaction only); every other write, and the session
once the batch is done, keeps the server's setting.

The suite's cluster runs with ``synchronous_commit = off`` (see tests/support/postgres_cluster.py),
so each database here is first given the production default, ``on``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from tests.support.migration_helpers import FAST
from tui_migrator.engine import batches as batches_module
from tui_migrator.engine.estimate import CALIBRATION_MIGRATION_ID
from tui_migrator.service.facade import MigratorService
from tui_migrator.storage.database import create_database_engine, serialized_write
from tui_migrator.storage.migration_status import Status

pytestmark = [pytest.mark.backends("postgresql"), pytest.mark.postgresql]


def synchronous_commit(connection: sa.Connection) -> str:
    return str(connection.exec_driver_sql("SHOW synchronous_commit").scalar_one())


def commits_synchronously(engine: sa.Engine) -> None:
    """The server's default for new sessions of this database, as on a production server."""
    with engine.connect() as connection:
        name = connection.exec_driver_sql("SELECT current_database()").scalar_one()
        connection.exec_driver_sql(f'ALTER DATABASE "{name}" SET synchronous_commit = on')
        connection.commit()
    engine.dispose()  # sessions opened from now on take the database's setting


@pytest.fixture
def engine(empty_postgres_database: str) -> Iterator[sa.Engine]:
    engine = create_database_engine(empty_postgres_database)
    commits_synchronously(engine)
    with serialized_write(engine) as connection:
        connection.exec_driver_sql("CREATE TABLE t (x integer)")
    yield engine
    engine.dispose()


def test_a_batch_write_is_not_waited_for_and_the_session_keeps_its_setting(engine: sa.Engine) -> None:
    with serialized_write(engine, durable=False) as connection:
        assert synchronous_commit(connection) == "off"
        connection.exec_driver_sql("INSERT INTO t VALUES (1)")
        session = connection.connection.driver_connection
    with serialized_write(engine) as connection:
        # The same pooled session: SET LOCAL ended with the batch's transaction.
        assert connection.connection.driver_connection is session
        assert synchronous_commit(connection) == "on"
        assert connection.exec_driver_sql("SELECT count(*) FROM t").scalar_one() == 1


def test_a_failed_batch_leaves_the_setting_as_it_was(engine: sa.Engine) -> None:
    with pytest.raises(RuntimeError), serialized_write(engine, durable=False) as connection:
        connection.exec_driver_sql("INSERT INTO t VALUES (1)")
        raise RuntimeError("the batch failed")
    with serialized_write(engine) as connection:
        assert synchronous_commit(connection) == "on"
        assert connection.exec_driver_sql("SELECT count(*) FROM t").scalar_one() == 0


def test_a_runs_claimed_batches_commit_without_waiting_and_its_audit_with(
    service: MigratorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every batch of a real run (claimed with row locks, written in the claim's transaction)
    commits unsynced; the audit entries the run writes commit as the server says."""
    commits_synchronously(service.engine)
    batch_settings: list[str] = []
    real_write_in = batches_module.TableBatches.write_in

    def write_and_note(self, connection, *args, **kwargs):  # type: ignore[no-untyped-def]
        # The start's calibration writes too, in a transaction it rolls back: no commit at all.
        if self.migration_id != CALIBRATION_MIGRATION_ID:
            batch_settings.append(synchronous_commit(connection))
        return real_write_in(self, connection, *args, **kwargs)

    monkeypatch.setattr(batches_module.TableBatches, "write_in", write_and_note)
    record = service.start(FAST)
    assert record.status is Status.COMPLETED
    assert len(batch_settings) > 1 and set(batch_settings) == {"off"}
    with serialized_write(service.engine) as connection:
        assert synchronous_commit(connection) == "on"
