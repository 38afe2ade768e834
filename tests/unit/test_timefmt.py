"""The one server-side time helper (web/timefmt.py): without JavaScript a reader sees the UTC
text, and the element carries the exact instant for js/time.js to show in their zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

from web.timefmt import when

MOMENT = datetime(2026, 12, 2, 17, 50, 12, tzinfo=UTC)
EXPECTED = (
    '<time datetime="2026-12-02T17:50:12+00:00" title="2026-12-02 17:50:12 UTC" '
    'data-when="moment">2026-12-02 17:50 UTC</time>'
)


def test_a_moment_is_utc_text_with_the_exact_time_in_its_title() -> None:
    assert str(when(MOMENT)) == EXPECTED


def test_naive_other_zone_and_iso_strings_are_the_same_instant() -> None:
    assert str(when(MOMENT.replace(tzinfo=None))) == EXPECTED
    assert str(when(MOMENT.astimezone(timezone(timedelta(hours=5))))) == EXPECTED
    assert str(when(MOMENT.isoformat())) == EXPECTED


def test_days_and_nothing() -> None:
    assert 'data-when="day">2026-12-02</time>' in str(when(MOMENT, day=True))
    assert str(when(date(2026, 12, 2))) == (
        '<time datetime="2026-12-02" title="2026-12-02" data-when="day">2026-12-02</time>'
    )
    assert str(when(None)) == ""
    assert str(when("<not a time>")) == "&lt;not a time&gt;"
