"""Engine creation with the settings every dialect needs for safe, concurrent use.

SQLite is the embedded default, PostgreSQL the production target; nothing here may work on one
only by accident. Parameters are hidden from SQLAlchemy's exception messages and logs so patient
values never leak through an error.
"""

from __future__ import annotations

import operator
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError, NoSuchModuleError
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.selectable import TableValuedAlias

from tui_migrator.common.errors import ConfigError
from tui_migrator.storage.text_arrays import TEXT_ARRAY_SQL, text_array_text

# How long a SQLite writer waits for another process's write lock before giving up.
SQLITE_BUSY_TIMEOUT_MS = 30_000
_IMMEDIATE = "tui_migrator_immediate"
_AFTER_COMMIT = "tui_migrator_after_commit"
# connection info: the synchronous level a non-durable write restores (see serialized_write)
_SYNCHRONOUS = "tui_migrator_synchronous"
_NORMAL = 1
_WAL_SWITCH_RETRY_SECONDS = 0.01
SUPPORTED_DIALECTS = ("sqlite", "postgresql")
SUPPORTED_DIALECTS_HINT = "Use a sqlite:/// or postgresql+psycopg:// database URL."


def parse_url(url: str) -> URL:
    try:
        return make_url(url)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        # A URL that does not parse cannot be redacted the usual way: everything from the first
        # ':' to the last '@' (where user and password would be) is hidden instead.
        head, colon, rest = url.partition(":")
        shown = f"{head}{colon}***@{rest.rsplit('@', 1)[1]}" if "@" in rest else url
        raise ConfigError(
            f"The database URL '{shown}' is not a valid SQLAlchemy URL.",
            hint="Use e.g. sqlite:////path/to/file.db or postgresql+psycopg://user@host/dbname.",
        ) from None


def redacted(url: str | URL) -> str:
    """The URL with its password hidden, for messages and logs."""
    parsed = url if isinstance(url, URL) else parse_url(url)
    return parsed.render_as_string(hide_password=True)


def create_database_engine(url: str | URL, *, read_only: bool = False) -> Engine:
    """Create an engine for ``url`` with parameters hidden and SQLite made safe for many processes.

    ``read_only`` (a ``--readonly`` session, a look that must write nothing): a SQLite file is
    left in the journal mode it has, where otherwise the connections switch it to WAL (which
    rewrites its header)."""
    parsed = url if isinstance(url, URL) else parse_url(url)
    if parsed.get_backend_name() not in SUPPORTED_DIALECTS:
        raise ConfigError(
            f"The {parsed.get_backend_name()} database in '{redacted(parsed)}' is not supported.",
            hint=SUPPORTED_DIALECTS_HINT,
        )
    try:
        engine = sa.create_engine(parsed, hide_parameters=True, pool_pre_ping=True)
    except (NoSuchModuleError, ModuleNotFoundError) as error:
        raise ConfigError(
            f"No database driver is installed for '{redacted(parsed)}'.",
            hint="For PostgreSQL use a postgresql+psycopg:// URL and install psycopg.",
        ) from error
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine, switch_to_wal=not read_only)
    elif engine.dialect.name == "postgresql":
        _configure_postgresql(engine)
    return engine


def _configure_postgresql(engine: Engine) -> None:
    # Some values PostgreSQL stores have no Python form: 'infinity' and '-infinity' dates and
    # timestamps, dates before Christ, the time 24:00:00. The driver's loaders raise on them,
    # which would fail every batch that reads one. Loaded as their text instead, they are
    # sealed as text and written back through the column's type — exactly the value stored.
    # Imported here: psycopg takes 50 ms to import, which a run on SQLite need not wait for.
    from tui_migrator.storage import postgresql_values

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: object, _record: object) -> None:
        postgresql_values.load_unrepresentable_as_text(dbapi_connection)
        postgresql_values.read_array_nulls_as_null(dbapi_connection)


def _configure_sqlite(engine: Engine, *, switch_to_wal: bool) -> None:
    # pysqlite's own transaction handling starts transactions lazily and cannot take a write lock
    # up front; SQLAlchemy's documented recipe is to switch it off and emit BEGIN ourselves.
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: sqlite3.Connection, _record: ConnectionPoolEntry) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys = ON")
        # WAL lets the monitor and the application read while a batch is being written.
        if switch_to_wal and engine.url.database not in (None, "", ":memory:"):
            _switch_to_wal(cursor)
        journal_mode = str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower()
        synchronous = int(cursor.execute("PRAGMA synchronous").fetchone()[0])
        cursor.close()
        # The level the connection's commits are synced at, restored after each batch's commit
        # (see serialized_write); None where a batch may not relax it (no WAL, or already lax).
        _record.info[_SYNCHRONOUS] = synchronous if journal_mode == "wal" and synchronous > _NORMAL else None

    @event.listens_for(engine, "begin")
    def on_begin(connection: Connection) -> None:
        immediate = connection.get_execution_options().get(_IMMEDIATE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _switch_to_wal(cursor: sqlite3.Cursor) -> None:
    """Put the database file in WAL mode, waiting for other connections as a write would.

    The switch needs the file to itself, and SQLite reports "database is locked" at once —
    without waiting out the busy timeout — when another connection holds or is taking a lock
    on it: several processes opening a brand-new database together do exactly that. Each one
    waits and looks again; once one of them has switched, the others find WAL and do nothing.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() >= deadline:
                raise
            time.sleep(_WAL_SWITCH_RETRY_SECONDS)


@contextmanager
def serialized_write(engine: Engine, *, durable: bool = True) -> Iterator[Connection]:
    """A transaction that takes the write lock at once on SQLite.

    Used where a transaction reads and then writes state that other processes also write (the
    audit chain head, key creation): a deferred SQLite transaction would fail with "database is
    locked" when upgrading. PostgreSQL callers lock the rows they read with FOR UPDATE instead.

    ``durable=False`` (a batch's writes): the commit is not synced to disk — SQLite in WAL mode
    with ``synchronous = NORMAL``, PostgreSQL with ``synchronous_commit = off`` (see
    :func:`relax_commit`), for this transaction only. It is still atomic, and it survives
    the process being killed; only a power loss or an operating-system crash (on PostgreSQL, a
    crash of the server) may undo the last such commits, which leaves the database consistent (a
    batch's rows, backups, metadata and counters commit together) and the run resumes from what
    is there. The next durable commit (every audit entry, whose anchor must never name an entry
    that could be undone, and every state change) syncs the write-ahead log, and with it every
    commit before it. One sync per batch was a tenth of a run's time.
    """
    with writer_turn(engine), engine.connect() as connection:
        relaxed = None
        if engine.dialect.name == "sqlite":
            connection = connection.execution_options(**{_IMMEDIATE: True})
            relaxed = None if durable else connection.info.get(_SYNCHRONOUS)
            if relaxed is not None:
                _set_synchronous(connection, _NORMAL)
        # Connection.info belongs to the pooled DBAPI connection: whatever a failed transaction
        # left there is dropped, never run by the next one.
        # A non-durable commit may be undone by a power loss: nothing outside the database may
        # follow it (after_commit refuses).
        connection.info[_AFTER_COMMIT] = [] if durable else None
        try:
            with connection.begin():
                if not durable:
                    relax_commit(connection)
                yield connection
        except BaseException:
            connection.info.pop(_AFTER_COMMIT, None)
            raise
        finally:
            if relaxed is not None:
                _restore_synchronous(connection, relaxed)
        for action in connection.info.pop(_AFTER_COMMIT, None) or []:
            action()


def row_locks_supported(engine: Engine) -> bool:
    """Row locks with SKIP LOCKED exist on PostgreSQL; SQLite has one writer at a time anyway.
    So there alone several workers share a migration: its batches (engine/batch_source.py) and
    its windows of keys (engine/window_steps.py)."""
    return engine.dialect.name == "postgresql"


def relax_commit(connection: Connection) -> None:
    """PostgreSQL: the open transaction's commit does not wait for its write-ahead log to reach
    disk (``SET LOCAL synchronous_commit = off``: this transaction only, whatever the server's
    setting), nor, with synchronous replication, for a standby. For a batch's writes, which a
    crash of the server may undo only as a whole and only after every earlier commit, and which
    the run then does again (see serialized_write). A no-op on SQLite (serialized_write
    relaxes its connection there)."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("SET LOCAL synchronous_commit = off")


# One lock per SQLite database: this process's writers take turns here before SQLite's own lock.
_WRITER_TURNS: dict[str, threading.RLock] = {}
_WRITER_TURNS_GUARD = threading.Lock()
_ENGINE_TURNS: weakref.WeakKeyDictionary[Engine, threading.RLock] = weakref.WeakKeyDictionary()


def writer_turn(engine: Engine) -> AbstractContextManager[object]:
    """This process's turn to write to ``engine``'s SQLite database (a no-op elsewhere).

    SQLite lets one writer in at a time; another that asks meanwhile is put to sleep by its busy
    handler in steps of up to 100 ms, however soon the lock is free again. Between this
    process's own threads (batches written while others are sealed, the heartbeat, the resume
    key) the turn is passed at once instead, by a lock the next writer waits on. Re-entrant, so
    a thread that writes from within its own write transaction meets SQLite's refusal as before,
    never a deadlock. Other processes still wait in SQLite's busy handler. The sweep's
    checkpoints take it too (engine/sweep_cleaning.py): no commit of this process may run while
    one of them does (storage/sqlite_library.py)."""
    if engine.dialect.name != "sqlite":
        return nullcontext()
    turn = _ENGINE_TURNS.get(engine)
    if turn is None:
        file = database_file(engine)
        # By the file's absolute path: two engines naming one file differently share its turns.
        # Resolved once per engine (its connections keep the file they opened).
        database = str(engine.url) if file is None else str(file.resolve())
        with _WRITER_TURNS_GUARD:
            turn = _ENGINE_TURNS[engine] = _WRITER_TURNS.setdefault(database, threading.RLock())
    return turn


def _restore_synchronous(connection: Connection, level: int) -> None:
    try:
        _set_synchronous(connection, level)
    except sqlite3.Error:
        # A connection that cannot be set back must not serve a durable write later: the pool
        # drops it (and whatever made the transaction fail goes on being raised).
        connection.invalidate()


def _set_synchronous(connection: Connection, level: int) -> None:
    # On the driver's connection, outside any transaction: SQLite refuses the change inside one,
    # and SQLAlchemy would begin one for a statement run through it.
    driver = connection.connection.driver_connection
    assert driver is not None, "a pooled connection has its driver's connection"
    driver.execute(f"PRAGMA synchronous = {int(level)}").close()


def after_commit(connection: Connection, action: Callable[[], None]) -> None:
    """Run ``action`` once the ``serialized_write`` transaction of ``connection`` has committed
    (never if it rolls back): for what must follow a commit outside the database."""
    actions = connection.info.get(_AFTER_COMMIT)
    if actions is None:
        raise RuntimeError("after_commit needs a durable transaction opened with serialized_write")
    actions.append(action)


Statement = TypeVar("Statement", bound=sa.Executable)


def keyed_now(statement: Statement) -> Statement:
    """``statement`` with its SQLAlchemy cache key made now, in the one thread that builds it.

    SQLAlchemy makes a statement's cache key on its first execution and keeps it on the
    statement. A statement the run's threads share (a batch's UPDATE, its row metadata, its
    backups) was keyed on first use by two threads at once — two batches' first writes — and a
    fresh-clone CI run died there with a segmentation fault (2026-12-05: one thread in the key's
    making, the other in psycopg's sending). Made here, the threads only read it."""
    statement._generate_cache_key()  # type: ignore[attr-defined]  # memoized on the statement
    return statement


# PostgreSQL's SQLSTATE for a duplicate key.
UNIQUE_VIOLATION = "23505"


@contextmanager
def savepoint(connection: Connection) -> Iterator[None]:
    """A savepoint around part of ``connection``'s transaction, undone where that part raises
    (and the error raised on).

    SQLite ends the whole transaction itself on some errors — a full disk, an I/O error — and
    then knows no savepoint: undoing it failed with "no such savepoint", and that error took the
    place of the one that said what happened (a full disk read "no such savepoint:
    sa_savepoint_1"). There the error that ended the transaction is raised; nothing of it is
    left to undo."""
    nested = connection.begin_nested()
    try:
        yield
    except BaseException as error:
        try:
            nested.rollback()
        except DBAPIError:
            if isinstance(error, DBAPIError):
                raise error from None
            raise
        raise
    nested.commit()


@dataclass(frozen=True)
class PlainInsertFirst:
    """PostgreSQL: a batch's INSERT … SELECT tried plainly first, in a savepoint, and made again
    with its ON CONFLICT clause only where a key of it exists already.

    ON CONFLICT looks into the key's index twice a row (once for a conflict, once to insert);
    a plain INSERT once. Nearly every batch meets no key written before (a batch retried, a row
    sealed again in a later pass are the exceptions), so it is made plainly: the row metadata of
    1,000 rows 8.6 -> 6.2 ms, the savepoint included. A duplicate key fails it as a whole, its
    savepoint undoes it, and ``on_conflict`` does the batch; any other refusal is raised."""

    plain: sa.Insert
    on_conflict: sa.Insert

    def __post_init__(self) -> None:
        keyed_now(self.plain)
        keyed_now(self.on_conflict)

    def execute(self, connection: Connection, parameters: Mapping[str, Any]) -> int:
        """The batch's rows inserted (what the statement that did it counts)."""
        try:
            with savepoint(connection):
                return int(connection.execute(self.plain, parameters).rowcount)
        except IntegrityError as error:
            if getattr(error.orig, "sqlstate", None) != UNIQUE_VIOLATION:
                raise
        return int(connection.execute(self.on_conflict, parameters).rowcount)


def upsert(connection: Connection, table: sa.Table, update_columns: list[str]) -> sa.Insert:
    """INSERT that updates ``update_columns`` of a row whose primary key exists."""
    statement = _dialect_insert(connection, table)
    return statement.on_conflict_do_update(
        index_elements=[column.name for column in table.primary_key.columns],
        set_={name: statement.excluded[name] for name in update_columns},
    )


def _dialect_insert(connection: Connection, table: sa.Table) -> postgresql.Insert | sqlite.Insert:
    """The dialect's own INSERT, which alone offers ON CONFLICT."""
    if connection.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def text_rows(name: str, columns: Sequence[str]) -> TableValuedAlias:
    """PostgreSQL: a batch of rows of text (or NULL) values, passed as one ``text[]`` parameter
    per column (see :func:`text_rows_parameters`) and read, side by side, as a table named
    ``name`` with ``columns``.

    A statement that takes a whole batch at once (an UPDATE … FROM it, an INSERT … SELECT from
    it) instead of once per row. Each column is one text the server cuts apart at a delimiter
    (storage.text_arrays): one JSON text of the rows, as before 2026-12-05, cost this process a
    JSON encoder's pass over every byte (a fifth of its time at 100,000 rows), and an array
    literal, after it, cost the server a parse of every byte (10 ms of a batch's 22 ms UPDATE)."""
    return (
        sa.func.unnest(*(text_array(_array_name(name, column)) for column in columns))
        .table_valued(*(sa.column(column, sa.Text) for column in columns))
        .render_derived(name=name)
    )


def text_rows_parameters(name: str, columns: Mapping[str, Sequence[str | None]]) -> dict[str, str]:
    """The parameters of :func:`text_rows` ``name`` for a batch: each column's values (text or
    None), in the rows' order, every column as long as the others."""
    return {_array_name(name, column): text_array_text(values) for column, values in columns.items()}


# The column a text_array's parameter is read as, inside its own subquery.
_ARRAY_TEXT = "tm_array_text"


def text_array(name: str) -> sa.ScalarSelect[Any]:
    """PostgreSQL: the parameter ``name`` (storage.text_arrays.text_array_text of some values) as
    the ``text[]`` of those values. Read through a scalar subquery, whose length the planner
    cannot see: told a batch's true 1,000 rows it would join a table of fewer than about 3,000
    pages to them by reading all of it for every batch (a hash join over a sequential scan)
    instead of fetching each row by its place; assuming ten rows, it looks each up by its
    ``ctid`` whatever the table's size (tests/storage/test_postgresql_batch_statements.py)."""
    text = sa.select(sa.bindparam(name, type_=sa.Text).label(_ARRAY_TEXT)).subquery()
    array = sa.literal_column(TEXT_ARRAY_SQL.format(text=_ARRAY_TEXT), postgresql.ARRAY(sa.Text))
    return sa.select(array).select_from(text).scalar_subquery()


def _array_name(name: str, column: str) -> str:
    return f"{name}_{column}"


def database_file(engine: Engine) -> Path | None:
    """The SQLite database's file (where its backups take room too); None for a server database."""
    name = engine.url.database
    if engine.dialect.name != "sqlite" or not name or name == ":memory:":
        return None
    return Path(name)


def url_for_another_process(engine: Engine) -> URL | None:
    """The URL another process opens this very database with (a run's worker processes, which
    read their batches themselves): a SQLite file by its absolute path, so a process with
    another working directory finds the same file; None for a SQLite database in memory, which
    no other process can open."""
    if engine.dialect.name != "sqlite":
        return engine.url
    file = database_file(engine)
    if file is None:
        return None
    if engine.url.query.get("uri"):  # a file: URI names its file in its own syntax; passed as is
        return engine.url
    return engine.url.set(database=str(file.resolve()))


def database_size_bytes(engine: Engine) -> int | None:
    """How big the database is now, for the storage-increase estimate; None where unknown."""
    file = database_file(engine)
    if file is not None:
        return file.stat().st_size if file.exists() else None
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            size = connection.execute(sa.text("SELECT pg_database_size(current_database())")).scalar_one()
            return int(size)
    return None


def has_tables(engine: Engine) -> bool:
    return bool(sa.inspect(engine).get_table_names())


class DriverStatement:
    """A statement run for many parameter sets by the driver's own executemany.

    A batch's UPDATE, row metadata and backups run for a thousand rows each, and SQLAlchemy's
    per-row parameter processing was most of their cost. Here the statement is compiled once
    (for the parameter names it is given, as SQLAlchemy does for an executemany) and each
    parameter set becomes a tuple in the compiled order, passed through the bind processors
    SQLAlchemy would use (a DateTime's, say): the SQL, its casts and its types are SQLAlchemy's.
    Where the compiled form is not a plain positional one (PostgreSQL's named parameters,
    escaped names), it runs through SQLAlchemy as before.
    """

    def __init__(self, statement: sa.Update | sa.Insert) -> None:
        self.statement = statement
        self._compiled: dict[tuple[str, tuple[str, ...], tuple[str, ...]], _Compiled | None] = {}

    def execute(
        self,
        connection: Connection,
        parameters: Sequence[Mapping[str, Any]],
        shared: Mapping[str, Any] | None = None,
        *,
        names: Sequence[str] | None = None,
    ) -> int:
        """Run it once per parameter set (all with the same names), each completed by the
        ``shared`` values (the same for every set: processed once); the rows it matched.
        ``names``: the parameters to take from each set, where the sets hold other keys too."""
        if not parameters:
            return 0
        shared = shared or {}
        compiled = self._compiled_for(
            connection.dialect, tuple(parameters[0] if names is None else names), tuple(shared)
        )
        if compiled is None:
            given = (
                parameters
                if names is None
                else [{name: values[name] for name in names} for values in parameters]
            )
            every = [{**values, **shared} for values in given] if shared else list(given)
            return int(connection.execute(self.statement, every).rowcount)
        return int(connection.exec_driver_sql(compiled.sql, compiled.rows(parameters, shared)).rowcount)

    def execute_joined(
        self,
        connection: Connection,
        parameters: Sequence[Mapping[str, Any]],
        rows: Sequence[Mapping[str, Any]],
        from_rows: Mapping[str, str],
    ) -> int:
        """:meth:`execute` of parameter sets each completed from its own row: parameter ``name``
        of set *i* is ``rows[i][from_rows[name]]`` (a guarded UPDATE's values as the row was
        read, beside what sealing it gave). Each set becomes the driver's tuple straight from
        the two mappings, without a merged dict per set, where no value of either needs a bind
        processor; elsewhere the sets are merged and run by :meth:`execute`."""
        if not parameters:
            return 0
        compiled = self._compiled_for(connection.dialect, (*parameters[0], *from_rows), ())
        pick = None if compiled is None else compiled.joined_picker(tuple(parameters[0]), from_rows)
        if pick is None:
            return self.execute(connection, joined_sets(parameters, rows, from_rows))
        assert compiled is not None
        joined = [pick(values, row) for values, row in zip(parameters, rows, strict=True)]
        return int(connection.exec_driver_sql(compiled.sql, joined).rowcount)

    def _compiled_for(
        self, dialect: sa.Dialect, names: tuple[str, ...], shared: tuple[str, ...]
    ) -> _Compiled | None:
        """The statement compiled for sets of ``names`` completed by ``shared`` values (None where
        the driver cannot run it positionally), made once per dialect and names."""
        shape = (dialect.name, names, shared)
        if shape not in self._compiled:
            self._compiled[shape] = _Compiled.of(self.statement, dialect, [*names, *shared])
        return self._compiled[shape]


def joined_sets(
    parameters: Sequence[Mapping[str, Any]], rows: Sequence[Mapping[str, Any]], from_rows: Mapping[str, str]
) -> list[dict[str, Any]]:
    """Each parameter set completed from its own row, as one dict (see
    DriverStatement.execute_joined): parameter ``name`` of set *i* is ``rows[i][from_rows[name]]``."""
    return [
        {**values, **{name: row[key] for name, key in from_rows.items()}}
        for values, row in zip(parameters, rows, strict=True)
    ]


@dataclass(frozen=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]
    processors: Mapping[str, Callable[[Any], Any]]
    # Values the statement itself binds (``.values(resolved=True)``).
    fixed: dict[str, Any]

    @classmethod
    def of(cls, statement: sa.Update | sa.Insert, dialect: sa.Dialect, keys: list[str]) -> _Compiled | None:
        compiled = statement.compile(dialect=dialect, column_keys=keys)
        if not _driver_runs(compiled, dialect):
            return None
        names = compiled.positiontup or []
        binds = _binds(compiled)
        processors = {
            name: processor
            for name, bind in binds.items()
            if not _bound_as_it_is(bind.type, dialect)
            and (processor := bind.type.dialect_impl(dialect).bind_processor(dialect)) is not None
        }
        fixed = {
            name: bind.effective_value
            for name, bind in binds.items()
            if name not in keys and not bind.required
        }
        return cls(compiled.string, tuple(names), processors, fixed)

    def rows(
        self, parameters: Sequence[Mapping[str, Any]], shared: Mapping[str, Any]
    ) -> list[tuple[Any, ...]]:
        """Each parameter set as the driver's tuple, in the compiled order, processed."""
        constants = {**self.fixed, **shared}
        # A name's value either comes with each set or is the same for all: processed once.
        constant_at: dict[int, Any] = {}
        varying: list[str] = []
        varying_processors: list[tuple[int, Callable[[Any], Any]]] = []
        for position, name in enumerate(self.names):
            processor = self.processors.get(name)
            if name in constants:
                value = constants[name]
                constant_at[position] = value if processor is None else processor(value)
                continue
            if processor is not None:
                varying_processors.append((len(varying), processor))
            varying.append(name)
        pick = _picker(varying)
        if not varying_processors:
            if not constant_at:
                return [pick(values) for values in parameters]
            # The constants merged into each set and every value picked at once: one dict
            # merge and one itemgetter per set, where inserting each constant cost a call.
            processed = {self.names[position]: value for position, value in constant_at.items()}
            pick_all = _picker(self.names)
            return [pick_all({**values, **processed}) for values in parameters]
        rows = []
        for values in parameters:
            row = list(pick(values))
            for index, processor in varying_processors:
                row[index] = processor(row[index])
            for position, value in constant_at.items():
                row.insert(position, value)
            rows.append(tuple(row))
        return rows

    def joined_picker(
        self, names: tuple[str, ...], from_rows: Mapping[str, str]
    ) -> Callable[[Mapping[str, Any], Mapping[str, Any]], tuple[Any, ...]] | None:
        """What gives the driver's tuple of a parameter set (holding ``names``) and its row (see
        DriverStatement.execute_joined): None where a value needs a bind processor, the
        statement binds a constant or the compiled order interleaves the two sources."""
        if self.fixed or any(name in self.processors for name in self.names):
            return None
        given = len(names)
        # The compiled order must be the set's names, then the row's (an UPDATE's SET values
        # and key, then its guard): a tuple of each, concatenated.
        if set(self.names[:given]) != set(names) or list(self.names[given:]) != list(from_rows):
            return None
        pick_set = _picker(self.names[:given])
        pick_row = _picker([from_rows[name] for name in self.names[given:]])
        return lambda values, row: pick_set(values) + pick_row(row)


def _bound_as_it_is(sql_type: sa.types.TypeEngine[Any], dialect: sa.Dialect) -> bool:
    """Whether the driver takes a value of ``sql_type`` as it is, SQLAlchemy's bind processor
    left out. sqlite3 binds bytes as a BLOB: SQLAlchemy's LargeBinary processor only wraps them
    in sqlite3.Binary (a memoryview) — a call per value, for every backup a batch writes — and
    fails on text, which a column declared BLOB may hold in SQLite (and a guard or a rollback
    must bind as it was read)."""
    return dialect.name == "sqlite" and isinstance(sql_type.dialect_impl(dialect), sa.LargeBinary)


def _picker(names: Sequence[str]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """A function giving the values of ``names`` of a mapping as a tuple (itemgetter, which
    gives a bare value for one name and fails for none)."""
    if not names:
        return lambda values: ()
    if len(names) == 1:
        (name,) = names
        return lambda values: (values[name],)
    return operator.itemgetter(*names)


def fetch_dicts(
    connection: Connection, query: sa.Select[Any], parameters: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """The rows of ``query`` (with ``parameters``, where it has named ones: a statement built
    once, storage/built_statements.py) as plain dicts by column key, fetched by the driver.

    A batch reads a thousand rows four times in a run (backup, batch, verification) and
    SQLAlchemy's per-row result objects cost more than the read itself (on PostgreSQL a row as
    a mapping, then a dict, took 4.6 µs of 6.6); here SQLAlchemy runs the query (compiled once,
    from its statement cache) and the rows are taken from the driver's cursor, each value
    through the result processor SQLAlchemy itself would apply to that column as the cursor
    describes it (a boolean's on SQLite, say, or a float's as Decimal on PostgreSQL)."""
    keys = list(query.selected_columns.keys())
    result = connection.execute(query, parameters)
    try:
        rows = result.cursor.fetchall()
        processors = _result_processors(result, query)
    finally:
        result.close()
    dicts = [dict(zip(keys, row, strict=True)) for row in rows]
    # The few columns with a processor (a batch's backed-up flag, say) are mended in the dicts:
    # one assignment per row for each, where going through every value cost a pass over all.
    # (A select's keys are unique: SQLAlchemy names a second column of one name ``name_1``.)
    for key, processor in zip(keys, processors, strict=True):
        if processor is not None:
            for values in dicts:
                values[key] = processor(values[key])
    return dicts


# A query and its parameters (None where it has none): a statement built once, run for each key.
KeysQuery = tuple[sa.Select[Any], Mapping[str, Any] | None]


def key_windows(
    engine: Engine,
    next_keys: Callable[[tuple[Any, ...] | None], KeysQuery],
    reading: Callable[[Callable[[], list[tuple[Any, ...]]]], list[tuple[Any, ...]]] | None = None,
) -> Iterator[tuple[tuple[Any, ...], tuple[Any, ...]]]:
    """The first and last key of each window of keys ``next_keys(after)`` selects (its query
    and parameters: the next keys after the key ``after``, in key order; None: from the
    first), until it selects none:
    windows that cover every key it selects, no two overlapping. What a reader of the rows in
    another process is given instead of the rows (a window, read there by key range).
    ``reading`` runs each read (under a retry policy, say)."""

    def read(after: tuple[Any, ...] | None) -> list[tuple[Any, ...]]:
        with engine.connect() as connection:
            return fetch_tuples(connection, *next_keys(after))

    after: tuple[Any, ...] | None = None
    last: tuple[tuple[Any, ...], tuple[Any, ...]] | None = None
    while True:
        window = read(after) if reading is None else reading(partial(read, after))
        if not window:
            return
        if window[0] == after or (window[0], window[-1]) == last:
            # A key bound in a type that does not compare as it is stored would give the same
            # window again and again (see TableAccess.bound_key): fail, never loop.
            raise RuntimeError("The next window of keys did not start after the last one.")
        after = window[-1]
        last = (window[0], after)
        yield last


def fetch_tuples(
    connection: Connection, query: sa.Select[Any], parameters: Mapping[str, Any] | None = None
) -> list[tuple[Any, ...]]:
    """The rows of ``query`` as plain tuples, fetched by the driver (see :func:`fetch_dicts`):
    where a tuple is all a caller needs (verification's windows of keys), no dict either."""
    result = connection.execute(query, parameters)
    try:
        return _processed(result.cursor.fetchall(), _result_processors(result, query))
    finally:
        result.close()


def _processed(rows: Sequence[tuple[Any, ...]], processors: list[Any]) -> list[tuple[Any, ...]]:
    """The driver's ``rows`` with each value through its column's result processor (the rows
    themselves, where no column has one: the common case, with nothing to do per value)."""
    if not rows or not any(processors):
        return list(rows)
    # Column by column: the few columns that have a processor (a batch's backed-up flag, say)
    # go through it in one map each, instead of every value of every row through a generator.
    columns = list(zip(*rows, strict=True))
    for index, processor in enumerate(processors):
        if processor is not None:
            columns[index] = tuple(map(processor, columns[index]))
    return list(zip(*columns, strict=True))


def _result_processors(result: sa.CursorResult[Any], query: sa.Select[Any]) -> list[Any]:
    """For each column of ``query``, the result processor SQLAlchemy itself applies to it as
    the cursor of ``result`` describes it (None where the driver's value is the value)."""
    return [
        result.context.get_result_processor(column.type, key, described[1])
        for column, key, described in zip(
            query.selected_columns, query.selected_columns.keys(), result.cursor.description, strict=True
        )
    ]


def _driver_runs(compiled: SQLCompiler, dialect: sa.Dialect) -> bool:
    """Whether the driver can run ``compiled`` as it is: SQLite's plain positional parameters,
    none renamed or rendered at execution time. (Elsewhere SQLAlchemy runs it.)"""
    return (
        dialect.name == "sqlite"
        and compiled.positiontup is not None
        and not compiled.escaped_bind_names
        and not compiled.literal_execute_params
        and not compiled.post_compile_params
    )


def _binds(compiled: SQLCompiler) -> dict[str, sa.BindParameter[Any]]:
    """The compiled statement's bind parameters by the name its SQL gives them."""
    return {compiled.bind_names[bind]: bind for bind in compiled.binds.values()}
