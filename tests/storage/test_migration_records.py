"""Migration records under contention: concurrent starts and concurrent claims of one migration."""

from __future__ import annotations

import pytest

from tests.support.databases import BOTH_BACKENDS
from tests.support.migration_helpers import (
    FAST,
)
from tui_migrator.common.errors import BadInput, OperationFailed
from tui_migrator.service.facade import MigratorService

pytestmark = BOTH_BACKENDS


@pytest.mark.backends("postgresql")
def test_concurrent_starts_get_distinct_ids_or_the_held_by_refusal(
    service: MigratorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL two starts can both count the day's migrations before either inserts."""
    import threading

    from tui_migrator.common.migration_config import parse_config
    from tui_migrator.storage import migration_creation

    real_new_id = migration_creation.new_migration_id
    barrier = threading.Barrier(2, timeout=20)
    waited = threading.local()

    def racing_new_id(connection, now):  # type: ignore[no-untyped-def]
        chosen = real_new_id(connection, now)
        if not getattr(waited, "done", False):
            waited.done = True
            barrier.wait()  # both have chosen an id before either inserts
        return chosen

    monkeypatch.setattr(migration_creation, "new_migration_id", racing_new_id)

    def race(config: dict[str, object]) -> list[object]:
        outcomes: list[object] = []

        def create() -> None:
            try:
                outcomes.append(
                    migration_creation.create(
                        service.engine,
                        config=parse_config(config),
                        created_by="alice",
                        tables=[("demographics", "DEMOGRAPHICS", 60)],
                        skipped_records=0,
                        estimated_seconds=None,
                        warnings=[],
                    )
                )
            except BadInput as error:
                outcomes.append(error)

        threads = [threading.Thread(target=create) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        barrier.reset()
        return outcomes

    dry_runs = race({"dry_run": True})
    assert len(dry_runs) == 2 and all(isinstance(o, str) for o in dry_runs)
    assert dry_runs[0] != dry_runs[1]

    real_runs = race({})
    started = [o for o in real_runs if isinstance(o, str)]
    refused = [o for o in real_runs if isinstance(o, BadInput)]
    assert len(started) == 1 and len(refused) == 1
    assert f"held by migration {started[0]}" in str(refused[0])
    _, everything = service.list_migrations()
    assert sorted(r.id for r in everything) == sorted([*dry_runs, started[0]])


def test_two_workers_claiming_one_migration_at_once_one_is_refused(
    service: MigratorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each worker reads the migration, sees nobody running it, and takes it: only one may."""
    import contextlib
    import threading

    from tui_migrator.common.migration_config import parse_config
    from tui_migrator.storage import migration_claims, migration_creation
    from tui_migrator.storage import migration_records as migrations

    migration_id = migration_creation.create(
        service.engine,
        config=parse_config(FAST),
        created_by="alice",
        tables=[("demographics", "DEMOGRAPHICS", 60)],
        skipped_records=0,
        estimated_seconds=None,
        warnings=[],
    )
    real_load = migrations.load
    # Both claims wait here after reading, unless the first one's read locked the row, so the
    # second cannot read before the first has written (then the wait times out).
    both_read = threading.Barrier(2, timeout=1.5)

    def load_then_wait(connection, wanted, **options):  # type: ignore[no-untyped-def]
        record = real_load(connection, wanted, **options)
        if threading.current_thread().name.startswith("claim-"):
            with contextlib.suppress(threading.BrokenBarrierError):
                both_read.wait()
        return record

    monkeypatch.setattr(migrations, "load", load_then_wait)
    outcomes: dict[str, object] = {}

    def claim(worker: str) -> None:
        try:
            outcomes[worker] = migration_claims.claim_for_run(
                service.engine, migration_id, worker
            ).record.worker
        except OperationFailed as error:
            outcomes[worker] = error

    threads = [threading.Thread(target=claim, args=(w,), name=f"claim-{w}") for w in ("w1", "w2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    winners = [worker for worker, outcome in outcomes.items() if outcome == worker]
    refused = [outcome for outcome in outcomes.values() if isinstance(outcome, OperationFailed)]
    assert len(winners) == 1 and len(refused) == 1, outcomes
    assert f"already being run by {winners[0]}" in str(refused[0])
