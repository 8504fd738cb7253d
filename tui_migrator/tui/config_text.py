"""A migration configuration in words, for the operator to check it against what they meant."""

from __future__ import annotations

from typing import Any


def describe_config(values: dict[str, Any]) -> str:
    """One line an operator can check a configuration against."""
    categories = ", ".join(values["data_categories"]) or "all categories"
    organizations = ", ".join(values["organization_ids"]) or "all organizations"
    parts = [
        f"batch {values['batch_size']}",
        f"concurrency {values['max_concurrency']}",
        categories,
        organizations,
        "backups on" if values["create_backups"] else "backups OFF",
        "dry run" if values["dry_run"] else "real run",
    ]
    if values["skip_integrity_checks"]:
        parts.append("integrity checks SKIPPED")
    if values["sweep_later"]:
        parts.append("sweep later")
    return " · ".join(parts)


def summary_lines(values: dict[str, Any]) -> list[str]:
    """The confirmation's plan, one setting a line, saying what each choice means for the data."""
    return [
        f"Batch size:     {values['batch_size']}, concurrency {values['max_concurrency']}",
        f"Categories:     {', '.join(values['data_categories']) or 'all'}",
        f"Organizations:  {', '.join(values['organization_ids']) or 'all'}",
        "Backups:        "
        + ("on" if values["create_backups"] else "OFF: a rollback relies on decrypting the tokens alone"),
        "Dry run:        "
        + ("yes, nothing is written" if values["dry_run"] else "no, rows are encrypted in place"),
        "Integrity:      "
        + (
            "SKIPPED: written rows are not verified"
            if values["skip_integrity_checks"]
            else "every written row is verified"
        ),
    ]
