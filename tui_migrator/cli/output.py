"""How command results reach the terminal: one JSON object, or readable text."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from rich.console import Console, Group, RenderableType
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from tui_migrator.common.errors import MigratorError
from tui_migrator.common.settings import Settings
from tui_migrator.service.hints import addressed


@dataclass
class Result:
    """What a command produced: ``data`` for ``--json``, ``text`` for people.

    ``success`` false with exit code 1 is for operations that ran and found a problem (for
    example a broken audit chain): the data is still printed in full.
    """

    data: dict[str, Any]
    text: Sequence[RenderableType] = field(default_factory=list)
    success: bool = True
    error: str | None = None

    @property
    def exit_code(self) -> int:
        return 0 if self.success else 1


def emit_result(
    result: Result, *, as_json: bool, stream: TextIO | None = None, settings: Settings | None = None
) -> None:
    """Print ``result``; every command it suggests names the database in use (``settings``)."""
    stream = stream or sys.stdout
    if as_json:
        payload: dict[str, Any] = {"success": result.success}
        if result.error:
            payload["error"] = result.error
        payload["data"] = result.data
        stream.write(json.dumps(payload, ensure_ascii=False, indent=2, default=str) + "\n")
        return
    console = Console(file=stream, highlight=False, soft_wrap=False)
    for renderable in result.text:
        if isinstance(renderable, Text) and addressed(renderable.plain, settings) != renderable.plain:
            renderable = Text(addressed(renderable.plain, settings), style=renderable.style)
        if isinstance(renderable, Table) and _natural_width(console, renderable) > console.width:
            renderable = _stacked(renderable)
        console.print(renderable)


UNLIMITED_WIDTH = 100_000


def _natural_width(console: Console, table: Table) -> int:
    """The width the table would take with no limit (a measurement stops at the terminal's)."""
    unlimited = console.options.update(max_width=UNLIMITED_WIDTH)
    return Measurement.get(console, unlimited, table).maximum


def _stacked(table: Table) -> RenderableType:
    """A table too wide for the terminal (80 columns over SSH), as one block per row of
    ``heading: value`` lines: every name read whole instead of cut to `demogra…` or folded
    mid-word."""
    cells = [list(column.cells) for column in table.columns]
    if not table.show_header and len(cells) == 2:
        return _labelled(table, cells[0], cells[1])
    lines = [str(table.title)] if table.title else []
    headings = [str(column.header) for column in table.columns]
    width = max(len(heading) for heading in headings)
    for row in range(table.row_count):
        lines.append("")
        for heading, column in zip(headings, cells, strict=True):
            value = str(column[row]) if row < len(column) else ""
            if value:
                lines.append(f"{heading:>{width}}: {value}")
    return Text("\n".join(lines))


def _labelled(table: Table, labels: list[Any], values: list[Any]) -> RenderableType:
    """A table of labels and their values (no header: `estimate`, `health`), one ``label:
    value`` row each, without its frame: its hidden headings ("what", "value") would say
    nothing. Labels are never wrapped (a category's indentation kept); a value too long for
    the line wraps under its own column."""
    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True)
    grid.add_column()
    for label, value in zip(labels, values, strict=False):
        grid.add_row(f"{label}:", value)  # as the table would have rendered it
    return Group(Text(str(table.title)), grid) if table.title else grid


def emit_error(error: MigratorError, *, as_json: bool, settings: Settings | None = None) -> None:
    """Errors go to stdout as JSON with ``--json`` (so the caller parses one stream), else stderr.
    A command the hint suggests names the database in use (``settings``)."""
    message = addressed(error.message, settings)
    hint = None if error.hint is None else addressed(error.hint, settings)
    if as_json:
        payload = {"success": False, "error": message, "errorCode": error.code}
        if hint:
            payload["hint"] = hint
        sys.stdout.write(json.dumps(payload, ensure_ascii=False, indent=2) + "\n")
        return
    sys.stderr.write(f"error: {message}\n")
    if hint:
        sys.stderr.write(f"  {hint}\n")
