"""Opening a session: connect, set the tool up on first use, and prove the master key matches
the one the database was set up with — before anything else can run."""

from __future__ import annotations

import hmac
import logging
from functools import partial

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from tui_migrator import demo
from tui_migrator.common.errors import ConfigError, WrongMasterKey
from tui_migrator.common.settings import DEMO_DATABASE_FILENAME, Settings
from tui_migrator.crypto.keys import MasterKey, Purpose, load_master_key
from tui_migrator.service.access import make_first_super_admin
from tui_migrator.service.session import Session
from tui_migrator.storage import operators
from tui_migrator.storage.audit import AuditTrail
from tui_migrator.storage.database import create_database_engine, redacted
from tui_migrator.storage.secure_delete import overwrite_deleted_content
from tui_migrator.storage.tables import (
    META_KEY_FINGERPRINT,
    create_tool_tables,
    read_meta,
    tool_tables_exist,
    upgrade_tool_tables,
)

log = logging.getLogger(__name__)


def open_session(settings: Settings, *, user: str) -> Session:
    """Connect and verify. With no database configured, the embedded SQLite demo database is
    created and filled on first use."""
    if settings.uses_embedded_database:
        ensure_embedded_demo(settings)
    engine = create_database_engine(settings.effective_database_url)
    # Before the first connection, so every connection of the session has it.
    overwrite_deleted_content(engine)
    try:
        return _connect(settings, engine, user)
    except BaseException:
        engine.dispose()
        raise


def _connect(settings: Settings, engine: Engine, user: str) -> Session:
    try:
        initialized = tool_tables_exist(engine)
    except sa.exc.OperationalError as error:
        raise ConfigError(
            f"Cannot connect to the database at {redacted(engine.url)}: {_driver_message(error)}",
            hint="Check --db / TUI_MIGRATOR_DB, that the server is running and the credentials.",
        ) from None
    master_key = load_master_key(settings, create_if_missing=not initialized)
    if initialized:
        _check_fingerprint(engine, master_key, settings)
        upgrade_tool_tables(engine, then=partial(_fill_upgraded_columns, engine, master_key))
    session = Session.start(settings, engine, master_key, user=user)
    if initialized:
        session.keyring.verify_all()
    elif create_tool_tables(engine, key_fingerprint=master_key.fingerprint, created_by=user):
        set_up(session)
    else:
        # Another process set the database up between our check and our attempt.
        _check_fingerprint(engine, master_key, settings)
    return session


def _fill_upgraded_columns(engine: Engine, master_key: MasterKey, connection: Connection) -> None:
    """What an upgrade to schema 4 adds needs the master key: roles written before they were
    authenticated get their proof, and a chain begun before chains had ids gets its id."""
    operators.prove_unproven_rows(connection, master_key.derive(Purpose.OPERATOR_ROLES))
    AuditTrail(engine, master_key).ensure_chain_identity(connection)


def set_up(session: Session) -> None:
    """The tool's tables were just created: their creator becomes the first super_admin."""
    make_first_super_admin(session)
    log.info("set up tui-migrator tables; %s is the first super_admin", session.user)


def ensure_embedded_demo(settings: Settings) -> None:
    """Create the embedded demo database on first use: set the tool up in it, mark it as the
    demo, then fill it.

    The mark lives in the tool's tables and must be written before the demo tables exist (so
    'demo' may always replace this database), so the set-up happens here, as the OS user, the
    user every face opens a session as; the caller's own set-up then finds it done.
    """
    path = settings.data_dir / DEMO_DATABASE_FILENAME
    if path.exists():
        return
    ensure_data_dir(settings)
    engine = create_database_engine(settings.effective_database_url)
    overwrite_deleted_content(engine)
    try:
        # Looked up on the module at each call, so tests can stand in for the OS user.
        _connect(settings, engine, operators.current_os_user())
        summary = demo.build_marked_demo_database(engine)
    finally:
        engine.dispose()
    log.info("created the demo database at %s (%d records)", path, summary.sensitive_records)


def ensure_data_dir(settings: Settings) -> None:
    # Owner-only: the directory holds the key file and the embedded database.
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)


def _check_fingerprint(engine: Engine, master_key: MasterKey, settings: Settings) -> None:
    with engine.connect() as connection:
        stored = read_meta(connection, META_KEY_FINGERPRINT)
    if stored is not None and not hmac.compare_digest(stored, master_key.fingerprint):
        hint = "Use the master key (or key file) this database was set up with. Nothing was changed."
        if settings.uses_embedded_database:
            hint += (
                f" For the demo database you may instead delete {settings.data_dir / DEMO_DATABASE_FILENAME}."
            )
        raise WrongMasterKey(
            f"The master key from {master_key.source} (fingerprint {master_key.fingerprint[:12]}) "
            f"is not the key the database at {redacted(engine.url)} was set up with "
            f"(fingerprint {stored[:12]}).",
            hint=hint,
        )


def _driver_message(error: sa.exc.DBAPIError) -> str:
    # The driver's own first line says what failed (refused connection, bad password) and,
    # with hide_parameters, carries no values.
    text = str(error.orig) if error.orig is not None else str(error)
    return text.strip().splitlines()[0] if text.strip() else type(error).__name__
