"""Building and rebuilding the demo database. 'demo' drops tables, so everything here first
refuses a database holding anything but demo and tool tables: it must never be able to touch a
real deployment's data."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tui_migrator import demo
from tui_migrator.common.errors import ConfigError
from tui_migrator.common.settings import DEMO_DATABASE_FILENAME, Settings
from tui_migrator.service.access import authorize
from tui_migrator.service.opening import ensure_data_dir, set_up
from tui_migrator.service.session import Session
from tui_migrator.storage.audit_operations import AuditOperation
from tui_migrator.storage.database import create_database_engine, has_tables, redacted
from tui_migrator.storage.operators import Action
from tui_migrator.storage.tables import TABLE_PREFIX, create_tool_tables, drop_tool_tables

# How many foreign tables a refusal names before it says "…".
SHOWN_FOREIGN_TABLES = 5


def database_has_content(settings: Settings) -> bool:
    """Whether the configured database holds any table (so rebuilding it would replace something)."""
    if settings.uses_embedded_database and not (settings.data_dir / DEMO_DATABASE_FILENAME).exists():
        return False
    engine = create_database_engine(settings.effective_database_url)
    try:
        return has_tables(engine)
    finally:
        engine.dispose()


def build_if_new(
    settings: Settings, *, patients: int, organizations: int, seed: int
) -> demo.DemoSummary | None:
    """Fill an empty database with the demo dataset; None if it already holds demo tables (the
    caller rebuilds those through a session, as the operator it opens for)."""
    demo.validate_demo_size(patients, organizations)
    if settings.uses_embedded_database:
        ensure_data_dir(settings)
    engine = create_database_engine(settings.effective_database_url)
    try:
        refuse_non_demo_database(engine)
        if has_tables(engine):
            return None
        return demo.build_demo_database(engine, patients=patients, organizations=organizations, seed=seed)
    finally:
        engine.dispose()


def rebuild_demo(session: Session, *, patients: int, organizations: int, seed: int) -> demo.DemoSummary:
    """Drop and rebuild the demo data and the tool's tables in this database."""
    demo.validate_demo_size(patients, organizations)
    authorize(session, Action.REBUILD_DEMO, "demo")
    refuse_non_demo_database(session.engine)
    drop_tool_tables(session.engine)
    summary = demo.build_demo_database(
        session.engine, patients=patients, organizations=organizations, seed=seed
    )
    session.forget_database_state()
    create_tool_tables(
        session.engine, key_fingerprint=session.master_key.fingerprint, created_by=session.user
    )
    set_up(session)
    session.audit.record(
        AuditOperation.DEMO_REBUILT,
        user_id=session.user,
        success=True,
        details={
            "patients": patients,
            "organizations": organizations,
            "seed": seed,
            "sensitiveRecords": summary.sensitive_records,
        },
    )
    return summary


def refuse_non_demo_database(engine: Engine) -> None:
    foreign = sorted(
        name
        for name in sa.inspect(engine).get_table_names()
        if name not in demo.DEMO_TABLE_NAMES and not name.startswith(TABLE_PREFIX)
    )
    if foreign:
        shown = ", ".join(foreign[:SHOWN_FOREIGN_TABLES]) + (
            "…" if len(foreign) > SHOWN_FOREIGN_TABLES else ""
        )
        raise ConfigError(
            f"The database at {redacted(engine.url)} holds tables that are not part of the demo "
            f"({shown}); 'demo' rebuilds only a demo database.",
            hint="Point --db at an empty or demo database.",
        )
