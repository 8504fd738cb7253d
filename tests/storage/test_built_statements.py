"""A statement is built once per owner and shape, and run with new keys reads what a statement
built with those keys reads."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from tui_migrator.common.categories import DataCategory
from tui_migrator.storage import built_statements
from tui_migrator.storage.built_statements import built_once
from tui_migrator.storage.column_storage import (
    AFTER_KEY,
    FIRST_KEY,
    LAST_KEY,
    LIMIT_PARAMETER,
    piece_parameters,
    reflect,
)
from tui_migrator.storage.database import create_database_engine, fetch_dicts
from tui_migrator.storage.mapping import ResolvedColumn, ResolvedTable, Storage


class Owner:
    pass


def test_a_statement_is_built_once_per_owner_and_shape() -> None:
    built: list[str] = []

    def build(name: str) -> str:
        built.append(name)
        return f"statement {name}"

    first, second = Owner(), Owner()
    assert built_once(first, "a", lambda: build("first a")) == "statement first a"
    assert built_once(first, "a", lambda: build("again")) == "statement first a"
    assert built_once(first, "b", lambda: build("first b")) == "statement first b"
    assert built_once(second, "a", lambda: build("second a")) == "statement second a"
    assert built == ["first a", "first b", "second a"]


def test_the_oldest_statements_give_way_and_their_owners_are_let_go(monkeypatch: Any) -> None:
    monkeypatch.setattr(built_statements, "MAX_BUILT", 2)
    monkeypatch.setattr(built_statements, "_built", type(built_statements._built)())
    owners = [Owner() for _ in range(3)]
    for number, owner in enumerate(owners):
        built_once(owner, "read", lambda number=number: number)
    assert len(built_statements._built) == 2
    assert all(held is not owners[0] for held, _statement in built_statements._built.values())
    # Built again for the owner whose statement gave way.
    assert built_once(owners[0], "read", lambda: "again") == "again"


MAPPED = ResolvedTable(
    name="visits",
    category=DataCategory.DEMOGRAPHICS,
    primary_key=("site", "number"),
    organization_column=None,
    default_organization="org",
    columns=(ResolvedColumn("note", "TEXT", True, Storage.IN_PLACE),),
)


def test_a_window_read_by_parameters_reads_what_a_window_of_literal_keys_reads(tmp_path: Any) -> None:
    engine = create_database_engine(f"sqlite:///{tmp_path / 'keys.db'}")
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "CREATE TABLE visits (site TEXT, number INTEGER, note TEXT, PRIMARY KEY (site, number))"
        )
        connection.exec_driver_sql(
            "INSERT INTO visits VALUES "
            + ", ".join(f"('{site}', {number}, 'n')" for site in "abc" for number in range(5))
        )
    with engine.connect() as connection:
        access = reflect(connection, MAPPED)
        limit = sa.bindparam(LIMIT_PARAMETER)
        # A window's first piece, and a next one (after a key), as read_sizes.pieces reads them.
        first_piece = built_once(
            access,
            "window",
            lambda: access.select_rows(limit=limit).where(access.key_range(FIRST_KEY, LAST_KEY)),
        )
        next_piece = built_once(
            access,
            "next piece",
            lambda: access.select_rows(limit=limit).where(access.key_after_up_to(AFTER_KEY, LAST_KEY)),
        )
        for first, last in [
            (("a", 3), ("b", 1)),
            (("a", 0), ("c", 4)),
            (("b", 2), ("b", 2)),
            (("c", 5), ("d", 0)),
        ]:
            for rows in (2, 100):
                literal = access.select_rows(limit=rows).where(access.key_range(first, last))
                assert fetch_dicts(connection, first_piece, piece_parameters(first, last, None, rows)) == (
                    fetch_dicts(connection, literal)
                )
                literal = access.select_rows(limit=rows).where(access.key_after_up_to(first, last))
                assert fetch_dicts(connection, next_piece, piece_parameters(first, last, first, rows)) == (
                    fetch_dicts(connection, literal)
                )
        assert built_once(access, "window", lambda: sa.select(sa.literal(1))) is first_piece
    engine.dispose()
