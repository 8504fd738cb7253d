"""Where a PostgreSQL server spends its time, statement by statement, while one contender runs.

The peers benchmark's tool runs on PostgreSQL send a few statements a batch (the batch's read,
its UPDATE, its row metadata and backups, verification's lookups); how long the server takes to
execute each is read from ``pg_stat_statements``, reset before the run and read right after it,
for the run's own database only (its ``dbid``). Execution time only: the extension leaves
planning out unless ``pg_stat_statements.track_planning`` is on. The module must be loaded when
the server starts (``shared_preload_libraries``): the benchmark's throwaway cluster loads it where
the server has it; on a server given with ``--db`` it is used where it is loaded already (its
extension created in the database of the URL if it is not there yet, which needs the right to),
and the output says when it cannot be.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg

MODULE = "pg_stat_statements"
# What a cluster started for the benchmark sets to have it (see tests/support/postgres_cluster.py).
SETTINGS = {"shared_preload_libraries": f"'{MODULE}'"}
SHOWN = 8  # statements printed, the costliest first
_SHOWN_CHARACTERS = 96


@dataclass(frozen=True)
class Statement:
    calls: int
    total_ms: float
    rows: int
    text: str  # normalized by the extension: constants are $1, $2, …

    @property
    def ms_per_call(self) -> float:
        return self.total_ms / self.calls if self.calls else 0.0


class ServerStatements:
    """The server's statement statistics, through ``connect`` (an autocommit connection to a
    database of the server other than the runs')."""

    def __init__(self, connect: Callable[[], psycopg.Connection[Any]]) -> None:
        self._connect = connect
        self.missing: str | None = None  # why there are none, where there are none
        try:
            with connect() as connection:
                loaded = connection.execute("SHOW shared_preload_libraries").fetchone()
                if not loaded or MODULE not in str(loaded[0]):
                    self.missing = f"{MODULE} is not loaded on this server (shared_preload_libraries)"
                    return
                connection.execute(f"CREATE EXTENSION IF NOT EXISTS {MODULE}")
                connection.execute(f"SELECT 1 FROM {MODULE} LIMIT 1").fetchall()
        except psycopg.Error as error:
            self.missing = f"{MODULE} cannot be read here: {str(error).strip().splitlines()[0]}"

    @property
    def available(self) -> bool:
        return self.missing is None

    def reset(self) -> None:
        with self._connect() as connection:
            connection.execute(f"SELECT {MODULE}_reset()")

    def of_database(self, database: str) -> list[Statement]:
        """Every statement run in ``database`` since the last reset, the costliest first."""
        with self._connect() as connection:
            rows = connection.execute(
                f"SELECT s.calls, s.total_exec_time, s.rows, s.query FROM {MODULE} s "
                "JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = %s "
                "ORDER BY s.total_exec_time DESC",
                (database,),
            ).fetchall()
        return [
            Statement(int(calls), float(total), int(count), str(text)) for calls, total, count, text in rows
        ]


def statement_lines(statements: list[Statement], what: str) -> list[str]:
    """The costliest statements of ``what`` (a run), one line each, and the server's total."""
    total = sum(statement.total_ms for statement in statements)
    calls = sum(statement.calls for statement in statements)
    heading = f"where the server's time goes ({what}; {MODULE}: execution, planning left out)"
    lines = [
        f"{heading}: {total / 1000:.2f} s in {calls:,} statements",
        f"  {'calls':>7} {'total ms':>9} {'ms/call':>8} {'rows':>8}  statement",
    ]
    for statement in statements[:SHOWN]:
        text = re.sub(r"\s+", " ", statement.text).strip()
        text = _without_select_list(text)
        if len(text) > _SHOWN_CHARACTERS:
            text = text[: _SHOWN_CHARACTERS - 1] + "…"
        lines.append(
            f"  {statement.calls:>7,} {statement.total_ms:>9,.0f} {statement.ms_per_call:>8.2f} "
            f"{statement.rows:>8,}  {text}"
        )
    return lines


def _without_select_list(text: str) -> str:
    """A SELECT's list of columns says little and would fill the line: "SELECT … FROM" what it
    reads, how. The FROM outside parentheses (a scalar subquery in the list has its own)."""
    if not text.startswith("SELECT "):
        return text
    depth = 0
    for position, character in enumerate(text):
        if character == "(":
            depth += 1
        elif character == ")":
            depth -= 1
        elif depth == 0 and text.startswith(" FROM ", position):
            return "SELECT …" + text[position:]
    return text
