"""Statements built once in a process and run for every batch or window with new parameters.

A run reads a thousand rows at a time, three times over (the batch, the backups' read-back, the
verification), each time with a SELECT whose shape never changes: only the keys do. Building
that SELECT with SQLAlchemy and working out its cache key (to find its compiled form) took
1.4 ms; the same statement object run again with new parameters, 0.06 ms, as SQLAlchemy keeps
its cache key (2026-12-06, the verification's statement on SQLite). Over 100,000 rows that is
0.14 s of one core for each pass. The keys come in as parameters (column_storage.KeyParameters).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")

# Statements kept per process: a run keeps a few per table; an old run's give way to new ones.
MAX_BUILT = 256

_built: OrderedDict[tuple[int, Hashable], tuple[object, Any]] = OrderedDict()
_lock = threading.Lock()


def built_once(owner: object, what: Hashable, build: Callable[[], T]) -> T:
    """``build()``, made once for ``owner`` (the object it is built from, by identity: a
    table's reflected access, say) and ``what`` (which statement, and whatever else it depends
    on), then the same one. ``owner`` is held while its statement is kept, so its identity is
    never another object's."""
    key = (id(owner), what)
    with _lock:
        found = _built.get(key)
        if found is not None:
            _built.move_to_end(key)
            return found[1]  # type: ignore[no-any-return]
    statement = build()
    with _lock:
        _built[key] = (owner, statement)
        while len(_built) > MAX_BUILT:
            _built.popitem(last=False)
    return statement
