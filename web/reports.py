"""TeamOverview: team and agent performance over a period, as charts, a table and CSV
(admins: every team; team leads: their teams). Figures come from ``reports.team_report``.

The page is a GET form (first and last day, team); its query string also fetches the CSV, so
the download holds exactly the numbers on the page. The figures reach
``static/js/team_overview.js`` (Chart.js) as a JSON block; the tables carry the same numbers
for screen readers and for people who prefer them.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, render_template, request, url_for
from werkzeug.wrappers import Response

from autocrm import policies
from autocrm.errors import Forbidden, InvalidInput, NotFound
from autocrm.fields import values as field_values
from autocrm.fields.models import FieldType, TicketField
from autocrm.listing import PageRequest
from autocrm.people import teams
from autocrm.people.models import Team, User
from autocrm.reports import services as reports
from web.csv_cells import BOM, cell
from web.forms import parse_id
from web.session import login_required

bp = Blueprint("report_pages", __name__, url_prefix="/reports")

DEFAULT_DAYS = 30
PRESET_DAYS = (7, 30, 90)
MAX_DAYS = 366  # as GET /api/reports/teams
EARLIEST = date(2000, 1, 1)
NO_DATA = "\u2014"  # an em dash; the template adds "no data" for screen readers
QUERY_KEYS = ("start", "end", "team_id", "group_by")
CSV_COLUMNS = (
    "Row type",
    "Team ID",
    "Team",
    "Agent ID",
    "Agent",
    "Period start",
    "Period end",
    "Created",
    "Solved",
    "Backlog now",
    "Open assigned now",
    "First response p50 (business seconds)",
    "First response p90 (business seconds)",
    "Resolution p50 (business seconds)",
    "Resolution p90 (business seconds)",
    "SLA clocks stopped",
    "SLA compliance (%)",
    "CSAT ratings",
    "CSAT average (1-5)",
    "CSAT response rate (0-1)",
)


@dataclass
class ReportQuery:
    """The form's parameters: as typed (to refill the form), what is wrong, what they mean."""

    values: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)
    start: date | None = None
    end: date | None = None
    team_id: int | None = None

    def query_string(self, **override: str) -> str:
        values = {**self.values, **override}
        return urlencode([(k, values[k]) for k in QUERY_KEYS if values.get(k)])

    def malformed(self, name: str) -> bool:
        """Whether the field holds text that is no date (a date input would blank it)."""
        return bool(self.values.get(name)) and _parse_day(self.values[name]) is None


def _parse_day(raw: str) -> date | None:
    try:
        return date.fromisoformat(raw) if len(raw) == 10 else None
    except ValueError:
        return None


def utc_today() -> date:
    return datetime.now(UTC).date()


def parse_query(args: Mapping[str, Any], team_ids: set[int], today: date) -> ReportQuery:
    """Check the period (days are UTC) and the team; bad values become messages per field."""
    values = {key: str(args.get(key, "")).strip()[:40] for key in QUERY_KEYS}
    query = ReportQuery(values=values)
    errors = query.errors
    days = {}
    for name, label in (("start", "first"), ("end", "last")):
        if not values[name]:
            continue
        day = _parse_day(values[name])
        if day is None:
            errors[name] = f"Enter the {label} day as a date, YYYY-MM-DD."
        elif day < EARLIEST:
            errors[name] = f"Choose a day from {EARLIEST.isoformat()} on."
        elif day > today:
            errors[name] = f"Choose a day up to today ({today.isoformat()}, UTC)."
        else:
            days[name] = day
    if not errors:
        end = days.get("end", today)
        start = days.get("start", end - timedelta(days=DEFAULT_DAYS - 1))
        if end < start:
            errors["end"] = "The last day must not be before the first day."
        elif (end - start).days + 1 > MAX_DAYS:
            errors["end"] = f"Choose at most {MAX_DAYS} days: the last day is too far out."
        else:
            query.start, query.end = start, end
    if values["team_id"]:
        team_id = parse_id(values["team_id"])
        if team_id is None or team_id not in team_ids:
            errors["team_id"] = "Choose one of the teams in the list."
        else:
            query.team_id = team_id
    return query


def report_teams(user: User) -> list[Team]:
    """The teams whose report ``user`` may see (the team picker), by name."""
    visible: list[Team] = []
    cursor = None
    while True:
        page = teams.list_teams(user, PageRequest(limit=200, cursor=cursor, sort="id"))
        visible.extend(t for t in page.items if policies.can_view_team_report(user, t))
        cursor = page.next_cursor
        if cursor is None:
            return sorted(visible, key=lambda t: t.name.lower())


# -- how numbers read -----------------------------------------------------------------------------


def duration(seconds: float | None) -> str:
    """A duration as people read it: "45 s", "12 m", "2 h 15 m" (hours, not days: these are
    business hours). Halves round up, as team_overview.js rounds them."""
    if seconds is None:
        return NO_DATA
    whole = int(seconds + 0.5)
    if whole < 60:
        return f"{whole} s"
    minutes = int(whole / 60 + 0.5)
    if minutes < 60:
        return f"{minutes} m"
    hours, rest = divmod(minutes, 60)
    return f"{hours} h {rest} m" if rest else f"{hours} h"


def percent(value: float | None, digits: int = 1) -> str:
    return NO_DATA if value is None else f"{value:.{digits}f} %"


def rating(value: float | None) -> str:
    return NO_DATA if value is None else f"{value:.2f}"


def _chart_data(report: dict[str, Any]) -> dict[str, Any]:
    """What team_overview.js draws: plain numbers (durations in seconds), by team."""
    first = report["teams"][0]["backlog_trend"] if report["teams"] else []
    return {
        "days": [entry["day"].isoformat() for entry in first],
        "teams": [
            {
                "name": t["team_name"],
                "created": t["created"],
                "solved": t["solved"],
                "backlog": [entry["open"] for entry in t["backlog_trend"]],
                "first_response": [
                    t["first_response_seconds_p50"],
                    t["first_response_seconds_p90"],
                ],
                "resolution": [t["resolution_seconds_p50"], t["resolution_seconds_p90"]],
                "sla_percent": t["sla_compliance_percent"],
                "csat_average": t["csat_average"],
                "csat_response_percent": (
                    None
                    if t["csat_response_rate"] is None
                    else round(100 * t["csat_response_rate"], 2)
                ),
            }
            for t in report["teams"]
        ],
        "agents": [
            {"team": t["team_name"], "name": a["name"], "open": a["open_assigned"]}
            for t in report["teams"]
            for a in t["agents"]
        ],
    }


# -- the page and the CSV ------------------------------------------------------------------------


def _forbidden(user: User) -> tuple[str, int]:
    return render_template("reports/forbidden.html", user=user), 403


def group_choices(user: User) -> list[TicketField]:
    """The dropdown fields a report may be grouped by."""
    return [f for f in field_values.fields_for(user) if f.type is FieldType.DROPDOWN]


def _load(user: User, args: Mapping[str, Any]) -> tuple[ReportQuery, list[Team], Any]:
    """The parsed query, the teams to choose from, and the report (None when the query is
    wrong). Raises Forbidden for users who may see no report."""
    if not reports.can_view_reports(user):
        raise Forbidden("Only admins and team leads may see team reports.")
    choices = report_teams(user)
    query = parse_query(args, {t.id for t in choices}, utc_today())
    group_by = query.values["group_by"]
    report = None
    if not query.errors and query.start is not None and query.end is not None:
        try:
            report = reports.team_report(
                user,
                start=query.start,
                end=query.end,
                team_id=query.team_id,
                group_by=f"field.{group_by}" if group_by else None,
            )
        except NotFound as exc:  # the team went away (or its lead changed) meanwhile
            query.errors["team_id"] = exc.message
        except InvalidInput:
            query.errors["group_by"] = "Choose a dropdown field from the list."
    return query, choices, report


def _presets(query: ReportQuery, today: date) -> list[dict[str, Any]]:
    team = {"team_id": query.values["team_id"]} if query.team_id else {}
    presets = []
    for days in PRESET_DAYS:
        start = today - timedelta(days=days - 1)
        presets.append(
            {
                "label": f"Last {days} days",
                "url": url_for(
                    "report_pages.team_overview",
                    start=start.isoformat(),
                    end=today.isoformat(),
                    **team,
                ),
                "current": query.start == start and query.end == today,
            }
        )
    return presets


def _page(user: User, query: ReportQuery, choices: list[Team], report: Any) -> tuple[str, int]:
    html = render_template(
        "reports/team_overview.html",
        user=user,
        query=query,
        teams=choices,
        report=report,
        chart_data=_chart_data(report) if report else None,
        presets=_presets(query, utc_today()),
        csv_url=f"{url_for('report_pages.team_overview_csv')}?{query.query_string()}",
        group_choices=group_choices(user),
        duration=duration,
        percent=percent,
        rating=rating,
        no_data=NO_DATA,
    )
    return html, 422 if query.errors else 200


@bp.get("/teams")
@login_required()
def team_overview(user: User) -> tuple[str, int]:
    try:
        return _page(user, *_load(user, request.args))
    except Forbidden:
        return _forbidden(user)


@bp.get("/teams.csv")
@login_required()
def team_overview_csv(user: User) -> Response | tuple[str, int]:
    """The page's numbers, one row per team and per agent of each team."""
    try:
        query, choices, report = _load(user, request.args)
    except Forbidden:
        return _forbidden(user)
    if report is None:  # the page says what is wrong, at the field
        return _page(user, query, choices, report)
    filename = f"team-overview-{report['start'].isoformat()}-to-{report['end'].isoformat()}.csv"
    return Response(
        csv_text(report),
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "private, no-store",
        },
    )


def csv_text(report: dict[str, Any]) -> str:
    """The report as CSV (with a byte-order mark, so spreadsheets read it as UTF-8)."""
    out = io.StringIO()
    out.write(BOM)
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    period = (report["start"].isoformat(), report["end"].isoformat())
    for t in report["teams"]:
        team = (t["team_id"], t["team_name"])
        writer.writerow(
            cell(v)
            for v in (
                "team", *team, None, None, *period,
                t["created"], t["solved"], t["backlog_now"], None,
                t["first_response_seconds_p50"], t["first_response_seconds_p90"],
                t["resolution_seconds_p50"], t["resolution_seconds_p90"],
                t["sla_clocks_stopped"], t["sla_compliance_percent"],
                t["csat_ratings"], t["csat_average"], t["csat_response_rate"],
            )
        )  # fmt: skip
        for a in t["agents"]:
            writer.writerow(
                cell(v)
                for v in (
                    "agent", *team, a["user_id"], a["name"], *period,
                    None, a["solved"], None, a["open_assigned"],
                    a["first_response_seconds_p50"], None, None, None,
                    None, None, None, None, None,
                )
            )  # fmt: skip
    return out.getvalue()
