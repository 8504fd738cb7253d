"""'demo' replaces only a database tui-migrator marked as its demo (issue 13, item 4).

Tables named like the demo's prove nothing: a production database may well have a ``patients``
table. These tests build such a look-alike by hand and check that 'demo --yes' (the CLI and the
service) refuses it with every table and row intact, that a real demo database is rebuilt and
stays marked, and that an empty database is built and marked.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.support.cli import run
from tests.support.databases import ADMIN, dump_database, make_settings
from tui_migrator import demo
from tui_migrator.cli.main import main
from tui_migrator.common.errors import ConfigError
from tui_migrator.common.settings import DEMO_DATABASE_FILENAME, Settings
from tui_migrator.demo import generator
from tui_migrator.service import demo_admin
from tui_migrator.service.facade import MigratorService, create_demo_service
from tui_migrator.storage.operators import Role
from tui_migrator.storage.tables import TABLE_PREFIX

BOTH = pytest.mark.backends("sqlite", "postgresql")
SMALL = {"patients": 12, "organizations": 2, "seed": 5}
SMALL_ARGS = ["--patients", "12", "--organizations", "2", "--seed", "5"]


def run_embedded(
    settings: Settings, capsys: pytest.CaptureFixture[str], *argv: str
) -> tuple[int, dict[str, Any]]:
    """The CLI in-process with --json on the embedded database of ``settings``' data dir (no --db)."""
    code = main([*argv, "--json", "--data-dir", str(settings.data_dir)])
    return code, json.loads(capsys.readouterr().out)


def mark_of(url: str) -> dict[str, Any] | None:
    engine = sa.create_engine(url)
    try:
        return demo.demo_mark(engine)
    finally:
        engine.dispose()


def table_names(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def count_rows(url: str, table: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return int(connection.exec_driver_sql(f"SELECT COUNT(*) FROM {table}").scalar_one())
    finally:
        engine.dispose()


def make_look_alike(url: str) -> None:
    """A database that is not a demo but whose tables all bear the demo's names, one row each."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as connection:
            for name in demo.DEMO_TABLE_NAMES:
                connection.exec_driver_sql(f"CREATE TABLE {name} (id INTEGER PRIMARY KEY, note TEXT)")
                connection.exec_driver_sql(f"INSERT INTO {name} (id, note) VALUES (1, 'real data of {name}')")
    finally:
        engine.dispose()


@pytest.fixture
def look_alike(empty_database_url: str, tmp_path: Path) -> Settings:
    """Settings for a look-alike database (and a data dir of its own)."""
    make_look_alike(empty_database_url)
    return make_settings(tmp_path, database_url=empty_database_url)


@pytest.fixture
def set_up_look_alike(look_alike: Settings) -> Settings:
    """A look-alike the tool was set up in (its tm_ tables, with a data key and an audit trail),
    as in a real deployment: tui-migrator's own tables do not make it a demo either."""
    with MigratorService.open(look_alike, user=ADMIN, may_set_up=True):
        pass
    assert TABLE_PREFIX + "meta" in table_names(look_alike.effective_database_url)
    return look_alike


# -- a database that was not built as a demo ------------------------------------------------


@BOTH
def test_cli_demo_yes_refuses_a_database_whose_tables_share_the_demo_names(
    backend: str, look_alike: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    url = look_alike.effective_database_url
    before = dump_database(url)
    code, payload = run(look_alike, capsys, "demo", "--yes", *SMALL_ARGS)
    assert code == 2
    assert payload["success"] is False and payload["errorCode"] == "config_error"
    assert "was not created as a demo database by tui-migrator" in payload["error"]
    assert "would be dropped" in payload["error"] and "autonomic_symptoms" in payload["error"]
    assert "Point --db at an empty database or a demo database" in payload["hint"]
    # Nothing was touched, not even set up: every table and row is still there, and no tm_ table.
    assert dump_database(url) == before
    assert not any(name.startswith(TABLE_PREFIX) for name in table_names(url))
    assert all(count_rows(url, name) == 1 for name in demo.DEMO_TABLE_NAMES)


@BOTH
def test_cli_demo_yes_refuses_a_look_alike_the_tool_was_set_up_in(
    backend: str, set_up_look_alike: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    url = set_up_look_alike.effective_database_url
    before = dump_database(url)
    code, payload = run(set_up_look_alike, capsys, "demo", "--yes", *SMALL_ARGS)
    assert code == 2
    assert "was not created as a demo database by tui-migrator" in payload["error"]
    assert dump_database(url) == before


@BOTH
def test_service_refuses_a_database_whose_tables_share_the_demo_names(
    backend: str, look_alike: Settings
) -> None:
    url = look_alike.effective_database_url
    before = dump_database(url)
    with pytest.raises(ConfigError) as refused:
        create_demo_service(look_alike, user=ADMIN, **SMALL)
    assert refused.value.exit_code == 2
    assert "was not created as a demo database by tui-migrator" in refused.value.message
    assert dump_database(url) == before

    engine = sa.create_engine(url)
    try:
        with pytest.raises(ConfigError, match="not created as a demo database"):
            demo_admin.refuse_non_demo_database(engine, look_alike)
    finally:
        engine.dispose()
    assert dump_database(url) == before


@BOTH
def test_rebuild_through_a_session_refuses_an_unmarked_database(
    backend: str, set_up_look_alike: Settings
) -> None:
    url = set_up_look_alike.effective_database_url
    before = dump_database(url)
    with (
        MigratorService.open(set_up_look_alike, user=ADMIN, may_set_up=True) as service,
        pytest.raises(ConfigError, match="not created as a demo database") as refused,
    ):
        service.rebuild_demo(**SMALL)
    assert refused.value.exit_code == 2
    after = dump_database(url)
    # Only the audit trail may have grown (opening records nothing today, but it may).
    assert {name: rows for name, rows in after.items() if name != "tm_audit"} == {
        name: rows for name, rows in before.items() if name != "tm_audit"
    }


@BOTH
def test_an_unmarked_database_with_only_other_tables_is_refused_too(
    backend: str, empty_database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = sa.create_engine(empty_database_url)
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE billing (id INTEGER PRIMARY KEY)")
        connection.exec_driver_sql("INSERT INTO billing (id) VALUES (1)")
    engine.dispose()
    settings = make_settings(tmp_path, database_url=empty_database_url)
    code, payload = run(settings, capsys, "demo", "--yes", *SMALL_ARGS)
    assert code == 2
    assert "was not created as a demo database" in payload["error"] and "billing" in payload["error"]
    assert table_names(empty_database_url) == {"billing"}


# -- a demo database -------------------------------------------------------------------------


@BOTH
def test_the_test_template_demo_is_marked(backend: str, settings: Settings) -> None:
    mark = mark_of(settings.effective_database_url)
    assert mark is not None
    assert {"patients", "organizations", "seed", "builtAt"} <= set(mark)


@BOTH
def test_cli_rebuilds_a_demo_database_and_it_stays_marked(
    backend: str, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    url = settings.effective_database_url
    code, payload = run(settings, capsys, "demo", "--yes", *SMALL_ARGS)
    assert code == 0, payload
    assert payload["data"]["patients"] == 12
    mark = mark_of(url)
    assert mark is not None
    assert (mark["patients"], mark["organizations"], mark["seed"]) == (12, 2, 5)
    assert count_rows(url, "patients") == 12
    # ... and so it can be rebuilt again.
    code, payload = run(settings, capsys, "demo", "--yes", "--patients", "8", "--organizations", "2")
    assert code == 0, payload
    mark = mark_of(url)
    assert mark is not None and mark["patients"] == 8
    assert run(settings, capsys, "audit", "--verify")[0] == 0


@BOTH
def test_service_rebuilds_a_demo_database_and_it_stays_marked(backend: str, settings: Settings) -> None:
    service, summary = create_demo_service(settings, user=ADMIN, **SMALL)
    service.close()
    assert summary.patients == 12
    mark = mark_of(settings.effective_database_url)
    assert mark is not None and mark["seed"] == 5


@BOTH
def test_a_marked_demo_with_a_foreign_table_is_still_refused(
    backend: str, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    url = settings.effective_database_url
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE billing (id INTEGER PRIMARY KEY)")
    engine.dispose()
    before = dump_database(url)
    code, payload = run(settings, capsys, "demo", "--yes", *SMALL_ARGS)
    assert code == 2
    assert "not part of the demo (billing)" in payload["error"]
    assert dump_database(url) == before


# -- an empty database -----------------------------------------------------------------------


@BOTH
def test_cli_builds_an_empty_database_and_marks_it(
    backend: str, empty_database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings(tmp_path, database_url=empty_database_url)
    code, payload = run(settings, capsys, "demo", "--yes", *SMALL_ARGS)
    assert code == 0, payload
    mark = mark_of(empty_database_url)
    assert mark is not None
    assert (mark["patients"], mark["organizations"], mark["seed"]) == (12, 2, 5)
    assert count_rows(empty_database_url, "patients") == 12
    code, payload = run(settings, capsys, "audit", "--verify")
    assert code == 0
    # Newest first: the trail starts with the set-up; building a new demo records no rebuild.
    assert [entry["operation"] for entry in payload["data"]["auditEntries"]] == [
        "audit_verified",
        "tool_initialized",
    ]


@BOTH
def test_an_interrupted_build_leaves_a_marked_database_demo_can_replace(
    backend: str,
    empty_database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The mark is written before the demo tables, so a build stopped half-way (Ctrl-C on a
    big demo) leaves a database the next 'demo --yes' replaces rather than refuses."""
    settings = make_settings(tmp_path, database_url=empty_database_url)
    real_chunk = generator._Generator.chunk
    calls = {"count": 0}

    def chunk_then_fail(self: Any, first: int, last: int) -> Any:
        calls["count"] += 1
        if calls["count"] == 2:
            raise RuntimeError("interrupted")
        return real_chunk(self, first, last)

    monkeypatch.setattr(generator, "PATIENTS_PER_CHUNK", 5)
    monkeypatch.setattr(generator._Generator, "chunk", chunk_then_fail)
    with pytest.raises(RuntimeError, match="interrupted"):
        create_demo_service(settings, user=ADMIN, **SMALL)
    assert mark_of(empty_database_url) is not None
    assert count_rows(empty_database_url, "patients") == 5

    # A rebuild interrupted the same way.
    calls["count"] = 0
    with pytest.raises(RuntimeError, match="interrupted"):
        create_demo_service(settings, user=ADMIN, **SMALL)
    assert mark_of(empty_database_url) is not None

    monkeypatch.setattr(generator._Generator, "chunk", real_chunk)
    code, payload = run(settings, capsys, "demo", "--yes", *SMALL_ARGS)
    assert code == 0, payload
    assert count_rows(empty_database_url, "patients") == 12
    assert mark_of(empty_database_url) is not None


# -- the embedded database -------------------------------------------------------------------


def test_the_embedded_demo_is_marked_on_first_use_and_can_be_rebuilt(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings(tmp_path, database_url=None)
    assert settings.uses_embedded_database
    with MigratorService.open(settings, may_set_up=True) as service:
        assert service.user == ADMIN
        assert service.role() is Role.SUPER_ADMIN
    url = settings.effective_database_url
    mark = mark_of(url)
    assert mark is not None and mark["patients"] == 2000
    code, payload = run_embedded(settings, capsys, "demo", "--yes", *SMALL_ARGS)
    assert code == 0, payload
    assert mark_of(url) is not None and count_rows(url, "patients") == 12


def test_an_unmarked_embedded_demo_is_refused_with_a_hint_to_delete_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An embedded demo built before demo databases were marked: demo tables, then the tool set
    up in it, and no mark."""
    settings = make_settings(tmp_path, database_url=None)
    settings.data_dir.mkdir(mode=0o700)
    url = settings.effective_database_url
    engine = sa.create_engine(url)
    try:
        demo.build_demo_database(engine, **SMALL)
    finally:
        engine.dispose()
    with MigratorService.open(settings, may_set_up=True):
        pass
    assert mark_of(url) is None
    before = dump_database(url)
    code, payload = run_embedded(settings, capsys, "demo", "--yes", *SMALL_ARGS)
    assert code == 2
    assert "was not created as a demo database" in payload["error"]
    assert str(settings.data_dir / DEMO_DATABASE_FILENAME) in payload["hint"]
    assert "delete" in payload["hint"]
    assert dump_database(url) == before
