"""The maintenance-window arithmetic: pure functions of the instant given, across midnight and
across DST changes (Europe/Berlin, America/New_York)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tui_migrator.common.windows import (
    BEFORE_START,
    OUTSIDE_WINDOW,
    MaintenanceWindow,
    Schedule,
    parse_not_before,
    parse_window,
    zone_named,
)

ZONES = ["Europe/Berlin", "America/New_York", "UTC", "Australia/Lord_Howe"]
BERLIN = zone_named("Europe/Berlin")
NEW_YORK = zone_named("America/New_York")
SECOND = timedelta(seconds=1)

instants = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 12, 31)).map(
    lambda naive: naive.replace(tzinfo=UTC)
)


@st.composite
def windows(draw: st.DrawFn) -> MaintenanceWindow:
    zone = zone_named(draw(st.sampled_from(ZONES)))
    start = draw(st.integers(0, 24 * 60 - 1))
    end = draw(st.integers(0, 24 * 60 - 1).filter(lambda minutes: minutes != start))
    return MaintenanceWindow(time(*divmod(start, 60)), time(*divmod(end, 60)), zone)


@st.composite
def instants_near_dst_changes(draw: st.DrawFn) -> datetime:
    """Instants within a day of a change in Berlin or New York, where mistakes hide."""
    change = draw(
        st.sampled_from(
            [
                datetime(2026, 3, 29, 1, tzinfo=UTC),  # Berlin forward
                datetime(2026, 10, 25, 1, tzinfo=UTC),  # Berlin back
                datetime(2026, 3, 8, 7, tzinfo=UTC),  # New York forward
                datetime(2026, 11, 1, 6, tzinfo=UTC),  # New York back
            ]
        )
    )
    return change + timedelta(seconds=draw(st.integers(-86400, 86400)))


@settings(max_examples=300, deadline=None)
@given(windows(), st.one_of(instants, instants_near_dst_changes()))
def test_a_window_is_open_now_or_opens_later_and_its_next_opening_is_inside_it(
    window: MaintenanceWindow, now: datetime
) -> None:
    opening = window.next_opening(now)
    assert window.is_open(now) != (opening > now)
    assert window.is_open(opening)
    if opening > now:
        # No earlier opening was missed: a second before it, the window was still closed.
        assert not window.is_open(opening - SECOND)
        assert opening - now <= timedelta(days=2)


@settings(max_examples=300, deadline=None)
@given(windows(), st.one_of(instants, instants_near_dst_changes()))
def test_an_opening_closes_after_it_opens_and_is_open_until_then(
    window: MaintenanceWindow, now: datetime
) -> None:
    opening, closing = window.next_opening(now), window.closes_at(now)
    assert closing > opening
    assert not window.is_open(closing)
    assert window.is_open(closing - SECOND)
    # A DST change makes a window at most an hour longer or shorter than its nominal length.
    if opening > now:
        assert closing - opening <= window.length + timedelta(hours=1)


def test_a_window_across_midnight_is_open_late_and_early_but_not_at_noon() -> None:
    window = parse_window("22:00-04:00", BERLIN)
    assert window.crosses_midnight and window.length == timedelta(hours=6)
    assert window.is_open(datetime(2026, 6, 1, 21, 30, tzinfo=UTC))  # 23:30 local
    assert window.is_open(datetime(2026, 6, 2, 1, 30, tzinfo=UTC))  # 03:30 local
    noon = datetime(2026, 6, 2, 10, tzinfo=UTC)
    assert not window.is_open(noon)
    assert window.next_opening(noon) == datetime(2026, 6, 2, 20, tzinfo=UTC)
    assert window.closes_at(noon) == datetime(2026, 6, 3, 2, tzinfo=UTC)


def test_a_window_starting_in_the_skipped_hour_opens_when_the_clocks_go_forward() -> None:
    window = parse_window("02:30-04:00", BERLIN)
    opening = window.next_opening(datetime(2026, 3, 28, 12, tzinfo=UTC))
    assert opening == datetime(2026, 3, 29, 1, tzinfo=UTC)  # 03:00 CEST, the change itself
    # A window wholly inside the skipped hour does not open that day at all.
    skipped = parse_window("02:00-03:00", BERLIN)
    assert skipped.next_opening(datetime(2026, 3, 28, 12, tzinfo=UTC)) == datetime(2026, 3, 30, 0, tzinfo=UTC)


def test_a_window_in_the_repeated_hour_closes_and_opens_again_when_the_clocks_go_back() -> None:
    window = parse_window("01:30-02:30", NEW_YORK)
    first = window.next_opening(datetime(2026, 10, 31, 12, tzinfo=UTC))
    assert first == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)  # 01:30 EDT
    # At 02:00 EDT the clocks go back to 01:00 EST, before the window: it closes, and opens
    # again when 01:30 comes round the second time.
    closed = window.closes_at(first)
    assert closed == datetime(2026, 11, 1, 6, tzinfo=UTC)
    again = window.next_opening(closed)
    assert again == datetime(2026, 11, 1, 6, 30, tzinfo=UTC)  # 01:30 EST
    assert window.closes_at(again) == datetime(2026, 11, 1, 7, 30, tzinfo=UTC)  # 02:30 EST


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("25:00-03:00", "25:00 is not a time of day"),
        ("01:00", "HH:MM-HH:MM"),
        ("01:00-01:00", "needs a length"),
        ("01:60-02:00", "01:60 is not a time of day"),
        ("1-5", "HH:MM-HH:MM"),
    ],
)
def test_a_bad_window_text_is_refused_in_words(text: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        parse_window(text, BERLIN)


def test_an_unknown_zone_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match="'Mars/Olympus' is not a known time zone"):
        zone_named("Mars/Olympus")


def test_a_schedule_waits_for_its_start_then_for_its_first_opening() -> None:
    schedule = Schedule(
        window=parse_window("01:00-05:00", BERLIN),
        not_before=parse_not_before("2026-12-24T03:00", BERLIN),
        zone=BERLIN,
    )
    assert schedule.not_before == datetime(2026, 12, 24, 2, tzinfo=UTC)
    before = datetime(2026, 12, 23, 12, tzinfo=UTC)
    assert schedule.wait_reason(before) == BEFORE_START
    assert schedule.runs_from(before) == schedule.not_before  # inside the window already
    assert schedule.may_run(datetime(2026, 12, 24, 3, tzinfo=UTC))
    after_close = datetime(2026, 12, 24, 5, tzinfo=UTC)  # 06:00 local
    assert schedule.wait_reason(after_close) == OUTSIDE_WINDOW
    assert schedule.runs_from(after_close) == datetime(2026, 12, 25, 0, tzinfo=UTC)
    late = Schedule(None, parse_not_before("2026-12-24T01:00+01:00", BERLIN), BERLIN)
    assert late.runs_from(before) == datetime(2026, 12, 24, 0, tzinfo=UTC)
