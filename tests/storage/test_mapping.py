"""Schema mappings: every mistake is caught with the file, the entry and the fix; good ones resolve."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.support.databases import make_settings
from tui_migrator.cli.main import main
from tui_migrator.common.errors import MappingError
from tui_migrator.service.facade import MigratorService
from tui_migrator.storage.mapping import ResolvedMapping, Storage, load_mapping_file, resolve_mapping


@pytest.fixture
def clinic_db(tmp_path: Path) -> str:
    """A non-demo database: text, integer and composite primary keys, varied column types."""
    url = f"sqlite:///{tmp_path / 'clinic.db'}"
    engine = sa.create_engine(url)
    metadata = sa.MetaData()
    sa.Table(
        "records",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("organization_id", sa.String(32)),
        sa.Column("first_name", sa.Text),
        sa.Column("last_name", sa.Text),
        sa.Column("birth_date", sa.Date),
        sa.Column("score", sa.Integer),
        sa.Column("code", sa.String(20)),
        sa.Column("payload", sa.JSON),
        sa.Column("notes", sa.Text),
    )
    sa.Table(
        "visits",
        metadata,
        sa.Column("patient", sa.Text, primary_key=True),
        sa.Column("encounter", sa.Integer, primary_key=True),
        sa.Column("code", sa.Text, primary_key=True),
        sa.Column("summary", sa.Text),
    )
    sa.Table(
        "notes_by_ref", metadata, sa.Column("ref", sa.Text, primary_key=True), sa.Column("body", sa.Text)
    )
    sa.Table("no_key", metadata, sa.Column("a", sa.Integer), sa.Column("b", sa.Text))
    metadata.create_all(engine)
    engine.dispose()
    return url


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mapping.toml"
    path.write_text(text, encoding="utf-8")
    return path


GOOD = """
[[tables]]
name = "records"
category = "DEMOGRAPHICS"
primary_key = "id"
organization_column = "organization_id"
columns = ["first_name", "last_name", "birth_date", "score", "code", "payload", "notes"]

[[tables]]
name = "visits"
category = "MOTOR_SYMPTOMS"
primary_key = ["patient", "encounter", "code"]
columns = ["summary"]

[[tables]]
name = "notes_by_ref"
category = "SAFETY_INCIDENTS"
primary_key = "ref"
default_organization = "org_single"
columns = ["body"]
"""


def resolve(path: Path, url: str) -> ResolvedMapping:
    engine = sa.create_engine(url)
    try:
        return resolve_mapping(load_mapping_file(path), engine, source=str(path))
    finally:
        engine.dispose()


def test_text_integer_and_composite_keys_resolve(tmp_path: Path, clinic_db: str) -> None:
    resolved = resolve(write(tmp_path, GOOD), clinic_db)
    records, visits, notes = resolved.tables
    assert records.primary_key == ("id",)
    assert visits.primary_key == ("patient", "encounter", "code")
    assert visits.default_organization == "default"  # no organization column: one default organization
    assert notes.primary_key == ("ref",) and notes.default_organization == "org_single"
    storage = {column.name: column.storage for column in records.columns}
    assert storage == {
        "first_name": Storage.IN_PLACE,
        "last_name": Storage.IN_PLACE,
        "notes": Storage.IN_PLACE,
        "birth_date": Storage.COMPANION,
        "score": Storage.COMPANION,
        "code": Storage.COMPANION,  # VARCHAR(20) cannot hold a token
        "payload": Storage.COMPANION,
    }
    assert records.column("score").companion == "score__tm_token"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[[tables]\nname = 'x'", r"is not valid TOML.*line 1"),
        (
            GOOD.replace('name = "records"', 'name = "recordz"'),
            r'tables\[0\] \(name = "recordz"\) in .*mapping.toml: the table \'recordz\' does not exist.*Did you mean \'records\'\?',
        ),
        (
            GOOD.replace('"last_name", ', '"lastname", '),
            r"tables\[0\].*sensitive column 'lastname' does not exist in table 'records'.*Did you mean 'last_name'",
        ),
        (
            GOOD.replace(
                'primary_key = ["patient", "encounter", "code"]', 'primary_key = ["patient", "visit"]'
            ),
            r"tables\[1\].*primary key column 'visit' does not exist in table 'visits'",
        ),
        (
            GOOD.replace('organization_column = "organization_id"', 'organization_column = "org"'),
            r"organization column 'org' does not exist",
        ),
        (
            GOOD.replace('category = "DEMOGRAPHICS"', 'category = "DEMOGRAPHIC"'),
            r'tables\[0\].category \(table "records"\): \'DEMOGRAPHIC\' is not a data category; use one of DEMOGRAPHICS',
        ),
        (
            GOOD.replace('columns = ["summary"]', 'columns = ["summary", "code"]'),
            r"tables\[1\] \(table \"visits\"\).*column\(s\) code are part of the primary key.*Remove them",
        ),
        (
            GOOD.replace('columns = ["first_name",', 'columns = ["organization_id", "first_name",'),
            r"organization column 'organization_id' is listed as sensitive",
        ),
        (
            GOOD
            + '\n[[tables]]\nname = "records"\ncategory = "DEMOGRAPHICS"\nprimary_key = "id"\ncolumns = ["notes"]\n',
            r"records are mapped more than once",
        ),
        (
            GOOD.replace('primary_key = "ref"', 'primary_key = "body"').replace(
                'columns = ["body"]', 'columns = ["ref"]'
            ),
            r"primary_key \(body\) is not a primary key or unique constraint of 'notes_by_ref'.*Its primary key is \(ref\)",
        ),
        (
            GOOD.replace('primary_key = "id"', 'primary_key = "id"\ncolums = ["x"]'),
            r"tables\[0\].colums.*not a known setting",
        ),
        (GOOD.replace('columns = ["body"]', "columns = []"), r"tables\[2\].columns.*must not be empty"),
        (
            '[[tables]]\nname = "no_key"\ncategory = "DEMOGRAPHICS"\nprimary_key = "a"\ncolumns = ["b"]\n',
            r"primary_key \(a\) is not a primary key or unique constraint",
        ),
        (
            '[[tables]]\nname = "tm_audit"\ncategory = "DEMOGRAPHICS"\nprimary_key = "seq"\ncolumns = ["details"]\n',
            r"tool's own tables",
        ),
        ("tables = []", r"tables: must not be empty"),
    ],
    ids=[
        "toml-syntax",
        "missing-table",
        "missing-column",
        "missing-key-column",
        "missing-org-column",
        "unknown-category",
        "sensitive-key-column",
        "sensitive-org-column",
        "duplicate-table",
        "non-unique-key",
        "unknown-setting",
        "no-columns",
        "table-without-key",
        "tool-table",
        "no-tables",
    ],
)
def test_mapping_errors_name_the_file_the_entry_and_the_fix(
    tmp_path: Path, clinic_db: str, text: str, expected: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(MappingError, match=expected) as raised:
        resolve(path, clinic_db)
    assert str(path) in str(raised.value)
    assert raised.value.exit_code == 2


def test_missing_mapping_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(MappingError, match="does not exist.*--schema"):
        load_mapping_file(tmp_path / "nope.toml")


def set_up(url: str, data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["init", "--db", url, "--data-dir", str(data_dir)]) == 0
    capsys.readouterr()


def test_cli_mapping_error_exits_2_and_writes_nothing(
    tmp_path: Path, clinic_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, GOOD.replace('category = "DEMOGRAPHICS"', 'category = "NOPE"'))
    set_up(clinic_db, tmp_path / "d", capsys)
    code = main(
        ["mapping", "--json", "--db", clinic_db, "--schema", str(path), "--data-dir", str(tmp_path / "d")]
    )
    payload = json.loads(capsys.readouterr().out)
    assert code == 2
    assert payload["errorCode"] == "mapping_error" and "'NOPE' is not a data category" in payload["error"]


def test_cli_mapping_shows_storage_per_column(
    tmp_path: Path, clinic_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    set_up(clinic_db, tmp_path / "d", capsys)
    code = main(
        [
            "mapping",
            "--json",
            "--db",
            clinic_db,
            "--schema",
            str(write(tmp_path, GOOD)),
            "--data-dir",
            str(tmp_path / "d"),
        ]
    )
    data = json.loads(capsys.readouterr().out)["data"]
    assert code == 0
    columns = {c["name"]: c for c in data["tables"][0]["columns"]}
    assert columns["birth_date"]["storage"] == "companion"
    assert columns["birth_date"]["companionColumn"] == "birth_date__tm_token"
    assert columns["notes"]["storage"] == "in_place"


def test_builtin_profile_matches_the_demo_database(service: MigratorService) -> None:
    resolved = service.mapping()
    assert len(resolved.tables) == 9
    assert len({table.category for table in resolved.tables}) == 9


def test_demo_profile_on_a_non_demo_database_says_to_pass_schema(tmp_path: Path, clinic_db: str) -> None:
    with (
        MigratorService.open(
            make_settings(tmp_path, database_url=clinic_db), user="alice", may_set_up=True
        ) as service,
        pytest.raises(MappingError, match="built-in demo profile.*does not exist.*Pass --schema FILE"),
    ):
        service.mapping()
