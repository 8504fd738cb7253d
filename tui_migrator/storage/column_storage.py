"""Putting tokens into a mapped table and taking the originals back out.

Text columns hold their token in place. Every other type gets a companion text column
``<column>__tm_token`` holding the token while the original is set to NULL (see the README); on
PostgreSQL, where that name would pass the 63-byte identifier limit, it is shortened with a hash
(see :attr:`ResolvedColumn.companion`).

Values are moved exactly as the database holds them. On SQLite, whose columns can hold any
storage class whatever their declared type, values are read and written raw, bypassing
SQLAlchemy's type conversion: a DATE stored as '2024-1-5' text or a NUMERIC stored as the integer
100 comes back as that same text or integer. On PostgreSQL, values travel as the driver's typed
Python values through the column's own type, which the server stores exactly — except JSON and
JSONB, which travel as their exact text (see :meth:`TableAccess.moves_as_text`).
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, NamedTuple, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tui_migrator.common.errors import OperationFailed
from tui_migrator.crypto.ciphers import RowContext, TableSealer, ValueCipher
from tui_migrator.crypto.codec import encode_value, pack_values
from tui_migrator.crypto.tokens import is_token
from tui_migrator.storage.built_statements import built_once
from tui_migrator.storage.database import KeysQuery, text_rows, text_rows_parameters
from tui_migrator.storage.mapping import ResolvedColumn, ResolvedTable

# A row read by name: a plain dict, or SQLAlchemy's RowMapping (whose keys may also be columns,
# so it is no Mapping[str, Any]).
StoredRow = Mapping[str, Any] | sa.RowMapping

_KEY_PARAMETER = "tm_key_{}"
# A row's version as PostgreSQL stores it, read with a batch (TableAccess.row_version_columns).
ROW_VERSION = ("tm_ctid", "tm_xmin")
_TOKEN = "tm_token_{}"
_BATCH = "tm_batch"


class _RawValue(sa.types.TypeDecorator[Any]):
    """Passes values to and from the driver untouched. (A plain NullType bind parameter would
    silently take the column's type, and with it conversions such as JSON's None → 'null'.)"""

    impl = sa.types.NullType
    cache_ok = True


class _DeclaredRaw(sa.types.UserDefinedType[Any]):
    """A SQLite column type declared with the exact text of another column's declared type (so
    it gets the same affinity) whose values pass to and from the driver untouched."""

    cache_ok = True

    def __init__(self, declared: str) -> None:
        self.declared = declared

    def get_col_spec(self, **_kw: Any) -> str:
        return self.declared


@dataclass(frozen=True)
class KeyParameters:
    """A key given when a statement runs rather than when it is built: its parts are the
    parameters ``<name>_0``, ``<name>_1``… (:meth:`values`). A statement of a batch or window
    built with it once runs for every key (storage/built_statements.py)."""

    name: str

    def names(self, parts: int) -> list[str]:
        return [f"{self.name}_{index}" for index in range(parts)]

    def values(self, key: Sequence[Any]) -> dict[str, Any]:
        return dict(zip(self.names(len(key)), key, strict=True))


# The keys of the statements built once: the key after which a batch reads (and the last it may
# read), the first and the last of a window of keys.
AFTER_KEY = KeyParameters("tm_after")
UP_TO_KEY = KeyParameters("tm_up_to")
FIRST_KEY = KeyParameters("tm_first")
LAST_KEY = KeyParameters("tm_last")
# A batch's LIMIT given when its statement runs.
LIMIT_PARAMETER = "tm_limit"

# A key: its values, or the parameters that give them when the statement runs.
KeyOrParameters = Sequence[Any] | KeyParameters


def piece_parameters(
    first: Sequence[Any], last: Sequence[Any], after: Sequence[Any] | None, limit: int
) -> dict[str, Any]:
    """The parameters of a piece of the window from ``first`` to ``last`` (engine/read_sizes.pieces):
    its first piece's (``after`` None: :meth:`TableAccess.key_range`) or a next one's, after the
    key ``after`` (:meth:`TableAccess.key_after_up_to`); ``limit`` rows (LIMIT_PARAMETER)."""
    lower = FIRST_KEY.values(first) if after is None else AFTER_KEY.values(after)
    return lower | LAST_KEY.values(last) | {LIMIT_PARAMETER: limit}


def next_keys_query(
    owner: object,
    what: Hashable,
    build: Callable[[KeyParameters | None], sa.Select[Any]],
    after: Sequence[Any] | None,
) -> KeysQuery:
    """The query of the next keys after the key ``after`` (None: from the first) and its
    parameters, as database.key_windows asks for them: ``build(AFTER_KEY)`` (or ``build(None)``
    for the first window), built once for ``owner`` and ``what`` (storage/built_statements.py)."""
    first = after is None
    query = built_once(owner, (what, first), lambda: build(None if first else AFTER_KEY))
    return query, None if after is None else AFTER_KEY.values(after)


class RecordRefused(OperationFailed):
    """One record cannot be processed; the message names table, key and reason, never values."""

    code = "record_refused"


class Shaped(Protocol):
    """Anything that knows a table's mapping: all that sealing or opening its rows needs."""

    @property
    def mapped(self) -> ResolvedTable: ...


@dataclass(frozen=True)
class RowShape:
    """A mapped table without its database side (what a worker process is given to seal or
    open rows: :class:`TableAccess` holds SQLAlchemy objects that stay in the run's process)."""

    mapped: ResolvedTable


@dataclass(frozen=True)
class TableAccess:
    """A mapped table as reflected from the live database, with the statements to move its values."""

    mapped: ResolvedTable
    table: sa.Table
    raw_values: bool
    # SQLite: each column's declared type exactly as written ('' for none), which decides its
    # affinity; SQLAlchemy's reflected type is only a guess at it.
    declared_types: Mapping[str, str] = field(default_factory=dict)

    @property
    def key_columns(self) -> tuple[sa.ColumnElement[Any], ...]:
        """The key columns for ordering and for comparing with stored key values (raw on
        SQLite, where a DATE key may hold text that SQLAlchemy's DATE type would refuse)."""
        return tuple(self._stored(name) for name in self.mapped.primary_key)

    @property
    def addressable(self) -> sa.ColumnElement[bool]:
        """Rows a key can address: none of the key's columns NULL. A NULL key matches no row in
        ``key = ?`` and every NULL-keyed row in ``key IS ?`` (SQLite lets a PRIMARY KEY that is
        not an INTEGER one hold NULLs; a UNIQUE key anywhere may), so such a row can be neither
        written alone nor backed up nor restored, and a keyset page that ends on one (SQLite
        sorts NULL first) finds nothing after it. Every read of rows or keys in key order
        (:meth:`select_rows`, :meth:`select_keys`) leaves them out; the scope counts them and a
        start refuses them (engine/scope.py); verification counts those written during a run."""
        return sa.and_(*(column.is_not(None) for column in self.key_columns))

    def same_key(self, other: sa.Table) -> sa.ColumnElement[bool]:
        """Join condition: ``other``'s key columns (a backup table's, see :meth:`copy_type`)
        hold this row's key."""
        return sa.and_(
            *(
                column == other.c[name]
                for name, column in zip(self.mapped.primary_key, self.key_columns, strict=True)
            )
        )

    def existing_companion(self, column: ResolvedColumn) -> str | None:
        """The name of ``column``'s companion column if the table has it (yet), else None."""
        companion = column.companion
        return companion if companion is not None and companion in self.table.c else None

    def has_companion(self, column: ResolvedColumn) -> bool:
        return self.existing_companion(column) is not None

    def copy_type(self, name: str) -> sa.types.TypeEngine[Any]:
        """The type for a column of another table (a backup's key) that must hold column
        ``name``'s stored values exactly: on SQLite the same declared type, read and written raw;
        on PostgreSQL the column's own type."""
        if self.raw_values:
            return _DeclaredRaw(self.declared_types.get(name, ""))
        return sa.Text() if self.moves_as_text(name) else self.table.c[name].type

    def moves_as_text(self, name: str) -> bool:
        """True for PostgreSQL JSON, JSONB and array columns, whose values are read, sealed and written
        back as their text. As Python objects they would not come back exactly: ``json`` keeps
        its text as written (spacing, key order, duplicate keys) and ``jsonb`` numbers are
        exact decimals (``1.10``, ``0.1000000000000000000001``) that a Python float would round.
        Sealed JSON is therefore text, as it is on SQLite, where JSON is stored as text.
        Arrays too: as a Python list an array loses its bounds ('[0:1]={1,2}' would come back
        as '{1,2}'); its text keeps them, and nested and NULL elements."""
        return not self.raw_values and isinstance(self.table.c[name].type, (sa.JSON, sa.ARRAY))

    def value(self, name: str) -> sa.ColumnElement[Any]:
        """Column ``name`` as read for moving: raw on SQLite, as text for PostgreSQL JSON."""
        stored = self._stored(name)
        return stored if stored is self.table.c[name] else stored.label(name)

    def _stored(self, name: str) -> sa.ColumnElement[Any]:
        column = self.table.c[name]
        if self.raw_values:
            return sa.type_coerce(column, _RawValue())
        if self.moves_as_text(name):
            return sa.cast(column, sa.Text)
        return column

    def select_rows(
        self,
        *,
        after: KeyOrParameters | None = None,
        limit: int | sa.BindParameter[Any] | None = None,
    ) -> sa.Select[Any]:
        """Rows in key order, after the key ``after`` (keyset pagination: no OFFSET scans);
        rows no key addresses (:attr:`addressable`) are never among them."""
        names = list(self.mapped.primary_key)
        if self.mapped.organization_column:
            names.append(self.mapped.organization_column)
        for column in self.mapped.columns:
            names.append(column.name)
            companion = self.existing_companion(column)
            if companion is not None:
                names.append(companion)
        query = sa.select(*(self.value(name) for name in names)).where(self.addressable)
        query = query.order_by(*self.key_columns)
        if after is not None:
            query = query.where(sa.tuple_(*self.key_columns) > self.key_tuple(after))
        if limit is not None:
            query = query.limit(limit)
        return query

    def select_keys(self, *, after: KeyOrParameters | None, limit: int) -> sa.Select[Any]:
        """The next ``limit`` keys after ``after``, in key order (only the key's index is read);
        never a key with a NULL in it (:attr:`addressable`)."""
        query = sa.select(*self.key_columns).where(self.addressable).order_by(*self.key_columns).limit(limit)
        if after is not None:
            query = query.where(sa.tuple_(*self.key_columns) > self.key_tuple(after))
        return query

    @property
    def value_names(self) -> list[str]:
        """The columns that hold the mapped values, plaintext or tokens: the mapped columns and
        the companions the table has."""
        companions = (self.existing_companion(column) for column in self.mapped.columns)
        return [column.name for column in self.mapped.columns] + [c for c in companions if c is not None]

    def select_row_sizes(self, *, limit: int, last: bool = False) -> sa.Select[Any]:
        """The stored size in bytes of each of the first (``last``: the last) ``limit`` rows in
        key order: of their mapped columns and companions, the rest of a row being small beside
        them. What a read of that many rows will hold (engine/read_sizes.py); measured on the
        server from the values' lengths, nothing of them sent."""
        sizes = [self._size_of(name) for name in self.value_names]
        order = [key.desc() for key in self.key_columns] if last else list(self.key_columns)
        return sa.select(sum(sizes[1:], sizes[0]).label("tm_row_bytes")).order_by(*order).limit(limit)

    def _size_of(self, name: str) -> sa.ColumnElement[int]:
        """Column ``name``'s stored size in bytes (0 for NULL). SQLite: of its text or blob
        (a number as its text). PostgreSQL: text and binary values by their length, which it
        knows without decompressing or fetching them out of line; any other (an enum, a number,
        a date…) by its stored size."""
        column = self.table.c[name]
        if self.raw_values:
            size = sa.func.length(sa.cast(sa.type_coerce(column, _RawValue()), sa.LargeBinary))
        elif isinstance(column.type, sa.LargeBinary) or (
            isinstance(column.type, sa.String) and not isinstance(column.type, sa.Enum)
        ):
            size = sa.func.octet_length(column)
        elif self.moves_as_text(name):
            size = sa.func.octet_length(sa.cast(column, sa.Text))
        else:
            size = sa.func.pg_column_size(column)
        return sa.func.coalesce(size, 0)

    def key_range(self, first: KeyOrParameters, last: KeyOrParameters) -> sa.ColumnElement[bool]:
        """Rows whose key lies from ``first`` to ``last``, both included: a range the primary
        key's index serves, whatever a planner believes of the query's other conditions."""
        key = sa.tuple_(*self.key_columns)
        return sa.and_(key >= self.key_tuple(first), key <= self.key_tuple(last))

    def key_after_up_to(self, after: KeyOrParameters, last: KeyOrParameters) -> sa.ColumnElement[bool]:
        """Rows whose key lies after ``after`` and up to ``last``, included: the rest of a
        window read a piece at a time (engine/read_sizes.pieces)."""
        key = sa.tuple_(*self.key_columns)
        return sa.and_(key > self.key_tuple(after), key <= self.key_tuple(last))

    def update_statement(self) -> sa.Update:
        """One UPDATE per row, run as an executemany over a batch; keyed by primary key."""
        condition = sa.and_(
            *(
                column
                == self.bound_key(
                    name, sa.bindparam(_KEY_PARAMETER.format(index), type_=self.bind_type(name))
                )
                for index, (name, column) in enumerate(
                    zip(self.mapped.primary_key, self.key_columns, strict=True)
                )
            )
        )
        targets: dict[str, Any] = {}
        for column in self.mapped.columns:
            targets[column.name] = self.bound_value(column.name, column.name)
            companion = self.existing_companion(column)
            if companion is not None:
                targets[companion] = sa.bindparam(companion, type_=sa.Text())
        return sa.update(self.table).where(condition).values(targets)

    def row_version_columns(self) -> list[sa.ColumnElement[Any]]:
        """PostgreSQL: where each row read is stored (``ctid``) and the transaction that wrote
        that version of it (``xmin``), as text, for :meth:`update_by_row_version`."""
        return [
            sa.cast(sa.column(system, _selectable=self.table), sa.Text).label(label)
            for system, label in (("ctid", ROW_VERSION[0]), ("xmin", ROW_VERSION[1]))
        ]

    def update_by_row_version(self) -> sa.Update | None:
        """PostgreSQL: one UPDATE for a whole batch, for rows read with
        :meth:`row_version_columns` and locked since by the same transaction.

        Its parameters (:func:`batch_parameters`) hold per row its ``tm_ctid`` and ``tm_xmin``
        as read, and per mapped column ``tm_token_<i>``, the token sealed into that cell now, or
        NULL where the cell keeps what it holds. A token goes where :func:`seal_row` puts it: in
        place in a text column, else in the companion with the original set to NULL. A row is
        written only while it is still the version that was read (same place, same writing
        transaction), so nothing the application wrote since is overwritten; and only text
        travels, whatever the table's types (the key is not needed). None when a companion
        column is still missing (the per-row statement is used then)."""
        columns = self.mapped.columns
        batch = text_rows(_BATCH, [*ROW_VERSION, *_token_names(len(columns))])
        target = self.table
        values: dict[str, Any] = {}
        for index, column in enumerate(columns):
            token = batch.c[_TOKEN.format(index)]
            if column.companion is None:
                values[column.name] = sa.func.coalesce(token, target.c[column.name])
                continue
            companion = self.existing_companion(column)
            if companion is None:
                return None
            values[column.name] = sa.case((token.is_(None), target.c[column.name]))
            values[companion] = sa.func.coalesce(token, target.c[companion])
        return sa.update(target).values(values).where(*self.row_version_matches(batch.c))

    def row_version_matches(self, read: Any) -> list[sa.ColumnElement[bool]]:
        """PostgreSQL: the row is still the version ``read`` (columns named as ROW_VERSION) was
        read at: in the same place (``ctid``, by which the server finds it at once), written by
        the same transaction (``xmin``). A row updated since has moved to a new version."""
        return [
            sa.column("ctid", _selectable=self.table) == sa.cast(read[ROW_VERSION[0]], _DeclaredRaw("tid")),
            sa.cast(sa.column("xmin", _selectable=self.table), sa.Text) == read[ROW_VERSION[1]],
        ]

    def key_tuple(self, key: KeyOrParameters) -> sa.ColumnElement[Any]:
        """A stored key as a row value to compare with :attr:`key_columns` (keyset pagination):
        its values, or the parameters that give them (KeyParameters)."""
        names = self.mapped.primary_key
        if isinstance(key, KeyParameters):
            bound = [
                sa.bindparam(parameter, type_=self.bind_type(name))
                for name, parameter in zip(names, key.names(len(names)), strict=True)
            ]
        else:
            bound = [
                sa.literal(value, type_=self.bind_type(name)) for name, value in zip(names, key, strict=True)
            ]
        return sa.tuple_(
            *(self.bound_key(name, parameter) for name, parameter in zip(names, bound, strict=True))
        )

    def key_in(self, keys: Sequence[Sequence[Any]]) -> sa.ColumnElement[bool]:
        """Rows whose key is one of ``keys`` (an IN list, which the key's index serves). On
        SQLite the keys are one parameter that expands to the list when the statement runs, each
        value raw, as the key columns are read; a literal for each key (its values in the
        column's own type, as PostgreSQL needs them: :meth:`bound_key`) is compiled one by one
        — 0.1 s of one core for the 1,200 keys of an estimate's sample (2026-12-07)."""
        key = sa.tuple_(*self.key_columns)
        if self.raw_values:
            return key.in_([tuple(values) for values in keys])
        return key.in_([self.key_tuple(values) for values in keys])

    def bound_key(self, name: str, bound: sa.BindParameter[Any]) -> sa.ColumnElement[Any]:
        """A bound value of key column ``name``, in the column's own type. On PostgreSQL the
        driver would otherwise pick a type from the Python value — float8 for a real key (so
        1.1 never equals the stored real 1.1, and keyset pagination returns the same row
        forever), int2[] for an integer[] key — and the comparison would fail or mislead."""
        if self.raw_values or self.moves_as_text(name):
            return bound
        return sa.cast(bound, self.table.c[name].type)

    def bind_type(self, name: str) -> sa.types.TypeEngine[Any]:
        if self.raw_values:
            return _RawValue()
        return sa.Text() if self.moves_as_text(name) else self.table.c[name].type

    def bound_value(self, name: str, parameter: str) -> sa.ColumnElement[Any]:
        """The parameter ``parameter`` as a value of column ``name``, in the form it was read."""
        bound = sa.bindparam(parameter, type_=self.bind_type(name))
        if self.moves_as_text(name):
            return sa.cast(bound, self.table.c[name].type)
        return bound

    def unchanged(self, name: str, parameter: str) -> sa.ColumnElement[bool]:
        """True where column ``name`` still holds the value bound to ``parameter`` (NULL included):
        the guard that keeps a batch from overwriting a value the application changed."""
        column = self.table.c[name]
        value = self.bound_value(name, parameter)
        if self.raw_values:
            return column.is_not_distinct_from(value)
        # PostgreSQL compares the text of the column's own type: json has no equality operator,
        # a real column would be compared with a float8 parameter as float8 (and never match),
        # and numeric equality ignores a changed scale (1.10 = 1.1). Same text, same value.
        if not self.moves_as_text(name):
            value = sa.cast(value, column.type)
        return sa.cast(column, sa.Text).is_not_distinct_from(sa.cast(value, sa.Text))


def reflect(connection: Connection, mapped: ResolvedTable) -> TableAccess:
    # resolve_fks=False: the tables a foreign key points to are never used here, and reflecting
    # them too (PostgreSQL's catalog queries are not cheap) tripled the cost of every call.
    with warnings.catch_warnings():
        # A declared type SQLAlchemy does not know (SQLite accepts any name) is reflected as
        # NullType with a warning; values are moved raw on SQLite, so the guess does not matter.
        warnings.filterwarnings("ignore", "Did not recognize type", sa.exc.SAWarning)
        table = sa.Table(mapped.name, sa.MetaData(), autoload_with=connection, resolve_fks=False)
    if connection.dialect.name != "sqlite":
        return TableAccess(mapped, table, raw_values=False)
    quote = connection.dialect.identifier_preparer.quote
    declared = {
        str(row[1]): str(row[2] or "")
        for row in connection.exec_driver_sql(f"PRAGMA table_info({quote(mapped.name)})")
    }
    return TableAccess(mapped, table, raw_values=True, declared_types=declared)


def add_companion_columns(connection: Connection, access: TableAccess) -> TableAccess:
    """Add the missing companion columns (nullable TEXT) and return the table re-reflected."""
    quote = connection.dialect.identifier_preparer.quote
    for column in access.mapped.columns:
        if column.companion is not None and not access.has_companion(column):
            connection.exec_driver_sql(
                f"ALTER TABLE {quote(access.table.name)} ADD COLUMN {quote(column.companion)} TEXT"
            )
    return reflect(connection, access.mapped)


def drop_companion_columns(
    connection: Connection, access: TableAccess, *, only: set[str] | None = None
) -> TableAccess:
    """Drop the companion columns (or just those named in ``only``). Callers first make sure
    none holds a token any more."""
    quote = connection.dialect.identifier_preparer.quote
    for column in access.mapped.columns:
        companion = access.existing_companion(column)
        if companion is not None and (only is None or companion in only):
            connection.exec_driver_sql(
                f"ALTER TABLE {quote(access.table.name)} DROP COLUMN {quote(companion)}"
            )
    return reflect(connection, access.mapped)


def organization_id(mapped: ResolvedTable, value: Any) -> str | None:
    """The organization a stored value of the organization column names — the one rule, for
    the engine, the estimate and the read API alike: text or an integer, as text; NULL or blank
    text means the table's default organization (None when it has none). Any other value (a
    float, a blob, a date) names no organization reliably, so its row is refused."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return mapped.default_organization
    if isinstance(value, bool) or not isinstance(value, (str, int, uuid.UUID)):
        raise RecordRefused(
            f"The organization column '{mapped.organization_column}' of {mapped.name} holds a "
            f"{type(value).__name__} value; organization ids are text or integers.",
            hint="Fix the row's organization value, then resume the migration.",
        )
    return str(value)


def organization_of(mapped: ResolvedTable, row: StoredRow) -> str | None:
    """The organization whose key seals this row, or None when the row has none."""
    if mapped.organization_column is None:
        return mapped.default_organization
    return organization_id(mapped, row.get(mapped.organization_column))


def organizations_in(connection: Connection, access: TableAccess) -> set[str]:
    """Every organization that owns a row of the table (the default for rows without one)."""
    mapped = access.mapped
    if mapped.organization_column is None:
        return {mapped.default_organization} if mapped.default_organization else set()
    found = set()
    for (value,) in connection.execute(sa.select(access.value(mapped.organization_column)).distinct()):
        try:
            organization = organization_id(mapped, value)
        except RecordRefused:
            continue  # its rows are recorded as failed when they are sealed
        if organization is not None:
            found.add(organization)
    return found


def key_of(access: Shaped, row: StoredRow) -> tuple[Any, ...]:
    return tuple(row[name] for name in access.mapped.primary_key)


def row_context(access: Shaped, row: StoredRow, *, organization: str | None = None) -> RowContext:
    """The row's context for its tokens (column left blank), its key packed once for all columns;
    ``organization``: the one its tokens were sealed under (:func:`sealing_organization`), where
    that may differ from the row's organization column (a rollback's)."""
    key = key_of(access, row)
    organization = organization or _organization(access, row, key)
    return RowContext(access.mapped.name, "", key, organization, pack_values(key))


def sealing_organization(
    access: Shaped, row: StoredRow, key_id: str | None, cipher: ValueCipher
) -> str | None:
    """The organization a migration sealed ``row``'s cells under: that of the data key it
    recorded (``key_id``). The row's organization column may say another since — the application
    moved the row to another organization, or emptied the column — while its tokens and their
    digest stay bound to the first. The row's own where the key is not known to ``cipher``; None
    where that is none either."""
    if key_id is not None:
        organization = cipher.organization_of_key(key_id)
        if organization is not None:
            return organization
    try:
        return organization_of(access.mapped, row)
    except RecordRefused:
        return None


def _organization(access: Shaped, row: StoredRow, key: tuple[Any, ...]) -> str:
    """The organization whose key seals the row (``key``: its key); RecordRefused where it has none."""
    organization = organization_of(access.mapped, row)
    if organization is None:
        raise RecordRefused(
            f"The row of {access.mapped.name} with key {', '.join(map(str, key))} has no organization "
            f"in '{access.mapped.organization_column}'.",
            hint="Fill the column, or set default_organization for this table in the mapping.",
        )
    return organization


class SealedRow(NamedTuple):
    """What sealing one row produced: the UPDATE's parameters, the tokens that replaced its
    plaintext and what its row metadata records of them. (A tuple: one is made per row sealed.)"""

    parameters: dict[str, Any]
    # Each sealed column's token (its original is the value the row held there).
    tokens: dict[str, str]
    # Where the tokens are bound: the row's key and organization; and the id of their key.
    key: tuple[Any, ...]
    organization: str
    key_id: str
    # The digests of the sealed values (as encoded) and of the tokens, and each sealed column's
    # token's nonce text, in column-name order (the row metadata's record of its cells).
    digest: str
    tokens_digest: str
    nonces: list[tuple[str, str]]
    # Whether the row held a token already, in a cell it kept (sealed in an earlier pass).
    held_tokens: bool
    # The row's key packed (pack_values) and each sealed value as encoded (encode_value), by
    # column: made for the tokens, and what the row's backup packs again.
    packed_key: bytes
    encoded: dict[str, bytes]


def seal_row(access: Shaped, row: StoredRow, sealer: TableSealer) -> SealedRow | None:
    """Replace every plaintext value of ``row`` by its token; None when it holds none.

    Plaintext is a value not in token form in a text column, and a non-NULL original in a
    column with a companion: the companion may hold the token of an older value, but a value
    beside it was written since (by the application) and is the newer one, so it is sealed and
    its token replaces the old one. Values already sealed are kept, so sealing is idempotent.
    NULL stays NULL. ``sealer``: the batch's, for the row's table (ValueCipher.table_sealer).
    """
    key = key_of(access, row)
    parameters = _key_parameters(key)
    plaintext: list[tuple[str, Any]] = []
    companions: dict[str, str] = {}
    held_tokens = False
    for column in access.mapped.columns:
        name, companion = column.name, column.companion
        stored = row[name]
        if stored is not None and (companion is not None or not is_token(stored)):
            plaintext.append((name, stored))
            if companion is not None:
                companions[name] = companion
            continue
        parameters[name] = stored
        if companion is not None:
            parameters[companion] = row.get(companion)
        # A cell it seals holds plaintext, never a token (see cell_token): only a kept one
        # can, and a NULL one without a companion never does.
        if not held_tokens and (stored is not None or companion is not None):
            held_tokens = cell_token(column, row) is not None
    if not plaintext:
        return None
    organization = _organization(access, row, key)
    # In column-name order, as the row's digests take its cells (names are unique: no two
    # tuples compare their values).
    plaintext.sort()
    cells = [(name, encode_value(value)) for name, value in plaintext]
    packed_key = pack_values(key)
    sealed = sealer.seal(key, organization, packed_key, cells, digests=True)
    tokens = {}
    for (name, _value), token in zip(plaintext, sealed.tokens, strict=True):
        tokens[name] = token
        companion = companions.get(name) if companions else None
        if companion is None:
            parameters[name] = token
        else:
            parameters[name] = None
            parameters[companion] = token
    assert sealed.digest is not None and sealed.tokens_digest is not None
    return SealedRow(
        parameters,
        tokens,
        key,
        organization,
        sealed.key_id,
        sealed.digest,
        sealed.tokens_digest,
        [(name, nonce) for (name, _value), nonce in zip(plaintext, sealed.nonces, strict=True)],
        held_tokens,
        packed_key,
        dict(cells),
    )


def batch_parameters(
    shape: Shaped, sealed: Sequence[tuple[Mapping[str, Any], Mapping[str, str]]]
) -> dict[str, str]:
    """The parameters of :meth:`TableAccess.update_by_row_version` for ``sealed``: each row as
    read (with its version) and the tokens sealing it produced (column → token)."""
    names = _token_names(len(shape.mapped.columns))
    columns: dict[str, list[str | None]] = {
        version: [row[version] for row, _tokens in sealed] for version in ROW_VERSION
    }
    for name, column in zip(names, shape.mapped.columns, strict=True):
        columns[name] = [tokens.get(column.name) for _row, tokens in sealed]
    return text_rows_parameters(_BATCH, columns)


@lru_cache(maxsize=64)
def _token_names(count: int) -> tuple[str, ...]:
    return tuple(_TOKEN.format(index) for index in range(count))


def cell_token(column: ResolvedColumn, row: StoredRow) -> str | None:
    """The token ``column`` holds in ``row``, or None where it holds its value (or NULL).

    A text column's token is in the column. A companion column's token counts only while the
    original is NULL: a value beside it was written since and is newer (see :func:`seal_row`).
    Anything in token form counts, damaged or not: opening it tells."""
    stored = row[column.name]
    if column.companion is None:
        return stored if is_token(stored) else None
    if stored is not None:
        return None
    token = row.get(column.companion)
    return None if token is None else str(token)


def unseal_row(access: TableAccess, row: StoredRow, cipher: ValueCipher) -> dict[str, Any] | None:
    """UPDATE parameters that put every original value of ``row`` back; None if nothing is sealed."""
    parameters = _key_parameters(key_of(access, row))
    base: RowContext | None = None
    for column in access.mapped.columns:
        token = cell_token(column, row)
        if access.has_companion(column):
            parameters[str(column.companion)] = None
        if token is None:
            parameters[column.name] = row[column.name]
            continue
        base = base or row_context(access, row)
        parameters[column.name] = cipher.decrypt(token, base.with_column(column.name))
    return parameters if base is not None else None


@lru_cache(maxsize=64)
def _key_parameter_names(count: int) -> tuple[str, ...]:
    return tuple(_KEY_PARAMETER.format(index) for index in range(count))


def _key_parameters(key: tuple[Any, ...]) -> dict[str, Any]:
    return dict(zip(_key_parameter_names(len(key)), key, strict=True))
