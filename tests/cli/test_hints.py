"""A command the CLI suggests reaches the same database and mapping: without --db and --schema it
would open the default demo database, where the migration does not exist."""

from __future__ import annotations

from pathlib import Path

from tests.support.databases import make_settings
from tui_migrator.cli.migration_commands import same_database_flags


def test_suggested_commands_name_the_database_and_the_mapping(tmp_path: Path) -> None:
    mapping = tmp_path / "mapping.toml"
    settings = make_settings(
        tmp_path, database_url=f"sqlite:///{tmp_path / 'clinic.db'}", schema_path=mapping
    )
    assert same_database_flags(settings) == f" --db sqlite:///{tmp_path / 'clinic.db'} --schema {mapping}"


def test_a_password_in_the_url_is_never_repeated_on_screen(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, database_url="postgresql+psycopg://migrator:s3cret@db/clinic")
    flags = same_database_flags(settings)
    assert "s3cret" not in flags
    assert flags == " --db <the same URL>"
