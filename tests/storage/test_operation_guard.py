"""busy() tells whether a rollback, purge or sweep holds a migration's guard, in this process or
another, and never takes or drops anyone's lock while it looks."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from tests.support.databases import BOTH_BACKENDS
from tests.support.postgres_cluster import PostgresCluster
from tui_migrator.common.errors import BadInput
from tui_migrator.service.facade import MigratorService
from tui_migrator.storage import operation_guard

pytestmark = BOTH_BACKENDS


def guard_holder(service: MigratorService) -> subprocess.Popen[str]:
    """Another process that takes the guard of "m1" and prints "held"; at a line on its stdin it
    lets go and prints "let go"; at the next it ends."""
    url = service.engine.url.render_as_string(hide_password=False)
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys, sqlalchemy as sa
                from tui_migrator.storage import operation_guard
                engine = sa.create_engine({url!r})
                with operation_guard.exclusive(engine, "m1", "sweep"):
                    print("held", flush=True)
                    sys.stdin.readline()
                print("let go", flush=True)
                sys.stdin.readline()
                """
            ),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def test_busy_sees_a_guard_held_in_this_process_and_leaves_it_held(service: MigratorService) -> None:
    engine = service.engine
    assert not operation_guard.busy(engine, "m1")
    with operation_guard.exclusive(engine, "m1", "sweep"):
        assert operation_guard.busy(engine, "m1")
        assert operation_guard.busy(engine, "m1")  # looking twice released nothing
        assert not operation_guard.busy(engine, "m2")
        with pytest.raises(BadInput, match="is running"), operation_guard.exclusive(engine, "m1", "rollback"):
            pass
    assert not operation_guard.busy(engine, "m1")


def test_busy_sees_a_guard_held_by_another_process(service: MigratorService) -> None:
    holder = guard_holder(service)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert operation_guard.busy(service.engine, "m1")
        with pytest.raises(BadInput), operation_guard.exclusive(service.engine, "m1", "sweep"):
            pass
    finally:
        assert holder.stdin is not None
        holder.stdin.write("\n\n")  # let go, then end
        holder.stdin.flush()
        holder.wait(timeout=30)
    assert not operation_guard.busy(service.engine, "m1")


def test_an_operation_meeting_the_guard_held_for_a_moment_takes_it_when_it_is_let_go(
    service: MigratorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A monitor's look (busy) holds the guard for a moment; an operation that meets it then is
    not refused but tries again (a detached rollback refused that way left its migration marked
    as rolling back for ever). Here another process holds it and lets it go as soon as the
    operation has found it taken once."""
    holder = guard_holder(service)
    found_taken: list[bool] = []

    def let_go_once() -> None:
        assert holder.stdin is not None and holder.stdout is not None
        if not found_taken:
            holder.stdin.write("\n")
            holder.stdin.flush()
            assert holder.stdout.readline().strip() == "let go"
        found_taken.append(True)

    monkeypatch.setattr(operation_guard, "_pause", let_go_once)
    monkeypatch.setattr(operation_guard, "GUARD_GRACE_SECONDS", 60.0)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with operation_guard.exclusive(service.engine, "m1", "rollback"):
            assert found_taken == [True]  # taken at the second try, once the holder let go
            assert operation_guard.busy(service.engine, "m1")
    finally:
        assert holder.stdin is not None
        holder.stdin.write("\n\n")  # let go (if the operation did not ask it to), then end
        holder.stdin.flush()
        holder.wait(timeout=30)
    assert not operation_guard.busy(service.engine, "m1")


@pytest.mark.backends("postgresql")
def test_on_postgresql_a_look_takes_no_lock_and_sees_only_its_own_databases_guard(
    service: MigratorService, postgres_cluster: PostgresCluster
) -> None:
    """busy() reads pg_locks: no lock function runs, so a monitor polling it can never meet an
    operation starting at that moment; the same keys locked in another database are not the
    migration's guard."""
    sent: list[str] = []
    listen = event.listens_for(service.engine, "before_cursor_execute")
    listen(lambda _conn, _cursor, statement, *_rest: sent.append(statement))

    holder = guard_holder(service)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert operation_guard.busy(service.engine, "m1")
    finally:
        assert holder.stdin is not None
        holder.stdin.write("\n\n")
        holder.stdin.flush()
        holder.wait(timeout=30)
    assert not operation_guard.busy(service.engine, "m1")
    assert sent and not any("advisory" in statement and "lock(" in statement for statement in sent), sent

    elsewhere = sa.create_engine(postgres_cluster.url("postgres"))
    try:
        with operation_guard.exclusive(elsewhere, "m1", "sweep"):
            assert operation_guard.busy(elsewhere, "m1")
            assert not operation_guard.busy(service.engine, "m1")
    finally:
        elsewhere.dispose()
