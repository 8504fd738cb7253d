"""The PostgreSQL deployment the README recommends: a separate role owns tm_audit and its trigger
function, and the role the tool migrates as may only read and append to it. That role cannot
drop, disable or replace the triggers, nor edit or cut the trail, and the tool works as it."""

from __future__ import annotations

import itertools
import os

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import make_url

from tests.support.databases import ADMIN
from tui_migrator.common.settings import Settings
from tui_migrator.service.facade import MigratorService

pytestmark = pytest.mark.backends("postgresql")

_numbers = itertools.count()


def _split_ownership(admin_url: str) -> str:
    """As the cluster's superuser: every table to a migrating role, tm_audit and its function to
    an owner role; returns the migrating role's URL. Role names are unique per test (roles are
    cluster-wide; the throwaway cluster goes with them)."""
    suffix = f"{os.getpid()}_{next(_numbers)}"
    migrator, owner = f"tm_migrator_{suffix}", f"tm_audit_owner_{suffix}"
    url = make_url(admin_url)
    with psycopg.connect(
        host=url.host, port=url.port, user=url.username, dbname=url.database, autocommit=True
    ) as connection:
        connection.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(migrator)))
        connection.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(owner)))
        tables = [
            name
            for (name,) in connection.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
            )
        ]
        for table in tables:
            connection.execute(
                sql.SQL("ALTER TABLE {} OWNER TO {}").format(sql.Identifier(table), sql.Identifier(migrator))
            )
        connection.execute(sql.SQL("GRANT CREATE ON SCHEMA public TO {}").format(sql.Identifier(migrator)))
        connection.execute(sql.SQL("ALTER TABLE tm_audit OWNER TO {}").format(sql.Identifier(owner)))
        connection.execute(
            sql.SQL("ALTER FUNCTION tm_audit_append_only() OWNER TO {}").format(sql.Identifier(owner))
        )
        connection.execute(sql.SQL("GRANT SELECT, INSERT ON tm_audit TO {}").format(sql.Identifier(migrator)))
    return url.set(username=migrator).render_as_string(hide_password=False)


@pytest.mark.parametrize(
    "attempt",
    [
        "DROP TRIGGER tm_audit_no_update_delete ON tm_audit",
        "ALTER TABLE tm_audit DISABLE TRIGGER ALL",
        (
            "CREATE OR REPLACE FUNCTION tm_audit_append_only() RETURNS trigger LANGUAGE plpgsql "
            "AS $$ BEGIN RETURN OLD; END $$"
        ),
        "DELETE FROM tm_audit WHERE seq > 1",
        "UPDATE tm_audit SET user_id = 'mallory'",
        "TRUNCATE tm_audit",
    ],
)
def test_the_migrating_role_cannot_touch_the_trails_protection(
    backend: str, settings: Settings, service: MigratorService, attempt: str
) -> None:
    migrator_url = _split_ownership(settings.effective_database_url)
    url = make_url(migrator_url)
    before = service.audit_entries(limit=None).total_entries
    with (
        psycopg.connect(host=url.host, port=url.port, user=url.username, dbname=url.database) as connection,
        pytest.raises(psycopg.Error, match="must be owner|append-only|permission denied"),
    ):
        connection.execute(attempt)
    assert service.audit_entries(limit=None).total_entries == before
    assert service.verify_audit().intact


def test_the_tool_migrates_and_rolls_back_as_the_migrating_role(
    backend: str, settings: Settings, service: MigratorService
) -> None:
    migrator_url = _split_ownership(settings.effective_database_url)
    as_migrator = settings.model_copy(update={"database_url": migrator_url})
    with MigratorService.open(as_migrator, user=ADMIN) as migrating:
        assert migrating.health().system_health.audit_trail_protected
        record = migrating.start({"batch_size": 50, "data_categories": ["DEMOGRAPHICS"]})
        assert record.status.value == "completed"
        migrating.rollback(record.id, confirm=True)
        assert migrating.status(record.id).status.value == "rolled_back"
        verification = migrating.verify_audit()
    assert verification.intact
