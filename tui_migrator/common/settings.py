"""Where the tool's data lives and which database, mapping and master key it uses.

Precedence, highest first: command-line options, ``TUI_MIGRATOR_*`` environment variables,
platformdirs defaults. The CLI only overrides; everything else reads a :class:`Settings`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import platformdirs
from pydantic import BaseModel, ConfigDict, SecretStr

APP_NAME = "tui-migrator"
ENV_PREFIX = "TUI_MIGRATOR_"
DEMO_DATABASE_FILENAME = "tui-migrator.db"
MASTER_KEY_FILENAME = "master.key"

ENV_DATA_DIR = ENV_PREFIX + "DATA_DIR"
ENV_DB = ENV_PREFIX + "DB"
ENV_SCHEMA = ENV_PREFIX + "SCHEMA"
ENV_MASTER_KEY = ENV_PREFIX + "MASTER_KEY"
ENV_MASTER_KEY_FILE = ENV_PREFIX + "MASTER_KEY_FILE"


class Settings(BaseModel):
    """Resolved settings for one run of the tool."""

    model_config = ConfigDict(frozen=True)

    data_dir: Path
    database_url: str | None = None
    schema_path: Path | None = None
    master_key: SecretStr | None = None
    master_key_file: Path | None = None
    readonly: bool = False

    @property
    def uses_embedded_database(self) -> bool:
        """True when no database was named, so the demo SQLite file in the data dir is used."""
        return self.database_url is None

    @property
    def effective_database_url(self) -> str:
        if self.database_url is not None:
            return self.database_url
        return f"sqlite:///{self.data_dir / DEMO_DATABASE_FILENAME}"

    @property
    def effective_master_key_file(self) -> Path:
        return self.master_key_file or self.data_dir / MASTER_KEY_FILENAME

    @classmethod
    def resolve(
        cls, overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
    ) -> Settings:
        """Build settings from CLI ``overrides`` (``None`` values ignored) over the environment."""
        env = os.environ if environ is None else environ
        given = {key: value for key, value in (overrides or {}).items() if value is not None}

        def pick(field: str, variable: str) -> Any:
            if field in given:
                return given[field]
            value = env.get(variable)
            return value if value else None

        data_dir = pick("data_dir", ENV_DATA_DIR) or platformdirs.user_data_dir(APP_NAME)
        master_key = env.get(ENV_MASTER_KEY) or None
        return cls(
            data_dir=Path(data_dir).expanduser(),
            database_url=pick("database_url", ENV_DB),
            schema_path=pick("schema_path", ENV_SCHEMA),
            master_key=SecretStr(master_key) if master_key else None,
            master_key_file=pick("master_key_file", ENV_MASTER_KEY_FILE),
            readonly=bool(given.get("readonly", False)),
        )
