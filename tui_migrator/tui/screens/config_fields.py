"""The parts of the new-migration form: its starting values, how a typed field is checked, and
the words its checkboxes and scope lists show.

Every check is MigrationConfig's own validator, so the form and the CLI refuse the same values
in the same words.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from textual.content import Content
from textual.validation import ValidationResult, Validator

from tui_migrator.common.migration_config import MigrationConfig
from tui_migrator.tui.formatting import count

# What the form shows, and the estimate screen estimates, before the operator changed anything.
DEFAULT_VALUES: dict[str, Any] = MigrationConfig().model_dump(mode="json")

# The text inputs: widget id → (config field, the name the inline message starts with).
TEXT_FIELDS = {
    "batch-size": ("batch_size", "Batch size"),
    "max-concurrency": ("max_concurrency", "Concurrency"),
    "window": ("window", "Maintenance window"),
    "timezone": ("timezone", "Time zone"),
    "not-before": ("not_before", "Not before"),
}
# The fields an empty input leaves unset, as an option not given on the command line does: no
# window, no scheduled start, and this machine's zone (MigrationConfig writes it in).
OPTIONAL_FIELDS = frozenset({"window", "timezone", "not_before"})

# Checkbox id → its label when unchecked and when checked: the state in words, because the box
# itself differs only in colour.
TOGGLE_LABELS = {
    "dry-run": ("Dry run: no", "Dry run: YES, write nothing"),
    "skip-integrity": ("Skip integrity checks: no", "Skip integrity checks: YES"),
    "create-backups": ("Create backups: NO", "Create backups: yes"),
    "sweep-later": ("Sweep later: no", "Sweep later: YES"),
}


def field_value(field: str, text: str) -> str | None:
    """The value a typed field gives its MigrationConfig field: an optional one without its
    surrounding spaces, and None (unset) when that leaves nothing."""
    if field not in OPTIONAL_FIELDS:
        return text
    return text.strip() or None


def field_problem(field: str, value: str) -> str | None:
    """What is wrong with one MigrationConfig field's typed value, in the model's words."""
    try:
        MigrationConfig.model_validate({field: field_value(field, value)})
    except ValidationError as error:
        return "; ".join(str(detail["msg"]).removeprefix("Value error, ") for detail in error.errors())
    return None


class ConfigFieldValidator(Validator):
    """Validates an Input against one MigrationConfig field."""

    def __init__(self, field: str) -> None:
        super().__init__()
        self.field = field

    def validate(self, value: str) -> ValidationResult:
        problem = field_problem(self.field, value)
        return self.success() if problem is None else self.failure(problem)


def toggle_label(checkbox_id: str, value: bool) -> str:
    return TOGGLE_LABELS[checkbox_id][value]


def scope_prompt(name: str, records: int | None = None, count_width: int = 0) -> Content:
    """` 60 NAME`: the record count, then the name (long names are cut at their end, never the
    count). Whether it is selected, the list's own box says in characters (`[x]`, see
    tui/word_checkbox.py)."""
    counted = "" if records is None else f"{count(records):>{count_width}} "
    return Content(f"{counted}{name}")
