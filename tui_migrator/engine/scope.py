"""Which rows a migration will touch: the tables, organizations and rows in scope, counted.

Used by planning (to refuse problems before anything is written) and by estimate (to show the
same problems before an operator starts). Counting and batch selection share one SQL condition
for "still holds plaintext", so an incremental run reads only the rows it has to migrate.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tui_migrator.common.errors import BadInput, InvalidMigrationConfig
from tui_migrator.common.migration_config import MigrationConfig
from tui_migrator.crypto.tokens import TOKEN_PREFIX
from tui_migrator.storage.column_storage import (
    KeyOrParameters,
    RecordRefused,
    TableAccess,
    organization_id,
    reflect,
)
from tui_migrator.storage.mapping import ResolvedMapping, Storage


@dataclass(frozen=True)
class TableScope:
    access: TableAccess
    # None: every organization of the table.
    organizations: tuple[str, ...] | None
    pending_rows: int
    encrypted_rows: int
    rows_without_organization: int
    pending_by_organization: dict[str, int] = field(default_factory=dict)
    # Every row in scope per organization, plaintext or sealed (an evidence bundle's counts).
    rows_by_organization: dict[str, int] = field(default_factory=dict)
    # Rows holding plaintext whose key has a NULL part: no run can address them
    # (TableAccess.addressable), so a start refuses them (refuse_rows_without_key).
    rows_without_key: int = 0

    @property
    def name(self) -> str:
        return self.access.mapped.name


@dataclass(frozen=True)
class MigrationScope:
    tables: tuple[TableScope, ...]

    @property
    def pending_rows(self) -> int:
        return sum(table.pending_rows for table in self.tables)

    @property
    def encrypted_rows(self) -> int:
        return sum(table.encrypted_rows for table in self.tables)

    @property
    def by_category(self) -> dict[str, int]:
        counts: Counter[str] = Counter()
        for table in self.tables:
            counts[table.access.mapped.category.value] += table.pending_rows
        return dict(counts)

    @property
    def by_organization(self) -> dict[str, int]:
        counts: Counter[str] = Counter()
        for table in self.tables:
            counts.update(table.pending_by_organization)
        return dict(sorted(counts.items()))

    @property
    def organizations(self) -> list[str]:
        return sorted(self.by_organization)


def holds_token(value: sa.ColumnElement[Any]) -> sa.ColumnElement[bool]:
    """True where a text column holds a token, false elsewhere (NULL included). SQLite's substr
    of an empty BLOB is NULL, not an empty BLOB: compared as it is, such a cell counted as
    holding neither plaintext nor a token, and its row was never sealed."""
    return sa.func.coalesce(sa.func.substr(value, 1, len(TOKEN_PREFIX)) == TOKEN_PREFIX, sa.false())


def pending_condition(access: TableAccess) -> sa.ColumnElement[bool]:
    """True for rows that still hold plaintext in at least one mapped column."""
    parts = []
    for column in access.mapped.columns:
        value = access.table.c[column.name]
        if column.storage is Storage.IN_PLACE:
            parts.append(sa.and_(value.is_not(None), sa.not_(holds_token(value))))
        else:
            parts.append(value.is_not(None))
    return sa.or_(*parts)


def pending_rows(
    access: TableAccess,
    organizations: tuple[str, ...] | None,
    dialect: str,
    *,
    after: KeyOrParameters | None = None,
    limit: int | sa.BindParameter[Any] | None = None,
) -> sa.Select[Any]:
    """The rows in scope that still hold plaintext, in key order, after the key ``after``; on
    PostgreSQL with each row's version, by which a batch (or its backups) is written in one
    statement while the row is still the one read."""
    query = access.select_rows(after=after, limit=limit).where(
        pending_condition(access), organization_condition(access, organizations)
    )
    if dialect == "postgresql":
        query = query.add_columns(*access.row_version_columns())
    return query


def pending_count(access: TableAccess, organizations: tuple[str, ...] | None) -> sa.Select[Any]:
    """How many rows :func:`pending_rows` selects: the conditions alone, none of the columns a
    batch reads with each row (its version, whether it is backed up), which a count would
    otherwise compute for every row it counts."""
    return _plaintext_rows_where(access, organizations, access.addressable)


def keyless_pending_count(access: TableAccess, organizations: tuple[str, ...] | None) -> sa.Select[Any]:
    """How many rows in scope hold plaintext but have a NULL in their key: the rows
    :func:`pending_count` leaves out, which no run can address (TableAccess.addressable)."""
    return _plaintext_rows_where(access, organizations, sa.not_(access.addressable))


def _plaintext_rows_where(
    access: TableAccess, organizations: tuple[str, ...] | None, keys: sa.ColumnElement[bool]
) -> sa.Select[Any]:
    conditions = (pending_condition(access), organization_condition(access, organizations), keys)
    return sa.select(sa.func.count()).select_from(access.table).where(*conditions)


def organization_text(access: TableAccess) -> sa.ColumnElement[Any] | None:
    """The organization column as text (ids are compared as text whatever the column's type)."""
    name = access.mapped.organization_column
    return None if name is None else sa.cast(access.table.c[name], sa.String)


def organization_condition(
    access: TableAccess, organizations: tuple[str, ...] | None
) -> sa.ColumnElement[bool]:
    """Rows of the selected organizations; rows with an empty column count as the default one."""
    if organizations is None:
        return sa.true()
    mapped = access.mapped
    column = organization_text(access)
    if column is None:
        return sa.true() if mapped.default_organization in organizations else sa.false()
    condition: sa.ColumnElement[bool] = column.in_(organizations)
    if mapped.default_organization in organizations:
        condition = sa.or_(condition, column.is_(None), sa.func.trim(column) == "")
    return condition


def analyse(connection: Connection, mapping: ResolvedMapping, config: MigrationConfig) -> MigrationScope:
    """Count the rows in scope, per table and organization, and check the organizations asked for."""
    requested = config.organizations_in_scope
    tables = []
    known_organizations: set[str] = set()
    for mapped in mapping.tables_in(config.data_categories):
        access = reflect(connection, mapped)
        table_scope, organizations = _analyse_table(connection, access, requested)
        known_organizations |= organizations
        tables.append(table_scope)
    if requested is not None:
        unknown = [org for org in requested if org not in known_organizations]
        if unknown:
            raise unknown_organizations(unknown, known_organizations)
    return MigrationScope(tuple(tables))


SHOWN_ORGANIZATIONS = 10


def unknown_organizations(unknown: list[str], known: set[str]) -> InvalidMigrationConfig:
    """The refusal of organizations no row belongs to, in words that fit wherever the ids came
    from: an --organization option, organizationIds in a --config file, or the TUI's form."""
    names = sorted(known)
    shown = ", ".join(names[:SHOWN_ORGANIZATIONS]) or "none"
    if len(names) > SHOWN_ORGANIZATIONS:
        shown += f" and {len(names) - SHOWN_ORGANIZATIONS} more"
    which = (
        f"Unknown organization {unknown[0]}: no rows of the selected tables belong to it."
        if len(unknown) == 1
        else f"Unknown organizations {', '.join(unknown)}: no rows of the selected tables belong to them."
    )
    return InvalidMigrationConfig(
        f"{which} Organizations in the data: {shown}.",
        hint="Give organization ids from that list (--organization, or organizationIds in a --config "
        "file), or none to include every organization. Nothing was written.",
    )


def rows_without_key_details(scope: MigrationScope) -> str | None:
    """Which tables hold rows no run can address (see TableAccess.addressable), in words; None
    where there are none."""
    return _tables_holding(
        scope,
        lambda table: table.rows_without_key,
        lambda table: f"with NULL in their key ({', '.join(table.access.mapped.primary_key)})",
    )


def _tables_holding(
    scope: MigrationScope, count: Callable[[TableScope], int], described: Callable[[TableScope], str]
) -> str | None:
    """ "table: N rows <described>" for each table where ``count`` is not 0, joined; else None."""
    return (
        "; ".join(
            f"{table.name}: {count(table)} rows {described(table)}" for table in scope.tables if count(table)
        )
        or None
    )


def refuse_rows_without_key(scope: MigrationScope) -> None:
    details = rows_without_key_details(scope)
    if details is None:
        return
    raise BadInput(
        f"Rows whose key is NULL cannot be told apart, so they can be neither encrypted nor backed "
        f"up nor restored one by one ({details}). Nothing was written.",
        hint="Give those rows key values, or map a key whose columns hold no NULL (primary_key "
        "in the schema mapping, --schema).",
    )


def rows_without_organization_details(scope: MigrationScope) -> str | None:
    """Which tables hold rows with no organization, in words; None where there are none."""
    return _tables_holding(
        scope,
        lambda table: table.rows_without_organization,
        lambda table: f"with NULL or empty '{table.access.mapped.organization_column}'",
    )


def refuse_rows_without_organization(scope: MigrationScope) -> None:
    """Rows with no organization cannot be given a key; they are counted and refused, never guessed."""
    details = rows_without_organization_details(scope)
    if details is None:
        return
    first = next(table for table in scope.tables if table.rows_without_organization)
    raise BadInput(
        f"Rows without an organization cannot be encrypted under any organization's key ({details}). "
        "Nothing was written.",
        hint=f"Fill the organization column of those rows, or set default_organization for table "
        f"'{first.name}' in the schema mapping (--schema) to the organization they belong to.",
    )


def organization_counts(access: TableAccess) -> sa.Select[Any]:
    """Each stored value of the organization column: its rows, and how many of them still hold
    plaintext (:func:`pending_condition`).

    Whether a row holds plaintext is worked out row by row in a subquery that SQLite keeps apart
    from the grouping (its LIMIT, which leaves every row in: OFFSET 0). Grouped directly, SQLite
    carried every mapped column's value into the sort that groups the rows and looked at them
    after sorting: a copy of all of the table's values, 0.73 s of CPU against 0.07 for 2,000
    rows of 200 KB, 0.08-0.11 s against 0.05 for the peers benchmark's 100,000 (2026-12-07,
    tests/benchmarks/MEASUREMENTS.md). PostgreSQL aggregates either way."""
    flags = (
        sa.select(
            access.value(str(access.mapped.organization_column)).label("organization"),
            sa.case((pending_condition(access), 1), else_=0).label("pending"),
        )
        .select_from(access.table)
        .offset(0)
        .subquery("rows_flagged")
    )
    return sa.select(flags.c.organization, sa.func.count(), sa.func.sum(flags.c.pending)).group_by(
        flags.c.organization
    )


def _analyse_table(
    connection: Connection, access: TableAccess, requested: tuple[str, ...] | None
) -> tuple[TableScope, set[str]]:
    table_scope, organizations = _count_table(connection, access, requested)
    without_key = connection.execute(keyless_pending_count(access, requested)).scalar_one()
    return replace(table_scope, rows_without_key=int(without_key)), organizations


def _count_table(
    connection: Connection, access: TableAccess, requested: tuple[str, ...] | None
) -> tuple[TableScope, set[str]]:
    mapped = access.mapped
    if organization_text(access) is None:
        pending_count = sa.func.sum(sa.case((pending_condition(access), 1), else_=0))
        in_scope = organization_condition(access, requested)
        total, pending_rows = connection.execute(
            sa.select(sa.func.count(), pending_count).select_from(access.table).where(in_scope)
        ).one()
        pending_rows = int(pending_rows or 0)
        by_organization: dict[str, int] = (
            {mapped.default_organization: pending_rows}
            if pending_rows and mapped.default_organization
            else {}
        )
        all_organizations: set[str] = {mapped.default_organization} if mapped.default_organization else set()
        rows_by_organization: dict[str, int] = (
            {mapped.default_organization: int(total)} if total and mapped.default_organization else {}
        )
        return (
            TableScope(
                access,
                requested,
                pending_rows,
                int(total) - pending_rows,
                0,
                by_organization,
                rows_by_organization,
            ),
            all_organizations,
        )
    # Grouped by the raw stored value and named in Python by the one organization rule
    # (column_storage.organization_id), so 7, '7' and ' ' name what sealing will use.
    rows = connection.execute(organization_counts(access)).all()
    by_organization = {}
    rows_by_organization = {}
    all_organizations = set()
    total = pending_rows = without = 0
    for value, count, pending_in_group in rows:
        pending_in_group = int(pending_in_group or 0)
        try:
            name = organization_id(mapped, value)
        except RecordRefused:
            # Not an organization id: counted, then recorded as failed rows when sealed.
            if requested is None:
                total += count
                pending_rows += pending_in_group
            continue
        if name is not None:
            all_organizations.add(name)
        if requested is not None and name not in requested:
            continue
        total += count
        pending_rows += pending_in_group
        if name is None:
            without += pending_in_group
            continue
        rows_by_organization[name] = rows_by_organization.get(name, 0) + count
        if pending_in_group:
            by_organization[name] = by_organization.get(name, 0) + pending_in_group
    return (
        TableScope(
            access,
            requested,
            pending_rows,
            total - pending_rows,
            without,
            by_organization,
            rows_by_organization,
        ),
        all_organizations,
    )
