"""The logs an operator reads: only their last lines, whatever their length; a missing one said
in words; an unexpected error kept with its traceback in a file only its owner can read."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from tui_migrator.common.errors import BadInput
from tui_migrator.engine.log_files import error_log_path, log_path
from tui_migrator.service import logs
from tui_migrator.service.facade import MigratorService


def write_lines(path: Path, count: int) -> list[str]:
    lines = [f"line {number}" for number in range(count)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines))
    return lines


@pytest.mark.parametrize("count", [0, 1, 499, 500, 501, 2000])
def test_the_tail_is_the_last_lines_read_in_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, count: int
) -> None:
    monkeypatch.setattr(logs, "_BLOCK_BYTES", 100)  # many blocks, lines cut across them
    lines = write_lines(tmp_path / "some.log", count)
    tail = logs.read_tail(tmp_path / "some.log", 500)
    assert tail.lines == lines[-500:]
    assert tail.truncated is (count > 500)
    assert tail.problem is None and not tail.missing


def test_a_missing_log_is_said_in_words(tmp_path: Path) -> None:
    tail = logs.read_tail(tmp_path / "none.log", 500)
    assert tail.missing and tail.lines == []
    assert tail.problem == "There is no log here yet."


def test_the_worker_log_of_a_migration_is_its_databases(service: MigratorService) -> None:
    record = service.start({"batch_size": 40})
    lines = write_lines(log_path(service.settings, record.id), 600)
    tail = service.worker_log(record.id)
    assert tail.path == log_path(service.settings, record.id)
    assert tail.lines == lines[-logs.TAIL_LINES :] and tail.truncated


def test_an_unknown_migration_has_no_log_to_read(service: MigratorService) -> None:
    with pytest.raises(BadInput, match="no migration"):
        service.worker_log("../../master")


def test_an_unexpected_error_is_kept_with_its_traceback_for_the_owner_only(
    service: MigratorService,
) -> None:
    try:
        raise ValueError("a value from a record: 078-05-1120")
    except ValueError as error:
        path = service.record_error("Loading the dashboard", error)
    assert path == error_log_path(service.settings)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert "Loading the dashboard failed (user alice" in text
    assert "Traceback (most recent call last)" in text
    assert "ValueError: a value from a record: 078-05-1120" in text
    # Each entry ends with an empty line, so entries read apart.
    assert service.error_log().lines[-2:] == ["ValueError: a value from a record: 078-05-1120", ""]
