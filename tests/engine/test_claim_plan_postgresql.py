"""A claimed batch asks, per row, for the row's backup (to compare with the row, or to know it
has none) by one probe of the backup's key, never by reading the whole backup table.

The claim runs once per batch. Asked as EXISTS, PostgreSQL planned a hashed subplan: the whole
backup table read and hashed for every claim (50 ms a claim at 100,000 backed-up rows, where the
probes take 3 ms). The test looks at the plan PostgreSQL chooses for the claim, on a table as
large as the benchmark's, once its rows are backed up: the backup table is reached through its
key's index, once per row claimed."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from tui_migrator.crypto.ciphers import ValueCipher
from tui_migrator.crypto.data_keys import ThrowawayKeys
from tui_migrator.crypto.keys import MasterKey
from tui_migrator.engine import backup
from tui_migrator.engine.batches import BACKUP_HELD, TableBatches
from tui_migrator.storage.column_storage import reflect
from tui_migrator.storage.database import create_database_engine
from tui_migrator.storage.mapping import parse_mapping, resolve_mapping

pytestmark = pytest.mark.postgresql

ROWS = 100_000
MAPPING = {
    "tables": [
        {"name": "records", "category": "DEMOGRAPHICS", "primary_key": "id", "organization_column": "org",
         "columns": ["name", "notes"]},
    ]
}  # fmt: skip


@pytest.fixture
def engine(empty_postgres_database: str) -> Iterator[sa.Engine]:
    engine = create_database_engine(empty_postgres_database)
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "CREATE TABLE records (id integer PRIMARY KEY, org text, name text, notes text)"
        )
        connection.exec_driver_sql(
            f"INSERT INTO records SELECT n, 'org_1', 'name ' || n, 'notes ' || n FROM generate_series(1, {ROWS}) n"
        )
    yield engine
    engine.dispose()


def _plan_nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _plan_nodes(child)


def test_the_claim_probes_the_backup_by_key_for_each_row_never_hashes_the_backup_table(
    engine: sa.Engine,
) -> None:
    mapping = resolve_mapping(parse_mapping(MAPPING, source="test"), engine, source="test")
    with engine.begin() as connection:
        access = reflect(connection, mapping.tables[0])
        name = backup.backup_table_name("migration_20261204_001", "records")
        backup_table = backup.create_backup_table(connection, access, name)
        connection.exec_driver_sql(f"INSERT INTO {name} SELECT id, '\\x00'::bytea FROM records")
        # The first row the claim takes has no backup (the application inserted it since, say).
        connection.exec_driver_sql(f"DELETE FROM {name} WHERE id = {ROWS // 2 + 1}")
        connection.exec_driver_sql(f"ANALYZE {name}")
        connection.exec_driver_sql("ANALYZE records")
    master = MasterKey(os.urandom(32), "test")
    batches = TableBatches(
        engine,
        access,
        migration_id="migration_20261204_001",
        organizations=None,
        cipher=ValueCipher(ThrowawayKeys(), master, actor="test"),
        master_key=master,
        backup_table=backup_table,
        dry_run=False,
        epoch=None,
    )
    # As a claimed batch reads it (batch_source.ClaimedSource): mid-table, its rows locked.
    claim = batches.pending_query(after=(ROWS // 2,), limit=1000).with_for_update(
        of=access.table, skip_locked=True
    )
    compiled = claim.compile(dialect=engine.dialect)
    with engine.begin() as connection:
        [[plans]] = connection.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {compiled.string}", compiled.params)
        rows = connection.execute(claim).mappings().all()

    nodes = list(_plan_nodes(plans[0]["Plan"]))
    on_backup = [node for node in nodes if node.get("Relation Name") == name]
    assert on_backup, nodes
    assert all(node["Node Type"] in ("Index Only Scan", "Index Scan") for node in on_backup), on_backup
    assert not [node for node in nodes if "hashed" in node.get("Subplan Name", "")], nodes
    # And what it asks is what it means: the row without a backup is the one said to have none.
    assert [row["id"] for row in rows if row[BACKUP_HELD] is None] == [ROWS // 2 + 1]
    assert len(rows) == 1000 and rows[0][BACKUP_HELD] is None
