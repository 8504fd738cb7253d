"""A database's whole state, for tests that prove a command wrote nothing: every table's rows
(the audit trail apart, which a refusal extends), the audit entries, and a SQLite file's bytes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa

from tests.support.raw_files import file_bytes
from tui_migrator.common.settings import Settings
from tui_migrator.storage import tables


def database_state(settings: Settings) -> dict[str, Any]:
    """Every table's rows (the audit trail apart), and the audit entries."""
    engine = sa.create_engine(settings.effective_database_url)
    try:
        with engine.connect() as connection:
            names = sorted(sa.inspect(connection).get_table_names())
            state = {
                name: sorted(map(repr, connection.execute(sa.text(f'SELECT * FROM "{name}"')).all()))
                for name in names
                if name != tables.audit_table.name
            }
            audit = connection.execute(
                sa.select(tables.audit_table.c.seq, tables.audit_table.c.operation).order_by(
                    tables.audit_table.c.seq
                )
            ).all()
    finally:
        engine.dispose()
    return {"tables": state, "audit": [tuple(row) for row in audit]}


def sqlite_file_bytes(settings: Settings) -> bytes | None:
    if not settings.effective_database_url.startswith("sqlite"):
        return None
    engine = sa.create_engine(settings.effective_database_url)
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        engine.dispose()
    return file_bytes(Path(settings.effective_database_url.removeprefix("sqlite:///")))


def without_audit_head(state: dict[str, Any]) -> dict[str, Any]:
    """The tables but the audit head record, which a refusal's entry moves."""
    meta = [row for row in state["tables"][tables.meta_table.name] if "audit_head" not in row]
    return {**state["tables"], tables.meta_table.name: meta}
