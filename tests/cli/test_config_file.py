"""``start --config FILE`` and ``estimate --config FILE``: the seed's examples run verbatim from
examples/, options override the file's keys, JSON and TOML mean the same, and a bad file is
refused with one line per problem (file, line, key, fix), exit code 2, having written nothing."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.support.cli import run
from tests.support.db_state import database_state
from tui_migrator.common.config_file import FILE_KEYS, read_config_file
from tui_migrator.common.settings import Settings

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DEVELOPMENT = EXAMPLES / "development.json"
PRODUCTION = EXAMPLES / "production.json"
PRODUCTION_TOML = EXAMPLES / "production.toml"

# What an estimate measures differs from run to run; the rest is the configuration's.
ESTIMATE_STABLE = (
    "config",
    "estimatedRecords",
    "alreadyEncryptedRecords",
    "byCategory",
    "byOrganization",
    "byTable",
    "recommendations",
    "canStart",
)


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def config_of(settings: Settings, capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    """The configuration an estimate ran with (estimate writes nothing a test would see)."""
    code, payload = run(settings, capsys, "estimate", *argv)
    assert code == 0, payload
    config: dict[str, Any] = payload["data"]["config"]
    return config


def organizations_in_the_data(settings: Settings, capsys: pytest.CaptureFixture[str]) -> list[str]:
    code, payload = run(settings, capsys, "estimate")
    assert code == 0, payload
    return sorted(payload["data"]["byOrganization"])


# -- the examples, verbatim ---------------------------------------------------------------------


def test_the_examples_hold_the_seeds_configurations_verbatim() -> None:
    assert json.loads(DEVELOPMENT.read_text()) == {
        "batchSize": 50,
        "maxConcurrency": 2,
        "dryRun": True,
        "dataCategories": ["DEMOGRAPHICS"],
        "organizationIds": ["dev_org"],
        "skipIntegrityChecks": False,
        "createBackups": True,
    }
    assert json.loads(PRODUCTION.read_text()) == {
        "batchSize": 500,
        "maxConcurrency": 5,
        "dryRun": False,
        "dataCategories": ["DEMOGRAPHICS", "MOTOR_SYMPTOMS", "MEDICATION_DATA"],
        "organizationIds": [],
        "skipIntegrityChecks": False,
        "createBackups": True,
    }


def test_the_toml_example_is_the_same_configuration_as_the_json_one() -> None:
    assert read_config_file(PRODUCTION_TOML) == read_config_file(PRODUCTION)
    # Every key of the seed's MigrationConfig; the schedule's keys (window, timezone, notBefore)
    # and sweepLater are this tool's own additions, which the seed's example predates.
    tool_keys = {"window", "timezone", "not_before", "sweep_later"}
    assert set(read_config_file(PRODUCTION)) == set(FILE_KEYS.values()) - tool_keys


def test_development_example_is_refused_naming_dev_org_and_the_known_organizations(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    known = organizations_in_the_data(settings, capsys)
    before = database_state(settings)
    code, payload = run(settings, capsys, "start", "--config", str(DEVELOPMENT), "--yes")
    assert code == 2, payload
    assert payload["errorCode"] == "invalid_config"
    assert "Unknown organization dev_org" in payload["error"]
    assert all(name in payload["error"] for name in known), (known, payload["error"])
    assert database_state(settings) == before


def test_an_unknown_organization_gets_the_same_refusal_from_the_option_and_from_the_file(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    from_file = run(settings, capsys, "start", "--config", str(DEVELOPMENT), "--yes")
    from_option = run(
        settings,
        capsys,
        "start",
        "--yes",
        "--dry-run",
        "--batch-size",
        "50",
        "--category",
        "DEMOGRAPHICS",
        "--organization",
        "dev_org",
    )
    assert from_file == from_option


def test_production_example_starts_and_completes_with_its_configuration(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    code, payload = run(settings, capsys, "start", "--config", str(PRODUCTION), "--yes")
    assert code == 0, payload
    data = payload["data"]
    assert data["status"] == "completed"
    assert data["config"] == json.loads(PRODUCTION.read_text())
    assert {table["name"] for table in data["tables"]} == {
        "demographics",
        "motor_symptoms",
        "medication_data",
    }
    assert data["progress"]["encryptedRecords"] == data["progress"]["totalRecords"] > 0


def test_production_example_estimates_with_json(
    settings: Settings, engine: sa.Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    before = database_state(settings)
    code, payload = run(settings, capsys, "estimate", "--config", str(PRODUCTION))
    assert code == 0, payload
    data = payload["data"]
    assert data["config"] == json.loads(PRODUCTION.read_text())
    assert set(data["byCategory"]) == {"DEMOGRAPHICS", "MOTOR_SYMPTOMS", "MEDICATION_DATA"}
    assert data["estimatedRecords"] == sum(data["byCategory"].values()) > 0
    # An estimate keeps its measured calibration in tm_meta; the data and the migrations stay.
    after = database_state(settings)
    assert {name: rows for name, rows in after["tables"].items() if name != "tm_meta"} == {
        name: rows for name, rows in before["tables"].items() if name != "tm_meta"
    }


# -- the same as the equivalent options ---------------------------------------------------------

PRODUCTION_OPTIONS = [
    "--batch-size",
    "500",
    "--max-concurrency",
    "5",
    "--no-dry-run",
    "--category",
    "DEMOGRAPHICS",
    "--category",
    "MOTOR_SYMPTOMS",
    "--category",
    "MEDICATION_DATA",
    "--no-skip-integrity-checks",
    "--backups",
]


@pytest.mark.parametrize("example", [PRODUCTION, PRODUCTION_TOML], ids=["json", "toml"])
def test_estimate_json_with_config_is_the_same_as_with_the_equivalent_options(
    settings: Settings, capsys: pytest.CaptureFixture[str], example: Path
) -> None:
    _, from_file = run(settings, capsys, "estimate", "--config", str(example))
    _, from_options = run(settings, capsys, "estimate", *PRODUCTION_OPTIONS)
    assert from_file["success"] and from_options["success"]
    assert set(from_file["data"]) == set(from_options["data"])
    for key in ESTIMATE_STABLE:
        assert from_file["data"][key] == from_options["data"][key], key


def without_run_specifics(data: Any, migration_id: str) -> Any:
    """A start's JSON without what differs between two runs of one configuration: its id, its
    times, its worker and rate."""
    if isinstance(data, dict):
        return {
            key: without_run_specifics(value, migration_id)
            for key, value in data.items()
            if key not in {"timing", "worker", "ratePerSecond"}
        }
    if isinstance(data, list):
        return [without_run_specifics(item, migration_id) for item in data]
    if isinstance(data, str):
        return data.replace(migration_id, "<id>")
    return data


def test_start_json_with_config_is_the_same_as_with_the_equivalent_options(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    # Dry runs, so the second run finds the rows the first one found.
    code, from_file = run(settings, capsys, "start", "--config", str(PRODUCTION), "--dry-run", "--yes")
    assert code == 0, from_file
    code, from_options = run(settings, capsys, "start", *PRODUCTION_OPTIONS, "--dry-run", "--yes")
    assert code == 0, from_options
    assert from_file["data"]["progress"]["totalRecords"] > 0
    assert without_run_specifics(from_file, from_file["data"]["id"]) == without_run_specifics(
        from_options, from_options["data"]["id"]
    )


# -- precedence -------------------------------------------------------------------------------


def test_an_option_given_overrides_the_files_key_and_the_others_keep_the_files_values(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    config = config_of(settings, capsys, "--config", str(PRODUCTION), "--batch-size", "40")
    assert config == {**json.loads(PRODUCTION.read_text()), "batchSize": 40}


def test_a_repeated_option_replaces_the_files_whole_list(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    config = config_of(settings, capsys, "--config", str(PRODUCTION), "--category", "MEDICATION_DATA")
    assert config["dataCategories"] == ["MEDICATION_DATA"]


def test_switches_override_the_file_either_way(
    settings: Settings, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = write(
        tmp_path,
        "switched.json",
        '{"dryRun": true, "skipIntegrityChecks": true, "createBackups": false, "sweepLater": true}',
    )
    from_file = config_of(settings, capsys, "--config", str(path))
    assert from_file["dryRun"] is True and from_file["sweepLater"] is True
    config = config_of(
        settings,
        capsys,
        "--config",
        str(path),
        "--no-dry-run",
        "--no-skip-integrity-checks",
        "--backups",
        "--no-sweep-later",
    )
    assert (config["dryRun"], config["skipIntegrityChecks"], config["createBackups"]) == (False, False, True)
    assert "sweepLater" not in config  # unset again: left out, as the seed's configuration has it
    production = config_of(settings, capsys, "--config", str(PRODUCTION), "--dry-run", "--no-backups")
    assert (production["dryRun"], production["createBackups"]) == (True, False)


def test_keys_the_file_leaves_out_take_the_same_defaults_as_no_file(
    settings: Settings, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = write(tmp_path, "partial.toml", "maxConcurrency = 3\n")
    assert config_of(settings, capsys, "--config", str(path)) == {
        **config_of(settings, capsys),
        "maxConcurrency": 3,
    }


def test_an_empty_toml_file_is_the_default_configuration(
    settings: Settings, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = write(tmp_path, "empty.toml", "")
    assert config_of(settings, capsys, "--config", str(path)) == config_of(settings, capsys)


def test_a_file_that_asks_for_a_dry_run_needs_no_confirmation(
    settings: Settings, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = write(tmp_path, "dry.json", '{"dryRun": true, "batchSize": 50}')
    code, payload = run(settings, capsys, "start", "--config", str(path))
    assert code == 0, payload
    assert payload["data"]["dryRun"] is True


def test_an_invalid_option_over_a_valid_file_names_the_option(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    code, payload = run(settings, capsys, "estimate", "--config", str(PRODUCTION), "--batch-size", "0")
    assert code == 2, payload
    assert "--batch-size: must be from 1 to 1000" in payload["error"]


# -- bad files --------------------------------------------------------------------------------

# (file name, content, fragments the error must hold). {path} is the file's path.
BAD_FILES: list[tuple[str, str | bytes, list[str]]] = [
    ("missing.json", "", ["{path} does not exist"]),
    ("a-directory.json", "", ["{path} is a directory"]),
    ("latin1.json", b'{"organizationIds": ["h\xf4pital"]}', ["{path} is not UTF-8"]),
    (
        "config.yaml",
        "batchSize: 50\n",
        ["{path}: a configuration file must be JSON or TOML", ".json or .toml"],
    ),
    ("config", '{"batchSize": 50}', ["must be JSON or TOML", ".json or .toml"]),
    (
        "syntax.json",
        '{\n  "batchSize": 50\n  "dryRun": true\n}\n',
        ["{path}: not valid JSON at line 3, column 3", "Expecting ',' delimiter"],
    ),
    ("syntax.toml", "batchSize = 50\ndryRun = \n", ["{path}: not valid TOML at line 2, column 10"]),
    ("list.json", "[50, 2]", ["{path}: the file must hold one object of settings", "not a list"]),
    ("twice.json", '{"dryRun": true, "dryRun": false}', ["{path}: the key dryRun is given twice"]),
    (
        "snake.json",
        '{\n  "batch_size": 50\n}',
        ["{path}:2: batch_size: not a MigrationConfig key; did you mean batchSize?"],
    ),
    (
        "typo.toml",
        "maxConcurency = 2\n",
        ["{path}:1: maxConcurency: not a MigrationConfig key; did you mean maxConcurrency?"],
    ),
    (
        "stranger.json",
        '{"colour": "blue"}',
        ["{path}:1: colour: not a MigrationConfig key; the keys are batchSize, maxConcurrency"],
    ),
    (
        "quoted.json",
        '{"batchSize": "500"}',
        [
            '{path}:1: batchSize: must be a whole number or "auto", not the string "500"; write 500 without quotes'
        ],
    ),
    ("one.json", '{"dryRun": 1}', ["{path}:1: dryRun: must be true or false, not the number 1; write true"]),
    (
        "quoted.toml",
        'createBackups = "false"\n',
        [
            '{path}:1: createBackups: must be true or false, not the string "false"; write false without quotes'
        ],
    ),
    (
        "fraction.json",
        '{"batchSize": 50.5}',
        ["{path}:1: batchSize: must be a whole number", "the number 50.5"],
    ),
    ("null.json", '{"maxConcurrency": null}', ["{path}:1: maxConcurrency: must be a whole number, not null"]),
    (
        "bare.json",
        '{"dataCategories": "DEMOGRAPHICS"}',
        ["{path}:1: dataCategories: must be a list of strings", 'write it in brackets: ["DEMOGRAPHICS"]'],
    ),
    (
        "item.toml",
        'organizationIds = ["org_a", 7]\n',
        ["{path}:1: organizationIds[1]: must be a string, not the number 7"],
    ),
    ("zero.json", '{"batchSize": 0}', ["{path}:1: batchSize: must be from 1 to 1000 (or 'auto'), not 0"]),
    (
        "huge.toml",
        "batchSize = 5000\n",
        ["{path}:1: batchSize: must be from 1 to 1000 (or 'auto'), not 5000"],
    ),
    ("eleven.json", '{"maxConcurrency": 11}', ["{path}:1: maxConcurrency: must be from 1 to 10, not 11"]),
    (
        "genomics.json",
        '{"dataCategories": ["DEMOGRAPHICS", "GENOMICS"]}',
        ["{path}:1: dataCategories: GENOMICS is not a data category; use DEMOGRAPHICS"],
    ),
    (
        "blank.toml",
        'organizationIds = [" "]\n',
        ["{path}:1: organizationIds: contains an empty organization id"],
    ),
]


@pytest.mark.parametrize(("name", "content", "fragments"), BAD_FILES, ids=[case[0] for case in BAD_FILES])
@pytest.mark.parametrize("command", ["start", "estimate"])
def test_a_bad_file_is_refused_saying_what_where_and_how_to_fix_and_nothing_is_written(
    settings: Settings,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    command: str,
    name: str,
    content: str | bytes,
    fragments: list[str],
) -> None:
    path = tmp_path / name
    if name == "a-directory.json":
        path.mkdir()
    elif name != "missing.json":
        write(tmp_path, name, content)
    before = database_state(settings)
    confirmed = ["--yes"] if command == "start" else []
    code, payload = run(settings, capsys, command, "--config", str(path), *confirmed)
    assert code == 2, payload
    assert payload["success"] is False
    assert payload["errorCode"] == "invalid_config"
    for fragment in fragments:
        assert fragment.format(path=path) in payload["error"], payload["error"]
    assert payload["hint"]
    assert database_state(settings) == before


def test_every_problem_of_a_file_is_reported_together_one_line_each_in_the_files_order(
    settings: Settings, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = write(
        tmp_path,
        "everything.json",
        "{\n"
        '  "batchSize": "500",\n'
        '  "maxConcurrency": 11,\n'
        '  "dryRun": 1,\n'
        '  "dataCategories": ["GENOMICS"],\n'
        '  "batch_size": 3\n'
        "}\n",
    )
    before = database_state(settings)
    code, payload = run(settings, capsys, "start", "--config", str(path), "--yes")
    assert code == 2, payload
    heading, *lines = payload["error"].splitlines()
    assert heading == f"The configuration file {path} has 5 problems:"
    located = [re.match(rf"  {re.escape(str(path))}:(\d+): (\w+): ", line) for line in lines]
    assert all(located), lines
    assert [(int(m[1]), m[2]) for m in located if m] == [
        (2, "batchSize"),
        (3, "maxConcurrency"),
        (4, "dryRun"),
        (5, "dataCategories"),
        (6, "batch_size"),
    ]
    assert database_state(settings) == before


def test_a_bad_file_is_reported_in_words_on_stderr_without_json(
    settings: Settings, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from tests.support.cli import where
    from tui_migrator.cli.main import main

    path = write(tmp_path, "zero.toml", "batchSize = 0\nmaxConcurrency = 11\n")
    code = main(["start", "--config", str(path), "--yes", *where(settings)])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    assert f"error: The configuration file {path} has 2 problems:" in captured.err
    assert f"{path}:1: batchSize: must be from 1 to 1000" in captured.err
    assert f"{path}:2: maxConcurrency: must be from 1 to 10, not 11" in captured.err
