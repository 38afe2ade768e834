"""One way to show a time on every page: ``{{ when(moment) }}``.

Pages used to mix "2026-12-02 17:50 UTC" with "12/2/26, 5:50 PM". Every shown time now renders
through :func:`when` as a ``<time>`` element carrying the exact UTC instant; ``js/time.js``
turns it into the viewer's time zone, as a relative time ("3 minutes ago", "yesterday") with
the exact local time on hover. Without JavaScript the server's UTC text stays, and its title
still holds the exact time.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from markupsafe import Markup, escape

# What js/time.js reads: a moment shown relative to now, or a calendar day shown as a date.
KIND_MOMENT = "moment"
KIND_DAY = "day"


def _as_utc(value: datetime | str) -> datetime | None:
    """An aware UTC datetime from a datetime (naive means UTC) or an ISO 8601 string."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _tag(iso: str, title: str, kind: str, text: str) -> Markup:
    return Markup('<time datetime="{}" title="{}" data-when="{}">{}</time>').format(
        iso, title, kind, text
    )


def when(value: datetime | date | str | None, *, day: bool = False) -> Markup:
    """A ``<time>`` for ``value``; ``day=True`` shows only the date (e.g. "on since")."""
    if value is None:
        return Markup("")
    if isinstance(value, date) and not isinstance(value, datetime):
        iso = value.isoformat()
        return _tag(iso, iso, KIND_DAY, iso)
    moment = _as_utc(value)
    if moment is None:  # not a time after all: show what we were given, as text
        return escape(str(value))
    iso = moment.isoformat()
    exact = moment.strftime("%Y-%m-%d %H:%M:%S UTC")
    if day:
        return _tag(iso, exact, KIND_DAY, moment.strftime("%Y-%m-%d"))
    return _tag(iso, exact, KIND_MOMENT, moment.strftime("%Y-%m-%d %H:%M UTC"))
