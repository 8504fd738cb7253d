"""A worker joining a migration from the machine its owner already keeps busy on every core is
told so at once: it competes with the owner for those cores instead of adding one (measured: on
two cores a second worker made the run slower, see README → Performance)."""

from __future__ import annotations

import dataclasses

from tui_migrator.engine.cpu_pool import MIGRATION_WORKERS_FROM_ROWS
from tui_migrator.engine.joiner import crowding_warning
from tui_migrator.service.facade import MigratorService
from tui_migrator.storage.migration_records import MigrationRecord, worker_host


def _owned(
    service: MigratorService, worker: str, max_concurrency: int, rows: int = MIGRATION_WORKERS_FROM_ROWS
) -> MigrationRecord:
    """The demo's dry run as if ``worker`` ran it over ``rows`` rows (large enough for worker
    processes unless said otherwise)."""
    record = service.start({"batch_size": 500, "dry_run": True})
    config = record.config.model_copy(update={"max_concurrency": max_concurrency})
    return dataclasses.replace(record, worker=worker, config=config, total_records=rows)


def test_joining_the_owner_on_its_own_busy_machine_is_warned_of_and_elsewhere_not(
    service: MigratorService,
) -> None:
    busy = _owned(service, "db-host-1:4242", max_concurrency=4)
    warning = crowding_warning(busy, here="db-host-1", cores=2)
    assert warning is not None
    assert "db-host-1:4242" in warning and "each of its 2 cores" in warning
    assert "--max-concurrency 4" in warning and "another machine" in warning
    # Another machine brings cores of its own.
    assert crowding_warning(busy, here="db-host-2", cores=2) is None
    # More cores than the owner has worker processes: one is left for the joiner.
    assert crowding_warning(busy, here="db-host-1", cores=8) is None


def test_an_owner_without_worker_processes_leaves_a_core_for_a_joiner(service: MigratorService) -> None:
    # At --max-concurrency 1 the owner does its work in its own process (one core at most).
    single = _owned(service, "db-host-1:4242", max_concurrency=1)
    assert crowding_warning(single, here="db-host-1", cores=2) is None
    # Nor does it with fewer rows than worker processes are started for.
    small = _owned(service, "db-host-1:4242", max_concurrency=4, rows=MIGRATION_WORKERS_FROM_ROWS - 1)
    assert crowding_warning(small, here="db-host-1", cores=2) is None


def test_a_worker_identity_names_its_machine_whatever_the_hosts_name_holds() -> None:
    assert worker_host("db-host-1:4242") == "db-host-1"
    # An IPv6 literal as a host name still splits at the last colon: the process id follows it.
    assert worker_host("fe80::1:77") == "fe80::1"
