"""The estimate's forecast of the sweep after a migration (engine/sweep_forecast.py): on SQLite
it runs by itself and its VACUUM holds the write lock, for a time measured on a probe file that
is removed afterwards; on PostgreSQL it is the operator's VACUUM FULL."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from tui_migrator.engine import byte_search, sweep_forecast
from tui_migrator.engine.sweep_forecast import SweepRate

RATE = SweepRate(fixed_seconds=0.01, vacuum_bytes_per_second=100e6, search_bytes_per_second=200e6)


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The temporary directory a probe falls back to, empty."""
    folder = tmp_path / "scratch"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "gettempdir", lambda: str(folder))
    return folder


def test_the_probe_is_swept_by_the_sweeps_own_steps_and_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "records.db").write_bytes(b"")
    cleaned: list[str] = []
    searched: list[int] = []
    clean, search = sweep_forecast.sweep_cleaning.clean_sqlite, byte_search.search

    def cleaning(engine: Any, database: Path, **kwargs: Any) -> Any:
        cleaned.append(database.name)
        return clean(engine, database, **kwargs)

    def searching(needles: byte_search.Needles, chunks: Any, **kwargs: Any) -> Any:
        searched.append(needles.values)
        return search(needles, chunks, **kwargs)

    monkeypatch.setattr(sweep_forecast.sweep_cleaning, "clean_sqlite", cleaning)
    monkeypatch.setattr(byte_search, "search", searching)
    assert sweep_forecast.probe_sweep_rate(tmp_path) is not None
    # Each pass cleans the empty file and the full one and searches both (the empty one's search
    # is what reading any file costs) for as many values as the proof samples.
    passes = sweep_forecast.PROBE_PASSES
    assert sorted(cleaned) == ["empty.db"] * passes + ["probe.db"] * passes
    assert len(searched) >= passes and set(searched) == {sweep_forecast.PROBE_NEEDLES}
    assert [path.name for path in tmp_path.iterdir()] == ["records.db"]


def test_starting_a_files_reading_process_is_charged_once_not_per_byte(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each file is read by a process of its own (database_files.raw_chunks), started in some
    20 ms whatever its size: as much as searching the whole few-MB probe. Stand-in timings: the
    empty probe's search is that start, a fixed cost; only the rest is the rate per byte."""
    cleaning = {"empty.db": 0.010, "probe.db": 0.030}
    searching = {"empty.db": 0.020, "probe.db": 0.025}
    sizes: dict[str, int] = {}

    def search_seconds(_needles: byte_search.Needles, database: Path) -> float:
        sizes[database.name] = database.stat().st_size
        return searching[database.name]

    monkeypatch.setattr(sweep_forecast, "_cleaning_seconds", lambda database: cleaning[database.name])
    monkeypatch.setattr(sweep_forecast, "_search_seconds", search_seconds)
    rate = sweep_forecast.probe_sweep_rate(tmp_path)
    assert rate is not None
    size = sizes["probe.db"]
    assert rate.fixed_seconds == pytest.approx(0.010 + 0.020)
    assert rate.vacuum_bytes_per_second == pytest.approx(size / 0.020)
    assert rate.search_bytes_per_second == pytest.approx(size / 0.005)


def test_where_the_database_directory_takes_no_file_the_temporary_one_is_used(
    tmp_path: Path, scratch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert sweep_forecast.probe_sweep_rate(tmp_path / "no such directory") is not None
    assert list(scratch.iterdir()) == []
    monkeypatch.setattr(tempfile, "gettempdir", lambda: str(tmp_path / "none either"))
    assert sweep_forecast.probe_sweep_rate(tmp_path / "no such directory") is None


def test_the_sweep_grows_with_the_whole_file_and_searches_on_as_many_threads_as_chunks() -> None:
    chunk = byte_search.CHUNK_BYTES
    one_chunk = RATE.seconds(chunk, threads=2)
    assert one_chunk == pytest.approx(0.01 + chunk / 100e6 + chunk / 200e6)
    # Ten chunks on two threads: the search of each pair at once.
    assert RATE.seconds(10 * chunk, threads=2) == pytest.approx(0.01 + 10 * chunk / 100e6 + 5 * chunk / 200e6)
    assert RATE.seconds(10 * chunk, threads=1) == pytest.approx(
        0.01 + 10 * chunk / 100e6 + 10 * chunk / 200e6
    )


def test_a_sqlite_forecast_is_of_the_file_after_the_migration() -> None:
    forecast = sweep_forecast.sqlite_forecast(
        database_bytes=100_000_000, added_bytes=50_000_000, free_bytes=10**12, rate=RATE
    )
    assert forecast.automatic and forecast.enough_free_disk
    assert forecast.database_bytes_after == 150_000_000
    assert forecast.free_bytes_needed == 300_000_000
    assert forecast.seconds == pytest.approx(RATE.seconds(150_000_000, sweep_forecast.usable_cores()))
    assert forecast.duration == f"about {forecast.seconds:.1f} s"
    assert forecast.summary == f"automatic at the end, {forecast.duration} (writes wait)"
    quick = sweep_forecast.sqlite_forecast(1_000, 0, 10**12, rate=RATE)
    assert quick.duration == "under 1 s"
    # A file past what the probe's rate holds for: the forecast is said as a least.
    large = sweep_forecast.sqlite_forecast(sweep_forecast.LARGE_FILE_BYTES, 1, 10**13, rate=RATE)
    assert large.duration == f"{large.seconds:.0f} s or more" and "slower than the probe" in large.note
    assert "write lock" in forecast.note and "reads go on" in forecast.note
    assert forecast.to_json()["estimatedSeconds"] == round(forecast.seconds, 1)


def test_a_sweep_put_off_is_forecast_for_when_the_operator_runs_it() -> None:
    now = sweep_forecast.sqlite_forecast(100_000_000, 50_000_000, 10**12, rate=RATE)
    later = sweep_forecast.sqlite_forecast(100_000_000, 50_000_000, 10**12, rate=RATE, put_off=True)
    assert not later.automatic and later.put_off and not now.put_off
    # The same VACUUM of the same file, whenever it runs.
    assert (later.seconds, later.duration, later.free_bytes_needed) == (
        now.seconds,
        now.duration,
        now.free_bytes_needed,
    )
    assert later.summary == f"put off: `sweep ID` when you choose, {later.duration} (writes wait)"
    assert "old plaintext stays" in later.note and "write lock" in later.note
    assert later.to_json()["putOff"] is True and later.to_json()["automatic"] is False


def test_too_little_free_disk_for_the_vacuum_is_said_before_the_migration() -> None:
    forecast = sweep_forecast.sqlite_forecast(100_000_000, 50_000_000, free_bytes=200_000_000, rate=RATE)
    assert not forecast.enough_free_disk
    assert "NOT ENOUGH FREE DISK" in forecast.summary
    assert "300,000,000 bytes free" in forecast.note and "200,000,000 are" in forecast.note


def test_unmeasured_in_memory_and_postgresql_forecasts_say_so() -> None:
    unmeasured = sweep_forecast.sqlite_forecast(1_000, 0, 10**12, rate=None)
    assert unmeasured.automatic and unmeasured.seconds is None
    assert "not measured" in unmeasured.summary and unmeasured.duration is not None
    in_memory = sweep_forecast.sqlite_forecast(None, 0, 10**12, rate=RATE)
    assert not in_memory.automatic and "in-memory" in in_memory.summary
    postgresql = sweep_forecast.postgresql_forecast()
    assert not postgresql.automatic and postgresql.seconds is None and postgresql.duration is None
    assert not postgresql.put_off and not in_memory.put_off
    assert "sweep ID --yes" in postgresql.summary


def test_a_probe_the_database_layer_cannot_open_gives_way_to_the_next_place(
    tmp_path: Path, scratch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLAlchemy's own errors (a connection that cannot open) end a place as the driver's do."""
    real = sweep_forecast.create_database_engine
    urls: list[str] = []

    def first_fails(url: str) -> Any:
        urls.append(url)
        if len(urls) == 1:
            raise OperationalError("PRAGMA journal_mode", {}, Exception("unable to open database file"))
        return real(url)

    monkeypatch.setattr(sweep_forecast, "create_database_engine", first_fails)
    assert sweep_forecast.probe_sweep_rate(tmp_path) is not None
    assert str(tmp_path) in urls[0] and str(scratch) in urls[-1]
    assert [path.name for path in tmp_path.iterdir()] == ["scratch"] and list(scratch.iterdir()) == []
