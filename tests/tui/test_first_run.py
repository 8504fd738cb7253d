"""The first-run question: its words for the demo and for a named database, its answers, and
its picture at 80×24."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest

from tui_migrator.common.settings import Settings
from tui_migrator.service.opening import NotSetUp
from tui_migrator.tui import launch
from tui_migrator.tui.first_run import FirstRunApp, first_run_words

# A fixed place (nothing is created there): the picture must not depend on the test's tmp dir.
DEMO_SETTINGS = Settings(data_dir=Path("/home/operator/.local/share/tui-migrator"))
NAMED_SETTINGS = Settings(
    data_dir=Path("/home/operator/.local/share/tui-migrator"),
    database_url="postgresql+psycopg://migrator:s3cret@db.example.org/clinic",
)


@pytest.mark.parametrize(("key", "answer"), [("y", True), ("n", False), ("escape", False), ("q", False)])
async def test_the_answer_is_y_or_anything_that_leaves(key: str, answer: bool) -> None:
    app = FirstRunApp(DEMO_SETTINGS)
    async with app.run_test() as pilot:
        await pilot.press(key)
    assert app.return_value is answer


async def test_a_named_database_is_shown_without_its_password() -> None:
    app = FirstRunApp(NAMED_SETTINGS)
    async with app.run_test():
        assert "s3cret" not in app.body_words and "clinic" in app.body_words
        assert "Your own tables are not touched" in app.body_words


def test_a_sqlite_file_is_told_its_journal_mode_becomes_wal(tmp_path: Path) -> None:
    file = tmp_path / "clinic.db"
    with closing(sqlite3.connect(file)) as connection:
        connection.execute("CREATE TABLE patients (id integer PRIMARY KEY, name text)")
    settings = Settings(data_dir=tmp_path / "data", database_url=f"sqlite:///{file}")
    _title, body = first_run_words(settings)
    assert "The file's journal mode (delete) becomes WAL, and stays so" in body
    with closing(sqlite3.connect(file)) as connection:
        connection.execute("PRAGMA journal_mode = WAL")
    assert "journal mode" not in first_run_words(settings)[1]
    assert "journal mode" not in first_run_words(NAMED_SETTINGS)[1]


def test_declining_creates_nothing_and_says_how_to_set_up_later(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(FirstRunApp, "run", lambda self: False)
    settings = Settings(data_dir=tmp_path / "data")
    with pytest.raises(NotSetUp, match="no demo database") as refused:
        launch.run_tui(settings)
    assert "tui-migrator init" in (refused.value.hint or "")
    assert not (tmp_path / "data").exists()


def test_first_run_snapshot(snap_compare: Callable[..., bool]) -> None:
    assert snap_compare(FirstRunApp(DEMO_SETTINGS), terminal_size=(80, 24))
