"""Statements the run's threads share are keyed (SQLAlchemy's cache key) when they are built, in
one thread, so two threads never make the same statement's key side by side on its first
execution (storage/database.keyed_now; a CI run died with a segmentation fault there)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from tui_migrator.storage.database import PlainInsertFirst, keyed_now

TABLE = sa.Table(
    "patients", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True), sa.Column("name", sa.Text)
)


def is_keyed(statement: sa.Executable) -> bool:
    # SQLAlchemy keeps a made key on the statement (HasMemoized); it is made once.
    return "_generate_cache_key" in vars(statement)


def test_a_statement_is_keyed_when_built_and_keeps_the_same_key() -> None:
    statement = sa.update(TABLE).values(name=sa.bindparam("name")).where(TABLE.c.id == sa.bindparam("key"))
    assert not is_keyed(statement)
    assert keyed_now(statement) is statement
    assert is_keyed(statement)
    assert statement._generate_cache_key() is statement._generate_cache_key()


def test_both_forms_of_a_plain_insert_first_are_keyed_when_made() -> None:
    statement = postgresql.insert(TABLE).values(id=sa.bindparam("id"), name=sa.bindparam("name"))
    insert = PlainInsertFirst(statement, statement.on_conflict_do_nothing())
    assert is_keyed(insert.plain)
    assert is_keyed(insert.on_conflict)
