"""At 80 columns the CLI never cuts a name: a table too wide is stacked, one block per row."""

from __future__ import annotations

import io

import pytest
from rich.table import Table

from tui_migrator.cli.output import Result, emit_result


def _table(*rows: tuple[str, str, str]) -> Table:
    table = Table(title="Schema mapping")
    for heading in ("table", "organization", "column"):
        table.add_column(heading)
    for row in rows:
        table.add_row(*row)
    return table


def _printed(table: Table) -> str:
    stream = io.StringIO()
    emit_result(Result(data={}, text=[table]), as_json=False, stream=stream)
    return stream.getvalue()


def test_a_table_too_wide_for_80_columns_is_stacked_with_every_name_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    long_names = (
        "environmental_factors_history",
        "org_karolinska_stockholm_south",
        "medication_dosage_notes",
    )
    printed = _printed(_table(long_names, ("demographics", "org_main", "first_name")))
    assert "…" not in printed
    for name in (*long_names, "demographics", "first_name"):
        assert name in printed
    assert "       table: environmental_factors_history" in printed


def test_a_table_that_fits_stays_a_table(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    printed = _printed(_table(("demographics", "org_main", "first_name")))
    assert "┃ table" in printed and "demographics" in printed


def test_a_table_of_labels_too_wide_is_stacked_as_label_value_lines(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`estimate` and `health` print labels and values with no header: stacked at 80 columns,
    each row is one `label: value` line, not blocks under the hidden headings."""
    monkeypatch.setenv("COLUMNS", "80")
    table = Table(title="Estimate", show_header=False)
    table.add_column("what")
    table.add_column("value")
    table.add_row("Records to encrypt", "17,653")
    table.add_row("  DEMOGRAPHICS", "2,000")
    table.add_row(
        "Rollback time",
        "about 1 second, by decryption or from the sealed backup tables of the migration, "
        "whichever the operator chooses",
    )
    printed = _printed(table)
    assert "what:" not in printed and "value:" not in printed
    lines = [line.rstrip() for line in printed.splitlines()]
    assert lines[:3] == ["Estimate", "Records to encrypt: 17,653", "  DEMOGRAPHICS:     2,000"]
    # A value too long for the line wraps under its own column.
    assert lines[3].startswith("Rollback time:      about 1 second")
    assert lines[4].startswith(" " * len("Rollback time:      ")) and lines[4].strip()
