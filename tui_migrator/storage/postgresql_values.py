"""How values travel between psycopg and the tool where the defaults do not serve: PostgreSQL
values with no Python form are loaded as their text, and every session reads a bare NULL in an
array's text as NULL (read_array_nulls_as_null).

psycopg turns ``date``, ``time`` and ``timestamp`` values into Python objects, which cannot hold
'infinity', '-infinity', years before 1 AD or the time 24:00:00; its loaders raise on them. The
tool moves values exactly, so these load as the text PostgreSQL gave: sealed as text, and
written back through the column's own type (the UPDATE casts it), the stored value is unchanged.
Every other value loads as before.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
from psycopg.types import datetime as psycopg_datetime


def _load_or_text(load: Callable[[Any], Any], data: Any) -> Any:
    try:
        return load(data)
    except psycopg.DataError:
        return bytes(data).decode("utf-8")


class _DateOrText(psycopg_datetime.DateLoader):
    def load(self, data: Any) -> Any:
        return _load_or_text(super().load, data)


class _TimeOrText(psycopg_datetime.TimeLoader):
    def load(self, data: Any) -> Any:
        return _load_or_text(super().load, data)


class _TimetzOrText(psycopg_datetime.TimetzLoader):
    def load(self, data: Any) -> Any:
        return _load_or_text(super().load, data)


class _TimestampOrText(psycopg_datetime.TimestampLoader):
    def load(self, data: Any) -> Any:
        return _load_or_text(super().load, data)


class _TimestamptzOrText(psycopg_datetime.TimestamptzLoader):
    def load(self, data: Any) -> Any:
        return _load_or_text(super().load, data)


_LOADERS: dict[str, type[Any]] = {
    "date": _DateOrText,
    "time": _TimeOrText,
    "timetz": _TimetzOrText,
    "timestamp": _TimestampOrText,
    "timestamptz": _TimestamptzOrText,
}


def load_unrepresentable_as_text(connection: object) -> None:
    """Register the text fallback on one psycopg connection (text-format results)."""
    if isinstance(connection, psycopg.Connection):
        for name, loader in _LOADERS.items():
            connection.adapters.register_loader(name, loader)


def read_array_nulls_as_null(connection: object) -> None:
    """Make this session read a bare NULL in an array's text as NULL, whatever the server, the
    database or the role sets: a batch's values travel as arrays in their text form
    (storage.text_arrays), where a cell that keeps what it holds is NULL. With ``array_nulls``
    off, PostgreSQL would read it as the text 'NULL' and the batch's UPDATE would write that
    word over the cell."""
    if isinstance(connection, psycopg.Connection):
        connection.execute("SET array_nulls = on")
        connection.commit()
