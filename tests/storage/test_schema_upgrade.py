"""A database set up by schema version 1 is brought to the current schema when opened, and a
migration it completed before the upgrade still rolls back byte for byte; one set up before
tm_api_tokens existed (version 4) gets the table."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests.support.databases import ADMIN, BOTH_BACKENDS
from tests.support.migration_helpers import FAST, raw_dump
from tui_migrator.common.errors import ConfigError
from tui_migrator.common.settings import Settings
from tui_migrator.service.facade import MigratorService
from tui_migrator.storage.migration_status import Status
from tui_migrator.storage.tables import META_SCHEMA_VERSION, SCHEMA_VERSION, read_meta

# The columns schema version 2 added (all nullable).
ADDED_IN_VERSION_2 = {"tm_row_metadata": ["sealed_columns"], "tm_migrations": ["swept_at", "sweep"]}


def downgrade_to_version_1(engine: sa.Engine) -> None:
    """What a version-1 database looks like: without the columns, version '1'. Row metadata
    written then had no column list (every mapped column was its migration's)."""
    with engine.begin() as connection:
        for table, columns in ADDED_IN_VERSION_2.items():
            for column in columns:
                connection.exec_driver_sql(f'ALTER TABLE "{table}" DROP COLUMN "{column}"')
        connection.exec_driver_sql("UPDATE tm_meta SET value = '1' WHERE name = 'schema_version'")


@BOTH_BACKENDS
def test_a_version_1_database_is_upgraded_on_open_and_its_migration_still_rolls_back(
    settings: Settings,
) -> None:
    with MigratorService.open(settings, user=ADMIN) as service:
        before = raw_dump(service.engine)
        record = service.start({"data_categories": ["MOTOR_SYMPTOMS"], **FAST})
        assert record.status is Status.COMPLETED, record.error_message
        downgrade_to_version_1(service.engine)

    with MigratorService.open(settings, user=ADMIN) as service:
        inspector = sa.inspect(service.engine)
        for table, columns in ADDED_IN_VERSION_2.items():
            assert set(columns) <= {column["name"] for column in inspector.get_columns(table)}
        with service.engine.connect() as connection:
            assert read_meta(connection, META_SCHEMA_VERSION) == SCHEMA_VERSION
            # Version-1 row metadata keeps its meaning: NULL = the whole row.
            assert (
                connection.exec_driver_sql(
                    "SELECT count(*) FROM tm_row_metadata WHERE sealed_columns IS NOT NULL"
                ).scalar_one()
                == 0
            )
        assert service.status(record.id).status is Status.COMPLETED
        service.rollback(record.id, confirm=True)
        assert raw_dump(service.engine) == before


def _version_and_columns(url: str) -> tuple[str | None, dict[str, set[str]]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            inspector = sa.inspect(connection)
            columns = {
                table: {c["name"] for c in inspector.get_columns(table)} for table in ADDED_IN_VERSION_2
            }
            return read_meta(connection, META_SCHEMA_VERSION), columns
    finally:
        engine.dispose()


@BOTH_BACKENDS
def test_a_readonly_session_does_not_upgrade_an_older_database(settings: Settings) -> None:
    with MigratorService.open(settings, user=ADMIN) as service:
        downgrade_to_version_1(service.engine)
        before = raw_dump(service.engine)
    old = _version_and_columns(settings.effective_database_url)
    assert old[0] == "1"
    with pytest.raises(ConfigError, match="older version.*read-only"):
        MigratorService.open(settings.model_copy(update={"readonly": True}), user=ADMIN)
    assert _version_and_columns(settings.effective_database_url) == old
    # Opened once without --readonly, it is brought up to date; the data is untouched.
    MigratorService.open(settings, user=ADMIN).close()
    version, columns = _version_and_columns(settings.effective_database_url)
    assert version == SCHEMA_VERSION
    assert all(old[1][table] < columns[table] for table in ADDED_IN_VERSION_2)
    engine = sa.create_engine(settings.effective_database_url)
    try:
        assert raw_dump(engine) == before
    finally:
        engine.dispose()


@BOTH_BACKENDS
def test_a_version_4_database_gets_the_api_tokens_table_when_opened(settings: Settings) -> None:
    with MigratorService.open(settings, user=ADMIN) as service, service.engine.begin() as connection:
        connection.exec_driver_sql('DROP TABLE "tm_api_tokens"')
        connection.exec_driver_sql("UPDATE tm_meta SET value = '4' WHERE name = 'schema_version'")
    engine = sa.create_engine(settings.effective_database_url)
    try:
        assert not sa.inspect(engine).has_table("tm_api_tokens")
        with pytest.raises(ConfigError, match="older version.*read-only"):
            MigratorService.open(settings.model_copy(update={"readonly": True}), user=ADMIN)
        assert not sa.inspect(engine).has_table("tm_api_tokens")
    finally:
        engine.dispose()

    with MigratorService.open(settings, user=ADMIN) as service:
        assert sa.inspect(service.engine).has_table("tm_api_tokens")
        with service.engine.connect() as connection:
            assert read_meta(connection, META_SCHEMA_VERSION) == SCHEMA_VERSION
        token, info = service.create_api_token(None)
        assert service.authenticate_api_token(token).operator == ADMIN
        assert [t.token_id for t in service.list_api_tokens()] == [info.token_id]
        assert service.verify_audit(record=False).intact
