"""Which columns of which tables hold sensitive data, and how each will store its token.

A mapping is a TOML file (``--schema FILE``) or, for the demo database, the built-in profile.
It is validated twice: by pydantic for shape and values, then against the live database, so a
typo is reported with the file, the entry and the fix before anything is read or written.
"""

from __future__ import annotations

import difflib
import tomllib
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from sqlalchemy.engine import Engine
from sqlalchemy.engine.interfaces import ReflectedColumn

from tui_migrator.common.categories import CATEGORY_NAMES, DataCategory
from tui_migrator.common.errors import MappingError
from tui_migrator.storage.identifiers import fit_identifier, identifier_limit
from tui_migrator.storage.tables import TABLE_PREFIX

DEFAULT_ORGANIZATION = "default"
COMPANION_SUFFIX = "__tm_token"
BUILTIN_SOURCE = "the built-in demo profile"


class TableMapping(BaseModel):
    """One ``[[tables]]`` entry."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1)
    category: DataCategory
    primary_key: list[str] = Field(min_length=1)
    organization_column: str | None = None
    # With organization_column: the organization for rows whose column is NULL or empty (without
    # it such rows are refused). Without organization_column: the organization of every row.
    default_organization: str | None = None
    columns: list[str] = Field(min_length=1)

    @field_validator("primary_key", mode="before")
    @classmethod
    def _key_as_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("primary_key", "columns")
    @classmethod
    def _no_duplicates(cls, value: list[str]) -> list[str]:
        duplicates = sorted({name for name in value if value.count(name) > 1})
        if duplicates:
            raise ValueError(f"lists {', '.join(duplicates)} more than once")
        if any(not name for name in value):
            raise ValueError("contains an empty column name")
        return value

    @model_validator(mode="after")
    def _columns_are_separate(self) -> TableMapping:
        in_key = [name for name in self.columns if name in self.primary_key]
        if in_key:
            raise ValueError(
                f"sensitive column(s) {', '.join(in_key)} are part of the primary key; a key "
                "cannot be encrypted because rows are found by it. Remove them from 'columns'"
            )
        if self.organization_column and self.organization_column in self.columns:
            raise ValueError(
                f"the organization column '{self.organization_column}' is listed as sensitive; "
                "it selects the organization's key, so it must stay readable"
            )
        return self

    @property
    def organization_for_all_rows(self) -> str | None:
        if self.organization_column is None:
            return self.default_organization or DEFAULT_ORGANIZATION
        return None


class SchemaMapping(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tables: list[TableMapping] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_tables(self) -> SchemaMapping:
        names = [table.name for table in self.tables]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"table(s) {', '.join(duplicates)} are mapped more than once")
        return self


class Storage(StrEnum):
    """Where a column's token goes."""

    IN_PLACE = "in_place"  # unbounded text column: the token replaces the value
    COMPANION = "companion"  # any other type: token in <column>__tm_token, original set to NULL


@dataclass(frozen=True)
class ResolvedColumn:
    name: str
    sql_type: str
    nullable: bool
    storage: Storage
    # The database's limit on identifiers in bytes (63 on PostgreSQL), or None for none (SQLite).
    identifier_limit: int | None = None

    @cached_property
    def companion(self) -> str | None:
        """The companion column's name: ``<column>__tm_token``, or — where that is longer than
        the database allows — shortened with a hash (see :func:`fit_identifier`). Resume, rollback
        and verification find the companion by this name, so it depends only on the column's
        name and the database's limit (SQLite has none: its companions always have the plain
        name, as they always had)."""
        if self.storage is not Storage.COMPANION:
            return None
        name = self.name + COMPANION_SUFFIX
        return name if self.identifier_limit is None else fit_identifier(name, self.identifier_limit)


@dataclass(frozen=True)
class ResolvedTable:
    name: str
    category: DataCategory
    primary_key: tuple[str, ...]
    organization_column: str | None
    default_organization: str | None
    columns: tuple[ResolvedColumn, ...]

    def column(self, name: str) -> ResolvedColumn:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)


@dataclass(frozen=True)
class ResolvedMapping:
    """A mapping checked against the live database."""

    source: str
    tables: tuple[ResolvedTable, ...]

    def table(self, name: str) -> ResolvedTable:
        for table in self.tables:
            if table.name == name:
                return table
        raise MappingError(f"The table '{name}' is not in the mapping ({self.source}).")

    def tables_in(self, categories: Iterable[DataCategory]) -> tuple[ResolvedTable, ...]:
        wanted = set(categories)
        return tuple(table for table in self.tables if not wanted or table.category in wanted)


def load_mapping_file(path: Path) -> SchemaMapping:
    """Parse and validate a mapping TOML file (shape and values only)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MappingError(
            f"The schema mapping file {path} does not exist.",
            hint="Check the path given to --schema or TUI_MIGRATOR_SCHEMA.",
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise MappingError(f"The schema mapping file {path} cannot be read: {error}.") from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise MappingError(
            f"The schema mapping file {path} is not valid TOML: {error}.",
            hint="Fix the syntax at that line; see the README for an example mapping.",
        ) from None
    return parse_mapping(document, source=str(path))


def parse_mapping(document: dict[str, Any], *, source: str) -> SchemaMapping:
    try:
        return SchemaMapping.model_validate(document)
    except ValidationError as error:
        raise MappingError(_describe_validation_error(error, document, source)) from None


def resolve_mapping(mapping: SchemaMapping, engine: Engine, *, source: str) -> ResolvedMapping:
    """Check every entry against the live database and decide each column's storage."""
    inspector = sa.inspect(engine)
    existing_tables = set(inspector.get_table_names())
    limit = identifier_limit(engine.dialect)
    resolved = []
    for index, entry in enumerate(mapping.tables):
        where = f'tables[{index}] (name = "{entry.name}") in {source}'
        if entry.name.startswith(TABLE_PREFIX):
            raise MappingError(
                f"{where} names one of the tool's own tables.",
                hint="Remove it: tables starting with 'tm_' belong to tui-migrator.",
            )
        if entry.name not in existing_tables:
            raise MappingError(
                f"{where}: the table '{entry.name}' does not exist in the database."
                + _did_you_mean(entry.name, existing_tables),
                hint="Pass --schema FILE to map this database's own tables."
                if source == BUILTIN_SOURCE
                else "Fix the name, or point --db at the database that holds it.",
            )
        with warnings.catch_warnings():
            # SQLite accepts any type name; one SQLAlchemy does not know is reflected as NullType
            # (stored with a companion column, which holds any value) with a warning.
            warnings.filterwarnings("ignore", "Did not recognize type", sa.exc.SAWarning)
            columns = {column["name"]: column for column in inspector.get_columns(entry.name)}
        for role, names in (
            ("primary key column", entry.primary_key),
            ("organization column", [entry.organization_column] if entry.organization_column else []),
            ("sensitive column", entry.columns),
        ):
            for name in names:
                if name not in columns:
                    raise MappingError(
                        f"{where}: the {role} '{name}' does not exist in table '{entry.name}'."
                        + _did_you_mean(name, columns),
                        hint=f"Columns of '{entry.name}': {', '.join(columns)}.",
                    )
        _check_key_is_unique(inspector, entry, where)
        resolved_columns = tuple(_resolve_column(columns[name], limit) for name in entry.columns)
        for column in resolved_columns:
            if column.storage is Storage.COMPANION and not column.nullable:
                raise MappingError(
                    f"{where}: the sensitive column '{column.name}' is {column.sql_type} NOT NULL. "
                    f"Its type cannot hold a token, so the token goes in '{column.companion}' and the "
                    "original must become NULL, which NOT NULL forbids.",
                    hint=f"Make '{column.name}' nullable before migrating, or remove it from columns.",
                )
        resolved.append(
            ResolvedTable(
                name=entry.name,
                category=entry.category,
                primary_key=tuple(entry.primary_key),
                organization_column=entry.organization_column,
                default_organization=entry.default_organization
                if entry.organization_column
                else entry.organization_for_all_rows,
                columns=resolved_columns,
            )
        )
    return ResolvedMapping(source=source, tables=tuple(resolved))


def storage_for(sql_type: sa.types.TypeEngine[Any]) -> Storage:
    """Unbounded text can hold a token in place; every other type needs a companion column."""
    if isinstance(sql_type, sa.String) and sql_type.length is None and not isinstance(sql_type, sa.Enum):
        return Storage.IN_PLACE
    return Storage.COMPANION


def _resolve_column(column: ReflectedColumn, limit: int | None) -> ResolvedColumn:
    sql_type = column["type"]
    return ResolvedColumn(
        name=column["name"],
        sql_type=str(sql_type),
        nullable=bool(column.get("nullable", True)),
        storage=storage_for(sql_type),
        identifier_limit=limit,
    )


def _check_key_is_unique(inspector: sa.Inspector, entry: TableMapping, where: str) -> None:
    wanted = set(entry.primary_key)
    declared = inspector.get_pk_constraint(entry.name).get("constrained_columns") or []
    unique_sets = [set(declared)] if declared else []
    unique_sets += [set(c["column_names"]) for c in inspector.get_unique_constraints(entry.name)]
    unique_sets += [
        {name for name in index["column_names"] if name is not None}
        for index in inspector.get_indexes(entry.name)
        # An expression index has None for its expression: it is no key of plain columns.
        if index.get("unique") and all(index["column_names"])
    ]
    if wanted not in unique_sets:
        actual = f" Its primary key is ({', '.join(declared)})." if declared else ""
        raise MappingError(
            f"{where}: primary_key ({', '.join(entry.primary_key)}) is not a primary key or "
            f"unique constraint of '{entry.name}', so it cannot identify rows.{actual}",
            hint="Use the table's primary key columns, or add a unique constraint on them.",
        )


def _did_you_mean(name: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=1)
    return f" Did you mean '{close[0]}'?" if close else ""


def _describe_validation_error(error: ValidationError, document: dict[str, Any], source: str) -> str:
    problems = []
    for detail in error.errors():
        location = _location_text(detail["loc"], document)
        problems.append(f"{location}: {_problem_text(detail)}")
    heading = f"The schema mapping in {source} is invalid"
    return heading + (": " + problems[0] + "." if len(problems) == 1 else ":\n  - " + "\n  - ".join(problems))


def _location_text(location: Sequence[int | str], document: dict[str, Any]) -> str:
    parts: list[str] = []
    for part in location:
        if isinstance(part, int):
            parts[-1:] = [f"{parts[-1] if parts else ''}[{part}]"]
        else:
            parts.append(str(part))
    text = ".".join(parts) or "the document"
    if len(location) >= 2 and location[0] == "tables" and isinstance(location[1], int):
        tables = document.get("tables")
        if isinstance(tables, list) and location[1] < len(tables) and isinstance(tables[location[1]], dict):
            name = tables[location[1]].get("name")
            if isinstance(name, str):
                text += f' (table "{name}")'
    return text


def _problem_text(detail: Any) -> str:
    kind = detail["type"]
    if kind == "enum":
        return f"'{detail['input']}' is not a data category; use one of {', '.join(CATEGORY_NAMES)}"
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden" and len(detail["loc"]) == 1:
        return "is not a known setting (a mapping holds only [[tables]] entries)"
    if kind == "extra_forbidden":
        return (
            "is not a known setting (allowed: name, category, primary_key, organization_column, "
            "default_organization, columns)"
        )
    if kind == "too_short":
        return "must not be empty"
    message = str(detail["msg"])
    return message.removeprefix("Value error, ")
