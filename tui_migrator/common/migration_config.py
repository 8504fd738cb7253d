"""The seed's ``MigrationConfig``: what a migration may be asked to do, validated before anything runs."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

from tui_migrator.common.categories import CATEGORY_NAMES, DataCategory
from tui_migrator.common.errors import InvalidMigrationConfig
from tui_migrator.common.windows import (
    Schedule,
    local_zone_name,
    parse_not_before,
    parse_window,
    zone_named,
)

MIN_BATCH_SIZE = 1
MAX_BATCH_SIZE = 1000
MIN_CONCURRENCY = 1
MAX_CONCURRENCY = 10
AUTO = "auto"
# The keys this tool adds to the seed's MigrationConfig (as JSON spells them), each left out of
# a configuration's JSON while unset (None, False): one that sets none reads as the seed's does.
TOOL_KEYS = ("window", "timezone", "notBefore", "sweepLater")


class MigrationConfig(BaseModel):
    """Validated configuration; field names in JSON are the seed's camelCase ones."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)

    batch_size: int | Literal["auto"] = Field(default=100)
    max_concurrency: int = Field(default=2)
    dry_run: bool = False
    data_categories: list[DataCategory] = Field(default_factory=list)
    organization_ids: list[str] = Field(default_factory=list)
    skip_integrity_checks: bool = False
    create_backups: bool = True
    # When it may take batches (common/windows.py): a daily maintenance window "HH:MM-HH:MM"
    # and a scheduled start, both in ``timezone`` (an IANA name; the machine's zone when either
    # is given without one, written into the configuration so every process reads them alike).
    window: str | None = None
    timezone: str | None = None
    not_before: str | None = None
    # SQLite: leave the sweep after the migration to the operator (`sweep ID`) instead of
    # running it as the migration completes. Its VACUUM holds the write lock over the whole file
    # while it rebuilds it, so the application's writes wait; put off, they wait when the
    # operator chooses, and until then the old plaintext stays in the file's free space.
    # PostgreSQL's sweep is always the operator's: there it changes nothing.
    sweep_later: bool = False

    @model_validator(mode="before")
    @classmethod
    def _default_zone(cls, values: Any) -> Any:
        if not isinstance(values, dict):
            return values
        scheduled = any(values.get(key) for key in ("window", "not_before", "notBefore"))
        if scheduled and values.get("timezone") is None:
            return {**values, "timezone": local_zone_name()}
        return values

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        return None if value is None else zone_named(value).key

    @field_validator("window")
    @classmethod
    def _window(cls, value: str | None) -> str | None:
        # Written the one way (01:00-05:00) whatever the spacing or leading zeros given.
        return None if value is None else parse_window(value, zone_named("UTC")).text

    @field_validator("not_before")
    @classmethod
    def _not_before(cls, value: str | None) -> str | None:
        if value is not None:
            parse_not_before(value, zone_named("UTC"))
        return value

    @field_validator("batch_size", mode="before")
    @classmethod
    def _batch_size(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() == AUTO:
            return AUTO
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(
                f"must be a whole number from {MIN_BATCH_SIZE} to {MAX_BATCH_SIZE}, or 'auto', not {value!r}"
            )
        if not MIN_BATCH_SIZE <= value <= MAX_BATCH_SIZE:
            raise ValueError(f"must be from {MIN_BATCH_SIZE} to {MAX_BATCH_SIZE} (or 'auto'), not {value}")
        return value

    @field_validator("max_concurrency", mode="before")
    @classmethod
    def _concurrency(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(
                f"must be a whole number from {MIN_CONCURRENCY} to {MAX_CONCURRENCY}, not {value!r}"
            )
        if not MIN_CONCURRENCY <= value <= MAX_CONCURRENCY:
            raise ValueError(f"must be from {MIN_CONCURRENCY} to {MAX_CONCURRENCY}, not {value}")
        return value

    @field_validator("data_categories", mode="before")
    @classmethod
    def _categories(cls, value: Any) -> Any:
        if isinstance(value, list):
            unknown = [item for item in value if str(item).upper() not in CATEGORY_NAMES]
            if unknown:
                raise ValueError(
                    f"{', '.join(map(str, unknown))} is not a data category; use {', '.join(CATEGORY_NAMES)}"
                )
            return list(dict.fromkeys(str(item).upper() for item in value))
        return value

    @field_validator("organization_ids")
    @classmethod
    def _organizations(cls, value: list[str]) -> list[str]:
        if any(not item.strip() for item in value):
            raise ValueError("contains an empty organization id")
        return list(dict.fromkeys(value))

    @property
    def organizations_in_scope(self) -> tuple[str, ...] | None:
        """The organizations whose rows the migration takes; None: every organization's."""
        return tuple(self.organization_ids) or None

    @property
    def auto_batch_size(self) -> bool:
        return self.batch_size == AUTO

    @property
    def schedule(self) -> Schedule | None:
        """When it may take batches; None when any time will do."""
        if self.window is None and self.not_before is None:
            return None
        zone = zone_named(self.timezone or local_zone_name())
        return Schedule(
            window=None if self.window is None else parse_window(self.window, zone),
            not_before=None if self.not_before is None else parse_not_before(self.not_before, zone),
            zone=zone,
        )

    def to_json_data(self) -> dict[str, Any]:
        """The seed's keys, and this tool's only where set (a schedule, a sweep put off): a
        migration that sets none reads exactly as the seed's configuration does."""
        data = self.model_dump(mode="json", by_alias=True)
        return {
            key: value
            for key, value in data.items()
            if key not in TOOL_KEYS or (value is not None and value is not False)
        }


def parse_config(values: dict[str, Any]) -> MigrationConfig:
    """Validate ``values`` (snake_case or camelCase keys), raising a plain-words error."""
    try:
        return MigrationConfig.model_validate(values)
    except ValidationError as error:
        problems = []
        for detail in error.errors():
            field = ".".join(str(part) for part in detail["loc"] if not isinstance(part, int)) or "config"
            message = str(detail["msg"]).removeprefix("Value error, ")
            if detail["type"] == "extra_forbidden":
                message = "is not a migration setting"
            problems.append(f"{_option_name(field)}: {message}")
        raise InvalidMigrationConfig(
            "Invalid migration configuration: " + "; ".join(problems) + ".",
            hint="Nothing was started or written. Fix the value and try again.",
        ) from None


def _option_name(field: str) -> str:
    """The name an operator typed: batchSize → --batch-size."""
    options = {
        "batchSize": "--batch-size",
        "batch_size": "--batch-size",
        "maxConcurrency": "--max-concurrency",
        "max_concurrency": "--max-concurrency",
        "dataCategories": "--category",
        "data_categories": "--category",
        "organizationIds": "--organization",
        "organization_ids": "--organization",
        "notBefore": "--not-before",
        "not_before": "--not-before",
        "window": "--window",
        "timezone": "--timezone",
    }
    return options.get(field, field)
