"""Business-hours arithmetic for SLA deadlines: pure stdlib, no database, no Flask.

A ``BusinessCalendar`` is a time zone, weekly opening hours in local wall-clock time, and a set of
local holiday dates. ``add_business_time`` answers "when is this due?" and
``business_seconds_between`` answers "how much business time has passed?"; one is the inverse of
the other.

Everything is computed one local day at a time: each day's wall-clock intervals are turned into
UTC instants for that day only, so a 09:00-17:00 day is 8 hours even when the clocks change that
night, and a 00:00-24:00 day is 23 or 25 hours long on a DST-change day. Intervals never cross
midnight; a night shift is 22:00-24:00 on one day and 00:00-06:00 on the next.

Wall-clock times that do not exist (the hour skipped in spring) resolve to the moment the clocks
jump, and repeated ones (the hour lived twice in autumn) to their first occurrence, so opening
hours map to UTC monotonically and two intervals can never overlap once converted.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# ``time`` cannot say 24:00, so an interval ending at ``time.max`` runs to the next midnight.
END_OF_DAY = time.max

_HHMM = re.compile(r"^(\d{1,2}):(\d{2})$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DEFINITION_KEYS = frozenset({"timezone", "hours", "holidays"})
_ONE_DAY = timedelta(days=1)
_RESOLUTION = timedelta(microseconds=1)

Interval = tuple[time, time]


@dataclass(frozen=True)
class BusinessCalendar:
    """Weekly opening hours in one time zone, minus holidays.

    ``hours`` maps a weekday (0 = Monday) to its open intervals in local time; a weekday that is
    missing or maps to ``()`` is closed. An interval's end may be ``END_OF_DAY`` (24:00).
    Construction validates and sorts the intervals, whichever way the calendar was built.
    """

    timezone: str
    hours: dict[int, tuple[Interval, ...]]
    holidays: frozenset[date] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        _check_timezone(self.timezone)
        normalized: dict[int, tuple[Interval, ...]] = {}
        for weekday, intervals in self.hours.items():
            if weekday not in range(7):
                raise ValueError(
                    f"hours: weekday must be 0 (Monday) to 6 (Sunday), got {weekday!r}."
                )
            normalized[weekday] = _check_intervals(WEEKDAYS[weekday], intervals)
        # Frozen, so normalizing means going around __setattr__; the copy also keeps a caller's
        # later edits to their own dict from changing this calendar.
        object.__setattr__(self, "hours", normalized)
        for day in self.holidays:
            if not isinstance(day, date) or isinstance(day, datetime):
                raise ValueError(f"holidays: expected dates, got {day!r}.")
        object.__setattr__(self, "holidays", frozenset(self.holidays))

    @classmethod
    def from_definition(cls, data: dict[str, Any] | None) -> BusinessCalendar:
        """Parse a calendar from plain data (JSON/YAML); ``None`` or ``{}`` is ``ALWAYS_OPEN``.

        ``{"timezone": "Europe/Berlin", "hours": {"mon": [["09:00", "17:00"]], ...},
        "holidays": ["2026-12-25"]}``. ``timezone`` and ``hours`` are required; a weekday left out
        of ``hours`` is closed, but some weekday must be open. Raises ``ValueError`` naming the
        offending field.
        """
        if not data:
            return ALWAYS_OPEN
        if not isinstance(data, dict):
            raise ValueError(f"A business calendar must be a mapping, got {type(data).__name__}.")
        unknown = sorted(set(data) - _DEFINITION_KEYS)
        if unknown:
            raise ValueError(f"Unknown business calendar key(s): {', '.join(map(str, unknown))}.")
        for required in ("timezone", "hours"):
            if required not in data:
                raise ValueError(f"{required}: required.")
        calendar = cls(
            timezone=data["timezone"],
            hours=_parse_hours(data["hours"]),
            holidays=_parse_holidays(data.get("holidays", [])),
        )
        # Caught here, where it is the author's mistake, rather than when the first deadline
        # is computed from it.
        if not calendar.has_open_hours:
            raise ValueError("hours: the calendar is never open; give at least one interval.")
        return calendar

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @cached_property
    def has_open_hours(self) -> bool:
        return any(self.hours.values())

    @cached_property
    def is_always_open(self) -> bool:
        # Time zone is irrelevant here: back-to-back 24h days cover every instant, whatever the
        # clocks do.
        full_day = ((time(0), END_OF_DAY),)
        return not self.holidays and all(self.hours.get(wd) == full_day for wd in range(7))

    def open_spans(self, day: date) -> list[tuple[datetime, datetime]]:
        """The day's open intervals as aware-UTC ``[start, end)`` pairs, in order."""
        if day in self.holidays:
            return []
        spans = []
        for start, end in self.hours.get(day.weekday(), ()):
            span_start = _first_instant_at_or_after(datetime.combine(day, start), self.zone)
            span_end = _first_instant_at_or_after(_wall_end(day, end), self.zone)
            # An interval lying wholly inside a spring-forward gap never happens on that day.
            if span_end > span_start:
                spans.append((span_start, span_end))
        return spans


def add_business_time(start: datetime, seconds: float, calendar: BusinessCalendar) -> datetime:
    """The aware-UTC instant at which ``seconds`` of business time have elapsed after ``start``.

    Counting begins at ``start`` if the calendar is open then, else at the next opening; with
    ``seconds == 0`` that opening is the answer. A target that uses up an interval exactly ends
    at its closing time (Mon 09:00 + 8h with 09-17 hours is Mon 17:00, not Tue 09:00).
    """
    start = _as_utc(start, "start")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"seconds must be a finite number >= 0, got {seconds!r}.")
    remaining = timedelta(seconds=seconds)
    if calendar.is_always_open:
        return start + remaining
    # Without this check the search for the next opening would never end.
    if not calendar.has_open_hours:
        raise ValueError("The business calendar has no open hours; no deadline can be reached.")
    for span_start, span_end in _spans_from(calendar, start):
        length = span_end - span_start
        if remaining <= length:
            return span_start + remaining
        remaining -= length
    raise AssertionError("unreachable: _spans_from is endless for a calendar with open hours")


def business_seconds_between(start: datetime, end: datetime, calendar: BusinessCalendar) -> float:
    """Business seconds in ``[start, end)``; 0 if ``end <= start``."""
    start, end = _as_utc(start, "start"), _as_utc(end, "end")
    if end <= start or not calendar.has_open_hours:
        return 0.0
    if calendar.is_always_open:
        return (end - start).total_seconds()
    total = timedelta()
    for span_start, span_end in _spans_from(calendar, start, until=end):
        total += min(span_end, end) - span_start
    return total.total_seconds()


def _spans_from(
    calendar: BusinessCalendar, start: datetime, until: datetime | None = None
) -> Iterator[tuple[datetime, datetime]]:
    """Open spans at or after ``start`` (the first clipped to begin there), day by day.

    Endless when ``until`` is None. Day-at-a-time is cheap enough (a 30-business-day target is
    about 45 days of a few conversions each) and keeps DST and holidays trivially right, which
    skipping whole weeks arithmetically would not.
    """
    zone = calendar.zone
    # Earlier days cannot reach past ``start``: they end by this day's midnight, which is no
    # later than ``start`` because ``start``'s wall clock already shows this date.
    day = start.astimezone(zone).date()
    while True:
        if until is not None:
            day_begins = _first_instant_at_or_after(datetime.combine(day, time(0)), zone)
            if day_begins >= until:
                return
        for span_start, span_end in calendar.open_spans(day):
            if until is not None and span_start >= until:
                return
            if span_end > start:
                yield max(span_start, start), span_end
        day += _ONE_DAY


def _first_instant_at_or_after(wall: datetime, zone: ZoneInfo) -> datetime:
    """The earliest aware-UTC instant whose local wall-clock time in ``zone`` is >= ``wall``.

    ``wall`` is naive. For most times that is plain conversion (``fold=0`` picks the first of a
    repeated autumn hour). For a time skipped in spring, PEP 495 conversion gives an instant
    after the jump by as much as ``wall`` is into the gap, which would make a 02:30 start come
    later than a 03:00 one; the moment of the jump is found by bisection instead (it runs only
    for times inside a gap).
    """
    after_gap = wall.replace(tzinfo=zone).astimezone(UTC)
    if after_gap.astimezone(zone).replace(tzinfo=None) == wall:
        return after_gap
    before_gap = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    while after_gap - before_gap > _RESOLUTION:
        middle = before_gap + (after_gap - before_gap) / 2
        if middle.astimezone(zone).replace(tzinfo=None) >= wall:
            after_gap = middle
        else:
            before_gap = middle
    return after_gap


def _wall_end(day: date, end: time) -> datetime:
    if end == END_OF_DAY:
        return datetime.combine(day + _ONE_DAY, time(0))
    return datetime.combine(day, end)


def _as_utc(moment: datetime, name: str) -> datetime:
    if not isinstance(moment, datetime):
        raise ValueError(f"{name} must be a datetime, got {type(moment).__name__}.")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {moment.isoformat()}.")
    # Adding a timedelta to a datetime in a DST zone adds wall-clock time, not elapsed time, so
    # all arithmetic happens in UTC.
    return moment.astimezone(UTC)


def _check_timezone(name: object) -> None:
    if not isinstance(name, str) or not name:
        raise ValueError(f"timezone: expected an IANA name like 'Europe/Berlin', got {name!r}.")
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"timezone: unknown time zone {name!r}.") from None


def _check_intervals(day_name: str, intervals: object) -> tuple[Interval, ...]:
    if not isinstance(intervals, tuple | list):
        raise ValueError(f"hours.{day_name}: expected a sequence of (start, end) pairs.")
    for i, interval in enumerate(intervals):
        if (
            not isinstance(interval, tuple | list)
            or len(interval) != 2
            or not all(isinstance(t, time) for t in interval)
        ):
            raise ValueError(f"hours.{day_name}.{i}: expected a (start, end) pair of times.")
        start, end = interval
        if start.tzinfo is not None or end.tzinfo is not None:
            raise ValueError(f"hours.{day_name}.{i}: times are local wall-clock, without tzinfo.")
        if start >= end:
            raise ValueError(
                f"hours.{day_name}.{i}: start {_hhmm(start)} must be before end {_hhmm(end)}."
            )
    ordered = tuple(sorted((start, end) for start, end in intervals))
    for (_, previous_end), (start, end) in pairwise(ordered):
        # Touching intervals (09:00-12:00, 12:00-17:00) are fine; overlapping ones would be
        # counted twice.
        if start < previous_end:
            raise ValueError(
                f"hours.{day_name}: interval {_hhmm(start)}-{_hhmm(end)} overlaps one ending at "
                f"{_hhmm(previous_end)}."
            )
    return ordered


def _hhmm(moment: time) -> str:
    return "24:00" if moment == END_OF_DAY else moment.strftime("%H:%M")


def _parse_hours(raw: object) -> dict[int, tuple[Interval, ...]]:
    if not isinstance(raw, dict):
        raise ValueError("hours: expected a mapping of weekday (mon..sun) to intervals.")
    hours: dict[int, tuple[Interval, ...]] = {}
    for key, intervals in raw.items():
        if key not in WEEKDAYS:
            raise ValueError(f"hours: unknown weekday {key!r}; use one of {', '.join(WEEKDAYS)}.")
        if not isinstance(intervals, list | tuple):
            raise ValueError(f"hours.{key}: expected a list of [start, end] pairs.")
        parsed = []
        for i, pair in enumerate(intervals):
            where = f"hours.{key}.{i}"
            if not isinstance(pair, list | tuple) or len(pair) != 2:
                raise ValueError(f'{where}: expected a ["HH:MM", "HH:MM"] pair, got {pair!r}.')
            parsed.append(
                (
                    _parse_hhmm(pair[0], where, is_end=False),
                    _parse_hhmm(pair[1], where, is_end=True),
                )
            )
        hours[WEEKDAYS.index(key)] = tuple(parsed)
    return hours


def _parse_hhmm(raw: object, where: str, *, is_end: bool) -> time:
    if isinstance(raw, int) and not isinstance(raw, bool):
        # YAML 1.1 reads an unquoted 17:00 as the base-60 number 1020.
        raise ValueError(f'{where}: got the number {raw}; quote times in YAML, e.g. "17:00".')
    match = _HHMM.match(raw) if isinstance(raw, str) else None
    if match is None:
        raise ValueError(f'{where}: expected a time as "HH:MM", got {raw!r}.')
    hour, minute = int(match[1]), int(match[2])
    if is_end and (hour, minute) == (24, 0):
        return END_OF_DAY
    if hour > 23 or minute > 59:
        limit = "00:00 to 24:00" if is_end else "00:00 to 23:59"
        raise ValueError(f"{where}: {raw!r} is not a time of day ({limit}).")
    return time(hour, minute)


def _parse_holidays(raw: object) -> frozenset[date]:
    if not isinstance(raw, list | tuple | set | frozenset):
        raise ValueError('holidays: expected a list of dates like "2026-12-25".')
    holidays = set()
    for i, value in enumerate(raw):
        # PyYAML already turns an unquoted 2026-12-25 into a date.
        if isinstance(value, date) and not isinstance(value, datetime):
            holidays.add(value)
            continue
        try:
            if not isinstance(value, str) or not _ISO_DATE.match(value):
                raise ValueError
            holidays.add(date.fromisoformat(value))
        except ValueError:
            raise ValueError(
                f'holidays.{i}: expected a date "YYYY-MM-DD", got {value!r}.'
            ) from None
    return frozenset(holidays)


# Built last: construction validates with the helpers above.
ALWAYS_OPEN = BusinessCalendar(
    timezone="UTC", hours={wd: ((time(0), END_OF_DAY),) for wd in range(7)}, holidays=frozenset()
)
