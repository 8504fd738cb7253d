"""Building and rebuilding the demo database. 'demo' drops tables, so everything here first
refuses a database it may not replace: one tui-migrator did not mark as its demo (tables that
merely share the demo's names may be a real deployment's data), or a demo that also holds
other tables. It must never be able to touch a real deployment's data.

The mark (``tm_meta`` row ``demo_database``, see :func:`demo.build_marked_demo_database`) is
written before any demo table is created, so a database holding the demo dataset is always
marked, even when a build was interrupted."""

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

# How many tables a refusal names before it says "…".
SHOWN_TABLES = 5


def database_has_content(settings: Settings) -> bool:
    """Whether the configured database holds any table (so rebuilding it would replace something)."""
    if settings.uses_embedded_database and not (settings.data_dir / DEMO_DATABASE_FILENAME).exists():
        return False
    engine = create_database_engine(settings.effective_database_url)
    try:
        return has_tables(engine)
    finally:
        engine.dispose()


def check_demo_target(settings: Settings, *, patients: int, organizations: int) -> bool:
    """Refuse sizes the demo cannot build and a database 'demo' may not replace, before anything
    is opened or set up there. True when the database is empty (the demo is built new in it),
    False when it is a demo database (the caller rebuilds it through a session)."""
    demo.validate_demo_size(patients, organizations)
    if settings.uses_embedded_database:
        ensure_data_dir(settings)
    engine = create_database_engine(settings.effective_database_url)
    try:
        refuse_non_demo_database(engine, settings)
        return not has_tables(engine)
    finally:
        engine.dispose()


def build_new_demo(session: Session, *, patients: int, organizations: int, seed: int) -> demo.DemoSummary:
    """Fill a database this session has just set up (it was empty when 'demo' checked it): mark
    it as the demo, then build the demo dataset."""
    others = sorted(
        name for name in sa.inspect(session.engine).get_table_names() if not name.startswith(TABLE_PREFIX)
    )
    if others:
        raise ConfigError(
            f"The database at {redacted(session.engine.url)} was empty when 'demo' checked it but "
            f"now holds tables ({_shown(others)}); nothing was built.",
            hint="Make sure nothing else writes to this database, then run 'demo' again.",
        )
    summary = demo.build_marked_demo_database(
        session.engine, patients=patients, organizations=organizations, seed=seed
    )
    session.forget_database_state()
    return summary


def rebuild_demo(session: Session, *, patients: int, organizations: int, seed: int) -> demo.DemoSummary:
    """Drop and rebuild the demo data and the tool's tables in this database.

    The order keeps the database marked whenever it holds demo tables: the demo tables go
    first, then the tool's tables (with the mark); the tool's tables and the mark come back
    before the demo dataset is built again."""
    demo.validate_demo_size(patients, organizations)
    authorize(session, Action.REBUILD_DEMO, "demo")
    refuse_non_demo_database(session.engine, session.settings)
    demo.drop_demo_tables(session.engine)
    drop_tool_tables(session.engine)
    session.forget_database_state()
    create_tool_tables(
        session.engine, key_fingerprint=session.master_key.fingerprint, created_by=session.user
    )
    set_up(session)
    summary = demo.build_marked_demo_database(
        session.engine, patients=patients, organizations=organizations, seed=seed
    )
    session.forget_database_state()
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


def refuse_non_demo_database(engine: Engine, settings: Settings) -> None:
    """The one home of the rule for what 'demo' may replace: an empty database (it will be
    built) or one tui-migrator marked as its demo and holding nothing but the demo's and the
    tool's tables. Anything else raises :class:`ConfigError`, naming the tables at stake."""
    names = sa.inspect(engine).get_table_names()
    if not names:
        return
    if demo.demo_mark(engine) is None:
        raise _not_a_demo(engine, settings, names)
    foreign = sorted(
        name for name in names if name not in demo.DEMO_TABLE_NAMES and not name.startswith(TABLE_PREFIX)
    )
    if foreign:
        raise ConfigError(
            f"The database at {redacted(engine.url)} holds tables that are not part of the demo "
            f"({_shown(foreign)}); 'demo' rebuilds only a demo database.",
            hint="Point --db at an empty or demo database.",
        )


def _not_a_demo(engine: Engine, settings: Settings, names: list[str]) -> ConfigError:
    # The tables a rebuild would drop: the demo's and the tool's (the tool's hold the keys
    # without which encrypted data cannot be read).
    dropped = sorted(name for name in names if name in demo.DEMO_TABLE_NAMES) + sorted(
        name for name in names if name.startswith(TABLE_PREFIX)
    )
    what = f"The database at {redacted(engine.url)} was not created as a demo database by tui-migrator"
    if dropped:
        what += f"; its tables {_shown(dropped)} would be dropped."
    else:
        what += (
            f"; it holds other tables ({_shown(sorted(names))}), and 'demo' builds only into an empty one."
        )
    hint = "Point --db at an empty database or a demo database. Nothing was changed."
    if settings.uses_embedded_database:
        hint += (
            " This is the embedded database: if an older tui-migrator built it (before demo "
            f"databases were marked), delete {settings.data_dir / DEMO_DATABASE_FILENAME} and run "
            "'demo' again to recreate it."
        )
    else:
        hint += " A demo database built before demo databases were marked is refused too: empty it first."
    return ConfigError(what, hint=hint)


def _shown(names: list[str]) -> str:
    return ", ".join(names[:SHOWN_TABLES]) + ("…" if len(names) > SHOWN_TABLES else "")
