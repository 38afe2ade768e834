"""Business-hours arithmetic: hand-computed deadlines, DST days, and the inverse property."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from workflows.calendar import (
    ALWAYS_OPEN,
    END_OF_DAY,
    BusinessCalendar,
    add_business_time,
    business_seconds_between,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
HOUR = 3600
WEEKDAYS_9_TO_5 = {day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}


def berlin(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=BERLIN)


def office(timezone: str = "Europe/Berlin", **extra: object) -> BusinessCalendar:
    return BusinessCalendar.from_definition(
        {"timezone": timezone, "hours": WEEKDAYS_9_TO_5, **extra}
    )


def round_the_clock(timezone: str) -> BusinessCalendar:
    every_day = {day: [["00:00", "24:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat")}
    # Sunday split in two so the calendar is not recognised as ALWAYS_OPEN and takes the
    # day-by-day path, which is what the DST tests are about.
    every_day["sun"] = [["00:00", "12:00"], ["12:00", "24:00"]]
    return BusinessCalendar.from_definition({"timezone": timezone, "hours": every_day})


# 2026-03-02 is a Monday; 2026-03-06 a Friday.


def test_always_open_adds_exactly() -> None:
    start = datetime(2026, 3, 2, 10, 15, tzinfo=UTC)
    assert add_business_time(start, 12.5, ALWAYS_OPEN) == start + timedelta(seconds=12.5)
    assert add_business_time(start, 40 * 86400, ALWAYS_OPEN) == start + timedelta(days=40)
    assert business_seconds_between(start, start + timedelta(days=3), ALWAYS_OPEN) == 3 * 86400


def test_empty_definition_is_always_open() -> None:
    assert BusinessCalendar.from_definition(None) is ALWAYS_OPEN
    assert BusinessCalendar.from_definition({}) is ALWAYS_OPEN


def test_results_are_aware_utc() -> None:
    due = add_business_time(berlin(2026, 3, 2, 16), 2 * HOUR, office())
    assert due.tzinfo is UTC


def test_overflow_into_next_day() -> None:
    due = add_business_time(berlin(2026, 3, 2, 16), 2 * HOUR, office())
    assert due == berlin(2026, 3, 3, 10)


def test_friday_afternoon_rolls_over_the_weekend() -> None:
    due = add_business_time(berlin(2026, 3, 6, 16, 30), HOUR, office())
    assert due == berlin(2026, 3, 9, 9, 30)


def test_start_on_saturday_counts_from_monday_opening() -> None:
    cal = office()
    assert add_business_time(berlin(2026, 3, 7, 11), 30 * 60, cal) == berlin(2026, 3, 9, 9, 30)
    assert add_business_time(berlin(2026, 3, 7, 11), 0, cal) == berlin(2026, 3, 9, 9)


def test_zero_seconds_when_open_is_start_itself() -> None:
    start = berlin(2026, 3, 2, 11, 11)
    assert add_business_time(start, 0, office()) == start


def test_using_up_a_day_exactly_ends_at_closing_time() -> None:
    cal = office()
    assert add_business_time(berlin(2026, 3, 2, 9), 8 * HOUR, cal) == berlin(2026, 3, 2, 17)
    # At closing time the calendar is already closed.
    assert add_business_time(berlin(2026, 3, 2, 17), 0, cal) == berlin(2026, 3, 3, 9)


def test_holiday_is_skipped() -> None:
    cal = office(holidays=["2026-03-03"])
    due = add_business_time(berlin(2026, 3, 2, 16), 2 * HOUR, cal)
    assert due == berlin(2026, 3, 4, 10)
    assert business_seconds_between(berlin(2026, 3, 2), berlin(2026, 3, 5), cal) == 16 * HOUR


def test_lunch_break() -> None:
    cal = BusinessCalendar.from_definition(
        {"timezone": "Europe/Berlin", "hours": {"mon": [["13:00", "17:00"], ["09:00", "12:00"]]}}
    )
    assert add_business_time(berlin(2026, 3, 2, 11), 2 * HOUR, cal) == berlin(2026, 3, 2, 14)
    assert add_business_time(berlin(2026, 3, 2, 12, 30), 0, cal) == berlin(2026, 3, 2, 13)
    monday = business_seconds_between(berlin(2026, 3, 2), berlin(2026, 3, 3), cal)
    assert monday == 7 * HOUR
    # The next Monday, a week later.
    assert add_business_time(berlin(2026, 3, 2, 16), 2 * HOUR, cal) == berlin(2026, 3, 9, 10)


def test_night_shift_across_midnight_is_two_intervals() -> None:
    cal = BusinessCalendar.from_definition(
        {
            "timezone": "Europe/Berlin",
            "hours": {"mon": [["22:00", "24:00"]], "tue": [["00:00", "06:00"]]},
        }
    )
    assert add_business_time(berlin(2026, 3, 2, 23), 3 * HOUR, cal) == berlin(2026, 3, 3, 2)
    shift = business_seconds_between(berlin(2026, 3, 2, 12), berlin(2026, 3, 3, 12), cal)
    assert shift == 8 * HOUR


# Berlin: 2026-03-29 (Sunday) has 23 hours, 2026-10-25 (Sunday) has 25.


@pytest.mark.parametrize(("day", "hours"), [(29, 23), (28, 24), (30, 24)])
def test_24h_calendar_counts_real_length_of_spring_forward_day(day: int, hours: int) -> None:
    cal = round_the_clock("Europe/Berlin")
    assert business_seconds_between(berlin(2026, 3, day), berlin(2026, 3, day + 1), cal) == (
        hours * HOUR
    )


def test_24h_calendar_counts_real_length_of_fall_back_day() -> None:
    cal = round_the_clock("Europe/Berlin")
    assert business_seconds_between(berlin(2026, 10, 25), berlin(2026, 10, 26), cal) == 25 * HOUR


def test_24h_calendar_adds_elapsed_time_across_dst() -> None:
    cal = round_the_clock("Europe/Berlin")
    # 01:00 CET + 2h of real time: 02:00 is skipped, so the wall clock reads 04:00 CEST.
    assert add_business_time(berlin(2026, 3, 29, 1), 2 * HOUR, cal) == berlin(2026, 3, 29, 4)
    # 00:00 CEST + 24h of real time: the day has 25 hours, so it is 23:00 CET the same day.
    assert add_business_time(berlin(2026, 10, 25), 24 * HOUR, cal) == berlin(2026, 10, 25, 23)


@pytest.mark.parametrize("dst_sunday", [date(2026, 3, 29), date(2026, 10, 25)])
def test_9_to_5_is_eight_hours_on_dst_days(dst_sunday: date) -> None:
    cal = BusinessCalendar.from_definition(
        {"timezone": "Europe/Berlin", "hours": {"sun": [["09:00", "17:00"]]}}
    )
    day = datetime.combine(dst_sunday, time(0), tzinfo=BERLIN)
    assert business_seconds_between(day, day + timedelta(days=1), cal) == 8 * HOUR
    due = add_business_time(day, 8 * HOUR, cal)
    assert due == datetime.combine(dst_sunday, time(17), tzinfo=BERLIN)


def test_9_to_5_week_across_spring_forward() -> None:
    # Fri 2026-03-27 16:00 CET + 2h -> Mon 2026-03-30 10:00 CEST, which is 08:00 UTC (not 09:00).
    due = add_business_time(berlin(2026, 3, 27, 16), 2 * HOUR, office())
    assert due == datetime(2026, 3, 30, 8, tzinfo=UTC)


def test_interval_starting_in_the_skipped_hour_opens_when_the_clocks_jump() -> None:
    cal = BusinessCalendar.from_definition(
        {"timezone": "Europe/Berlin", "hours": {"sun": [["02:30", "04:00"]]}}
    )
    # 02:30 does not exist on 2026-03-29; the wall clock goes from 02:00 CET to 03:00 CEST.
    day = berlin(2026, 3, 29)
    assert add_business_time(day, 0, cal) == datetime(2026, 3, 29, 1, tzinfo=UTC)
    assert business_seconds_between(day, day + timedelta(days=1), cal) == HOUR


def test_america_new_york() -> None:
    cal = office("America/New_York")
    # Fri 2026-03-06 16:30 EST + 1h -> Mon 2026-03-09 09:30 EDT (DST began Sunday 03-08).
    due = add_business_time(datetime(2026, 3, 6, 16, 30, tzinfo=NEW_YORK), HOUR, cal)
    assert due == datetime(2026, 3, 9, 13, 30, tzinfo=UTC)
    # Start given in UTC: Mon 2026-03-02 14:00 UTC is 09:00 EST.
    start = datetime(2026, 3, 2, 14, tzinfo=UTC)
    assert add_business_time(start, 8 * HOUR, cal) == datetime(2026, 3, 2, 22, tzinfo=UTC)


_INVERSE_CALENDARS = {
    "office": office(holidays=["2026-03-03", "2026-10-26"]),
    "lunch": BusinessCalendar.from_definition(
        {
            "timezone": "America/New_York",
            "hours": {d: [["08:30", "12:00"], ["13:00", "17:30"]] for d in ("mon", "wed", "sat")},
        }
    ),
    "round_the_clock": round_the_clock("Europe/Berlin"),
    "night": BusinessCalendar.from_definition(
        {
            "timezone": "Europe/Berlin",
            "hours": {"sat": [["22:00", "24:00"]], "sun": [["00:00", "06:00"]]},
        }
    ),
    "always_open": ALWAYS_OPEN,
}
_INVERSE_STARTS = [
    datetime(2026, 3, 2, 7, 45, tzinfo=UTC),
    datetime(2026, 3, 6, 16, 59, 59, 500000, tzinfo=UTC),
    datetime(2026, 3, 28, 23, 30, tzinfo=UTC),
    datetime(2026, 10, 24, 22, 15, tzinfo=UTC),
    datetime(2026, 10, 25, 0, 59, tzinfo=UTC),
    datetime(2026, 11, 1, 5, 0, tzinfo=UTC),
]
_INVERSE_DURATIONS = [0, 0.000001, 1, 59.5, HOUR, 7.75 * HOUR, 8 * HOUR, 3 * 86400 + 17, 1234567.25]


@pytest.mark.parametrize("name", sorted(_INVERSE_CALENDARS))
def test_business_seconds_between_inverts_add_business_time(name: str) -> None:
    cal = _INVERSE_CALENDARS[name]
    for start in _INVERSE_STARTS:
        for seconds in _INVERSE_DURATIONS:
            due = add_business_time(start, seconds, cal)
            assert due >= start
            assert business_seconds_between(start, due, cal) == pytest.approx(seconds, abs=1e-6), (
                start,
                seconds,
            )


def test_business_seconds_between_is_zero_for_empty_or_reversed_range() -> None:
    start = berlin(2026, 3, 2, 10)
    assert business_seconds_between(start, start, office()) == 0
    assert business_seconds_between(start, start - timedelta(hours=5), office()) == 0


def test_business_seconds_between_partial_days() -> None:
    # Mon 16:00 -> Wed 10:00: 1h + 8h + 1h.
    elapsed = business_seconds_between(berlin(2026, 3, 2, 16), berlin(2026, 3, 4, 10), office())
    assert elapsed == 10 * HOUR


def test_thirty_business_days() -> None:
    cal = office(holidays=["2026-04-03", "2026-04-06"])
    start = berlin(2026, 3, 2, 9)
    due = add_business_time(start, 30 * 8 * HOUR, cal)
    # 30 business days from Mon 03-02 09:00 end at closing on the 30th; Good Friday and
    # Easter Monday push it two days past Fri 04-10 to Tue 04-14.
    assert due == berlin(2026, 4, 14, 17)
    assert business_seconds_between(start, due, cal) == 30 * 8 * HOUR


def test_a_year_of_business_time_returns() -> None:
    due = add_business_time(berlin(2026, 1, 1), 260 * 8 * HOUR, office())
    assert due.year == 2026


def test_calendar_without_hours_cannot_reach_a_deadline() -> None:
    closed = BusinessCalendar("UTC", {0: ()}, frozenset())
    with pytest.raises(ValueError, match="no open hours"):
        add_business_time(datetime(2026, 3, 2, tzinfo=UTC), 1, closed)
    start = datetime(2026, 3, 2, tzinfo=UTC)
    assert business_seconds_between(start, start + timedelta(days=30), closed) == 0


@pytest.mark.parametrize("func", ["add", "between"])
def test_naive_datetimes_are_rejected(func: str) -> None:
    naive = datetime(2026, 3, 2, 10)
    with pytest.raises(ValueError, match="timezone-aware"):
        if func == "add":
            add_business_time(naive, 60, office())
        else:
            business_seconds_between(datetime(2026, 3, 1, tzinfo=UTC), naive, office())


@pytest.mark.parametrize("seconds", [-1, float("nan"), float("inf")])
def test_bad_durations_are_rejected(seconds: float) -> None:
    with pytest.raises(ValueError, match="seconds must be"):
        add_business_time(berlin(2026, 3, 2, 10), seconds, office())


def test_from_definition_parses_everything() -> None:
    cal = BusinessCalendar.from_definition(
        {
            "timezone": "Europe/Berlin",
            "hours": {"mon": [["13:00", "24:00"], ["9:00", "12:00"]], "sun": []},
            "holidays": ["2026-12-25", date(2026, 12, 26)],
        }
    )
    assert cal.timezone == "Europe/Berlin"
    assert cal.hours == {0: ((time(9), time(12)), (time(13), END_OF_DAY)), 6: ()}
    assert cal.holidays == frozenset({date(2026, 12, 25), date(2026, 12, 26)})


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"timezone": "UTC", "hours": {"monday": [["09:00", "17:00"]]}},
            "unknown weekday 'monday'",
        ),
        ({"timezone": "UTC", "hours": {"mon": [["9am", "17:00"]]}}, r"hours\.mon\.0: .*HH:MM"),
        ({"timezone": "UTC", "hours": {"mon": [["09:00", "17:60"]]}}, "not a time of day"),
        ({"timezone": "UTC", "hours": {"mon": [["24:00", "24:00"]]}}, "not a time of day"),
        ({"timezone": "UTC", "hours": {"mon": [["09:00", 1020]]}}, "quote times in YAML"),
        ({"timezone": "UTC", "hours": {"mon": [["09:00"]]}}, r"hours\.mon\.0: expected"),
        ({"timezone": "UTC", "hours": {"mon": "09:00-17:00"}}, r"hours\.mon: expected a list"),
        ({"timezone": "UTC", "hours": {"tue": [["17:00", "09:00"]]}}, "must be before end"),
        ({"timezone": "UTC", "hours": {"tue": [["09:00", "09:00"]]}}, "must be before end"),
        (
            {"timezone": "UTC", "hours": {"wed": [["09:00", "13:00"], ["12:00", "17:00"]]}},
            "12:00-17:00 overlaps one ending at 13:00",
        ),
        ({"timezone": "Mars/Olympus", "hours": {}}, "unknown time zone 'Mars/Olympus'"),
        ({"timezone": "../etc/passwd", "hours": {}}, "unknown time zone"),
        ({"timezone": "", "hours": {}}, "timezone: expected an IANA name"),
        ({"timezone": "UTC", "hours": {"mon": [], "tue": []}}, "never open"),
        ({"hours": {}}, "timezone: required"),
        ({"timezone": "UTC"}, "hours: required"),
        (
            {"timezone": "UTC", "hours": {"mon": [["09:00", "17:00"]]}, "holiday": []},
            "Unknown business calendar key",
        ),
        (
            {"timezone": "UTC", "hours": {"mon": [["09:00", "17:00"]]}, "holidays": ["2026-02-30"]},
            r"holidays\.0: expected",
        ),
        (
            {"timezone": "UTC", "hours": {"mon": [["09:00", "17:00"]]}, "holidays": ["25.12.2026"]},
            r"holidays\.0: expected",
        ),
        (
            {"timezone": "UTC", "hours": {"mon": [["09:00", "17:00"]]}, "holidays": "2026-12-25"},
            "holidays: expected a list",
        ),
    ],
)
def test_from_definition_rejects_bad_input(data: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BusinessCalendar.from_definition(data)


def test_direct_construction_is_validated_too() -> None:
    with pytest.raises(ValueError, match="weekday must be 0"):
        BusinessCalendar("UTC", {7: ((time(9), time(17)),)}, frozenset())
    with pytest.raises(ValueError, match="overlaps"):
        BusinessCalendar("UTC", {0: ((time(9), time(17)), (time(16), time(18)))}, frozenset())
