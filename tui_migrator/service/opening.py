"""Opening a session: connect, set the tool up on first use, and prove the master key matches
the one the database was set up with — before anything else can run."""

from __future__ import annotations

import hmac
import logging
import sqlite3
from contextlib import closing
from functools import partial
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine

from tui_migrator import demo
from tui_migrator.common.errors import ConfigError, PermissionDenied, WrongMasterKey
from tui_migrator.common.settings import DEMO_DATABASE_FILENAME, Settings
from tui_migrator.crypto.keys import MasterKey, Purpose, load_master_key
from tui_migrator.service.access import make_first_super_admin
from tui_migrator.service.session import Session
from tui_migrator.storage import operators
from tui_migrator.storage.audit import AuditTrail
from tui_migrator.storage.database import create_database_engine, parse_url, redacted
from tui_migrator.storage.master_key_rotation import with_stored_root
from tui_migrator.storage.secure_delete import overwrite_deleted_content
from tui_migrator.storage.tables import (
    META_KEY_FINGERPRINT,
    create_tool_tables,
    meta_table,
    read_meta,
    schema_is_current,
    tool_tables_exist,
    upgrade_tool_tables,
)

log = logging.getLogger(__name__)


class NotSetUp(ConfigError):
    """The database has no tool tables, and the command was not ``init`` (or ``demo``)."""

    code = "not_set_up"


def open_session(settings: Settings, *, user: str, may_set_up: bool = False) -> Session:
    """Connect and verify. Only with ``may_set_up`` (``init``, ``demo``, the first-run prompt) is a
    database without the tool's tables set up — with no database configured, the embedded
    demo database created and filled; otherwise such a database is refused before anything is
    written, not even a file or a master key."""
    if not may_set_up:
        refuse_unless_set_up(settings)
    elif settings.readonly and not is_set_up(settings):
        raise PermissionDenied(
            f"Setting up the database at {redacted(settings.effective_database_url)} writes to it, "
            "and this session is read-only (--readonly); nothing was written.",
            hint="Run it without --readonly.",
        )
    elif settings.uses_embedded_database:
        ensure_embedded_demo(settings, user)
    engine = create_database_engine(settings.effective_database_url, read_only=settings.readonly)
    # Before the first connection, so every connection of the session has it.
    overwrite_deleted_content(engine)
    try:
        return _connect(settings, engine, user, may_set_up=may_set_up)
    except BaseException:
        engine.dispose()
        raise


def is_set_up(settings: Settings) -> bool:
    """Whether the configured database holds the tool's tables, found without writing anything:
    a SQLite file that does not exist is not created, and one that does is opened read-only
    (the engine would switch it to WAL, which rewrites its header)."""
    url = parse_url(settings.effective_database_url)
    if url.get_backend_name() == "sqlite":
        existing = _existing_sqlite_file(url)
        if existing is None:
            return False
        try:
            with _read_only_sqlite(existing) as file:
                found = file.execute(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (meta_table.name,)
                ).fetchone()
            return found is not None
        except sqlite3.Error:
            pass  # (e.g. a WAL file it may not create read-only): the engine's look below
    engine = create_database_engine(settings.effective_database_url, read_only=True)
    try:
        return tool_tables_exist(engine)
    except sa.exc.OperationalError as error:
        raise _cannot_connect(engine, error) from None
    finally:
        engine.dispose()


def sqlite_journal_mode(settings: Settings) -> str | None:
    """The journal mode of the configured SQLite file ("delete", "wal", ...), looked at without
    writing anything; None for PostgreSQL, a file not there, or one that cannot be read so. The
    tool's connections put a file in WAL mode (storage/database.py), which stays with it: `init`
    says so when it did."""
    existing = _existing_sqlite_file(parse_url(settings.effective_database_url))
    if existing is None:
        return None
    try:
        with _read_only_sqlite(existing) as file:
            return str(file.execute("PRAGMA journal_mode").fetchone()[0]).lower()
    except sqlite3.Error:
        return None


def _existing_sqlite_file(url: URL) -> Path | None:
    """The SQLite file ``url`` names, where it exists; None for another database, one in
    memory, or a file not there yet."""
    path = url.database
    if url.get_backend_name() != "sqlite" or not path or path == ":memory:" or not Path(path).exists():
        return None
    return Path(path)


def _read_only_sqlite(path: Path) -> closing[sqlite3.Connection]:
    """The file opened read-only through SQLite (its own descriptors: see engine/database_files.py
    on why never one of this process's own), which neither creates nor switches it to WAL."""
    return closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True))


def refuse_unless_set_up(settings: Settings) -> None:
    if not is_set_up(settings):
        raise _not_set_up(settings)


def _not_set_up(settings: Settings) -> NotSetUp:
    where = redacted(settings.effective_database_url)
    if settings.uses_embedded_database:
        return NotSetUp(
            f"There is no demo database at {settings.data_dir / DEMO_DATABASE_FILENAME} yet; nothing was written.",
            hint="Create it with: tui-migrator init (or open the app, which offers to), or name "
            "your database with --db.",
        )
    url = parse_url(settings.effective_database_url)
    if url.get_backend_name() == "sqlite" and url.database and not Path(url.database).exists():
        return NotSetUp(
            f"There is no database file at {url.database} (from {where}); nothing was created.",
            hint=f"Check the path; to create a database there and set it up: tui-migrator init --db '{where}'",
        )
    return NotSetUp(
        f"The database at {where} is not set up for tui-migrator (it has none of the tool's "
        "tables); nothing was written.",
        hint=f"Check the URL; to set it up (you become its first super_admin): tui-migrator init --db '{where}'",
    )


def _connect(settings: Settings, engine: Engine, user: str, *, may_set_up: bool) -> Session:
    try:
        initialized = tool_tables_exist(engine)
    except sa.exc.OperationalError as error:
        raise _cannot_connect(engine, error) from None
    if not initialized and not may_set_up:
        raise _not_set_up(settings)
    master_key = load_master_key(settings, create_if_missing=not initialized)
    if initialized:
        _check_fingerprint(engine, master_key, settings)
        with engine.connect() as connection:
            master_key = with_stored_root(connection, master_key)
        if settings.readonly and not schema_is_current(engine):
            raise ConfigError(
                f"The database at {redacted(engine.url)} was set up by an older version of "
                "tui-migrator; bringing its tables up to date writes to it, and this session is "
                "read-only (--readonly). Nothing was written.",
                hint="Open it once without --readonly (any command) to upgrade it.",
            )
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


def _cannot_connect(engine: Engine, error: sa.exc.DBAPIError) -> ConfigError:
    return ConfigError(
        f"Cannot connect to the database at {redacted(engine.url)}: {_driver_message(error)}",
        hint="Check --db / TUI_MIGRATOR_DB, that the server is running and the credentials.",
    )


def ensure_embedded_demo(settings: Settings, user: str) -> None:
    """Create the embedded demo database on first use: set the tool up in it, mark it as the
    demo, then fill it.

    The mark lives in the tool's tables and must be written before the demo tables exist (so
    'demo' may always replace this database), so the set-up happens here, as ``user``; the
    caller's own opening then finds it done.
    """
    path = settings.data_dir / DEMO_DATABASE_FILENAME
    if path.exists():
        return
    ensure_data_dir(settings)
    engine = create_database_engine(settings.effective_database_url)
    overwrite_deleted_content(engine)
    try:
        _connect(settings, engine, user, may_set_up=True)
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
