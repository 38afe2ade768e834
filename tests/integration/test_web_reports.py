"""The TeamOverview page and its CSV (/reports/teams, /reports/teams.csv) through the Flask test
client with a real login: the CSV against hand-computed values, the period and team checks, and
who may see which team.

The fixture's tickets are opened through the services; their timestamps, category and assignee
are then set by an UPDATE so every number can be worked out by hand. Every time span lies
inside one business day (Monday to Friday, 08:00-18:00 UTC, the default calendar), so wall-clock
and business-hours durations are the same. Period: Mon 2026-03-02 .. Wed 2026-03-04 (UTC).
"""

from __future__ import annotations

import csv
import html
import io
import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from autocrm.automation import sweep
from autocrm.demo import history, seed
from autocrm.engine.versions import engine_for
from autocrm.people import teams
from autocrm.people.models import Team, User
from autocrm.reports import services as reports
from autocrm.tickets.models import Ticket
from tests.factories import web_login
from tests.report_history import at, plant_history
from web.reports import CSV_COLUMNS, duration, parse_query

PAGE = "/reports/teams"
CSV_URL = "/reports/teams.csv"
PERIOD = {"start": "2026-03-02", "end": "2026-03-04"}


@pytest.fixture(autouse=True)
def _fresh_login_limit(fresh_login_limit: None) -> None:
    """Every test logs in; the login rate limit must not carry over between them."""


@dataclass
class World:
    admin: User
    lead: User
    ann: User
    bob: User
    b_lead: User
    eve: User
    mo: User
    customer: User
    alpha: Team
    bravo: Team


@pytest.fixture
def world(db_session: Any, factory: Any) -> World:
    admin = factory.admin()
    lead = factory.agent(name="Lee Lead")
    alpha = factory.team("Alpha", lead=lead)
    b_lead = factory.agent(name="+Dee Lead")  # names a spreadsheet would run as formulas
    bravo = factory.team("@Bravo", lead=b_lead)
    ann = factory.agent(alpha, name="Ann One")
    bob = factory.agent(alpha, name="Bob Two")
    eve = factory.agent(bravo, name="=Eve Formula")
    mo = factory.agent(bravo, name="-Mo Minus")
    customer = factory.customer()
    t = {name: factory.ticket(customer, team=alpha) for name in ("T1", "T2", "T3", "T4", "T6")}
    t["T7"] = factory.ticket(customer, team=alpha)
    t["T8"] = factory.ticket(customer, team=bravo)
    history = {
        #     created       first response    solved           category  assignee
        "T1": (at(2, 9), at(2, 9, 10), at(2, 12), "solved", ann),  # fr 600, res 10800
        "T2": (at(2, 10), at(2, 10, 30), at(2, 16), "closed", ann),  # fr 1800, res 21600
        "T3": (at(3, 8), at(3, 9), None, "open", bob),  # fr 3600
        "T4": (at(4, 15), None, None, "new", None),
        "T6": (at(20, 9, month=2), None, None, "pending", ann),  # before the period, open
        "T7": (at(3, 9), at(3, 9, 2), at(5, 9), "solved", bob),  # fr 120; solved after it
        "T8": (at(2, 11), at(2, 11, 5), at(2, 17), "solved", None),  # fr 300, res 21600
    }
    clocks = [
        ("T1", "first_response", at(2, 9, 10), None),  # in the period, met
        ("T2", "resolution", at(2, 16), at(2, 15)),  # in the period, breached
        ("T3", "first_response", at(3, 9), None),  # in the period, met
        ("T6", "first_response", at(20, 10, month=2), at(20, 10, month=2)),  # before it
        ("T4", "first_response", None, None),  # still running
    ]
    # The business durations planted are what the services store: each span lies inside one
    # business day (above).
    plant_history(
        db_session, t, history, clocks=clocks, clocks_started=at(2, 8),
        ratings={"T1": 5, "T2": 2, "T7": 4},  # T7 was solved after the period
        rater=customer, also={name: {"status": row[3]} for name, row in history.items()},
    )  # fmt: skip
    return World(admin, lead, ann, bob, b_lead, eve, mo, customer, alpha, bravo)


def expected_csv(w: World) -> list[list[str]]:
    """The hand-computed CSV rows (after the header)."""
    period = ["2026-03-02", "2026-03-04"]
    a, b = [str(w.alpha.id), "Alpha"], [str(w.bravo.id), "'@Bravo"]

    def agent(team: list[str], user: User, name: str, open_: int, solved: int, fr: str) -> list:
        return ["agent", *team, str(user.id), name, *period, "", str(solved), "", str(open_), fr]

    blank = [""] * 8
    return [
        # created T1 T2 T3 T4 T7; solved T1 T2; backlog T3 T4 T6;
        # first responses 120 600 1800 3600: p50 at rank 2.5 -> 1200, p90 at 3.7 -> 3060;
        # resolutions 10800 21600: p50 16200, p90 at rank 1.9 -> 20520;
        # SLA: T1 met, T2 breached, T3 met -> 2 of 3; CSAT: T1 5, T2 2 of 2 solved.
        ["team", *a, "", "", *period, "5", "2", "3", "", "1200.0", "3060.0", "16200.0",
         "20520.0", "3", "66.6667", "2", "3.5", "1.0"],
        agent(a, w.lead, "Lee Lead", 0, 0, "") + blank,
        agent(a, w.ann, "Ann One", 1, 2, "1200.0") + blank,  # T6 open; T1 T2; 600 1800
        agent(a, w.bob, "Bob Two", 1, 0, "1860.0") + blank,  # T3 open; 120 3600
        ["team", *b, "", "", *period, "1", "1", "0", "", "300.0", "300.0", "21600.0",
         "21600.0", "0", "", "0", "", "0.0"],
        agent(b, w.b_lead, "'+Dee Lead", 0, 0, "") + blank,
        agent(b, w.eve, "'=Eve Formula", 0, 0, "") + blank,
        agent(b, w.mo, "'-Mo Minus", 0, 0, "") + blank,
    ]  # fmt: skip


def read_csv(response: Any) -> list[list[str]]:
    text = response.get_data(as_text=True)
    assert text.startswith("\ufeff")  # spreadsheets then read it as UTF-8
    return list(csv.reader(io.StringIO(text[1:])))


def page_text(response: Any) -> str:
    return html.unescape(response.get_data(as_text=True))


def chart_data(response: Any) -> dict[str, Any]:
    match = re.search(
        r'<script type="application/json" id="report-data">(.*?)</script>',
        response.get_data(as_text=True),
        re.S,
    )
    assert match, "no chart data on the page"
    return json.loads(match.group(1))


def field_error(response: Any, name: str) -> str:
    match = re.search(
        rf'<small class="field-error" id="r-{name}-error">(.*?)</small>',
        response.get_data(as_text=True),
    )
    assert match, f"no error at the {name} field"
    return html.unescape(match.group(1))


def input_value(response: Any, name: str) -> str:
    pattern = rf'<input type="(\w+)" id="r-{name}" name="{name}" value="([^"]*)"'
    match = re.search(pattern, page_text(response))
    assert match, f"no {name} input"
    return match.group(2)


# -- the CSV --------------------------------------------------------------------------------------


def test_csv_holds_hand_computed_figures_per_team_and_agent(client: FlaskClient, world: World):
    web_login(client, world.admin)
    response = client.get(CSV_URL, query_string=PERIOD)

    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == (
        'attachment; filename="team-overview-2026-03-02-to-2026-03-04.csv"'
    )
    rows = read_csv(response)
    assert rows[0] == list(CSV_COLUMNS)
    assert rows[1:] == expected_csv(world)


def test_csv_of_one_team_for_its_lead(client: FlaskClient, world: World):
    web_login(client, world.lead)
    response = client.get(CSV_URL, query_string={**PERIOD, "team_id": world.alpha.id})

    assert response.status_code == 200
    assert read_csv(response)[1:] == expected_csv(world)[:4]


def test_page_table_and_chart_data_hold_the_same_figures(client: FlaskClient, world: World):
    web_login(client, world.admin)
    response = client.get(PAGE, query_string=PERIOD)

    assert response.status_code == 200
    page = page_text(response)
    assert "business hours" in page
    alpha_row = re.search(rf'<tr data-team-id="{world.alpha.id}">(.*?)</tr>', page, re.S)
    assert alpha_row
    cells = dict(re.findall(r'data-key="(\w+)">(.*?)</td>', alpha_row.group(1)))
    assert cells == {
        "created": "5",
        "solved": "2",
        "backlog_now": "3",
        "first_response_p50": "20 m",
        "first_response_p90": "51 m",
        "resolution_p50": "4 h 30 m",
        "resolution_p90": "5 h 42 m",
        "sla_compliance": "66.7 %",
        "sla_clocks": "3",
        "csat_average": "3.50",
        "csat_ratings": "2",
        "csat_response_rate": "100 %",
    }
    data = chart_data(response)
    assert data["days"] == ["2026-03-02", "2026-03-03", "2026-03-04"]
    alpha, bravo = data["teams"]
    assert alpha["name"] == "Alpha" and bravo["name"] == "@Bravo"
    assert alpha["backlog"] == [1, 3, 4]  # T6 | T6 T3 T7 | T6 T3 T7 T4
    assert bravo["backlog"] == [0, 0, 0]
    assert alpha["first_response"] == [1200.0, 3060.0]
    assert alpha["resolution"] == [16200.0, 20520.0]
    assert (alpha["sla_percent"], alpha["csat_average"]) == (66.6667, 3.5)
    assert alpha["csat_response_percent"] == 100.0
    assert bravo["sla_percent"] is None
    assert {a["name"]: a["open"] for a in data["agents"] if a["team"] == "Alpha"} == {
        "Lee Lead": 0,
        "Ann One": 1,
        "Bob Two": 1,
    }
    body = response.get_data(as_text=True)
    assert '<canvas id="chart-backlog"' in body and '<canvas id="chart-workload"' in body
    assert "vendor/chart.js/chart.umd.min.js" in body and "js/team_overview.js" in body
    assert "<script>" not in body  # no inline scripts (CSP)
    assert f'href="{CSV_URL}?start=2026-03-02&amp;end=2026-03-04"' in body


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "\u2014"),
        (0, "0 s"),
        (59.4, "59 s"),
        (59.5, "1 m"),
        (90, "2 m"),  # halves round up
        (3599, "1 h"),
        (8100, "2 h 15 m"),
        (259200, "72 h"),
    ],
)
def test_durations_read_as_hours_and_minutes(seconds, text):
    assert duration(seconds) == text


# -- the period and the team ----------------------------------------------------------------------


TODAY = date(2026, 3, 10)


def test_the_period_defaults_to_the_last_30_days():
    query = parse_query({}, set(), TODAY)
    assert (query.start, query.end, query.errors) == (TODAY - timedelta(days=29), TODAY, {})


@pytest.mark.parametrize(
    ("args", "field", "message"),
    [
        ({"start": "2026-02-30"}, "start", "Enter the first day as a date"),
        ({"end": "yesterday"}, "end", "Enter the last day as a date"),
        ({"start": "1999-12-31"}, "start", "from 2000-01-01 on"),
        ({"end": "2026-03-11"}, "end", "up to today (2026-03-10, UTC)"),
        ({"start": "2026-03-05", "end": "2026-03-04"}, "end", "must not be before the first"),
        ({"start": "2025-03-09", "end": "2026-03-10"}, "end", "at most 366 days"),
        ({"team_id": "7"}, "team_id", "Choose one of the teams"),
        ({"team_id": "x"}, "team_id", "Choose one of the teams"),
        ({"team_id": "\u00b2"}, "team_id", "Choose one of the teams"),  # isdigit, not int()-able
    ],
)
def test_bad_period_or_team_names_the_field(args, field, message):
    query = parse_query(args, {1, 2}, TODAY)
    assert list(query.errors) == [field]
    assert message in query.errors[field]


def test_a_full_year_is_allowed():
    query = parse_query({"start": "2025-03-10", "end": "2026-03-10"}, set(), TODAY)
    assert query.errors == {} and (query.end - query.start).days + 1 == 366


def test_a_bad_date_is_a_422_with_the_message_at_the_field_and_the_input_kept(
    client: FlaskClient, world: World
):
    web_login(client, world.admin)
    response = client.get(PAGE, query_string={"start": "2026-02-30", "end": "2026-03-04"})

    assert response.status_code == 422
    assert "Enter the first day as a date" in field_error(response, "start")
    assert input_value(response, "start") == "2026-02-30"  # shown as text: a date input blanks it
    assert '<input type="text" id="r-start"' in page_text(response)
    assert input_value(response, "end") == "2026-03-04"
    assert 'id="report-data"' not in page_text(response)


def test_end_before_start_is_a_422_at_the_end_field(client: FlaskClient, world: World):
    web_login(client, world.admin)
    args = {"start": "2026-03-04", "end": "2026-03-02", "team_id": str(world.alpha.id)}
    response = client.get(PAGE, query_string=args)

    assert response.status_code == 422
    assert "must not be before the first day" in field_error(response, "end")
    assert input_value(response, "start") == "2026-03-04"
    assert input_value(response, "end") == "2026-03-02"
    assert f'<option value="{world.alpha.id}" selected>' in page_text(response)


def test_the_csv_with_a_bad_period_shows_the_page_with_the_error(client: FlaskClient, world):
    web_login(client, world.admin)
    response = client.get(CSV_URL, query_string={"start": "2020-01-01", "end": "2026-03-04"})

    assert response.status_code == 422
    assert response.mimetype == "text/html"
    assert "at most 366 days" in field_error(response, "end")


def test_presets_cover_the_last_7_30_and_90_days(client: FlaskClient, world: World):
    web_login(client, world.admin)
    page = page_text(client.get(PAGE))
    today = datetime.now(UTC).date()
    for days in (7, 30, 90):
        start = (today - timedelta(days=days - 1)).isoformat()
        assert f'href="/reports/teams?start={start}&end={today.isoformat()}"' in page
    assert re.search(r'aria-current="true">Last 30 days<', page)  # the default period


# -- who sees what -------------------------------------------------------------------------------


def test_admin_picks_from_every_team(client: FlaskClient, world: World):
    web_login(client, world.admin)
    response = client.get(PAGE, query_string=PERIOD)
    page = page_text(response)

    assert f'<option value="{world.alpha.id}">Alpha</option>' in page
    assert f'<option value="{world.bravo.id}">@Bravo</option>' in page
    assert [t["name"] for t in chart_data(response)["teams"]] == ["Alpha", "@Bravo"]


def test_a_lead_sees_only_their_team(client: FlaskClient, world: World):
    web_login(client, world.lead)
    response = client.get(PAGE, query_string=PERIOD)

    assert response.status_code == 200
    page = page_text(response)
    assert 'href="/reports/teams"' in page  # the Reports link in the staff navigation
    assert "@Bravo" not in page and "Eve Formula" not in page
    assert [t["name"] for t in chart_data(response)["teams"]] == ["Alpha"]


def test_a_lead_asking_for_another_team_gets_the_message_at_the_team_field(client, world):
    web_login(client, world.lead)
    for url in (PAGE, CSV_URL):
        response = client.get(url, query_string={**PERIOD, "team_id": world.bravo.id})
        assert response.status_code == 422
        assert "Choose one of the teams" in field_error(response, "team_id")
        assert "@Bravo" not in page_text(response)


@pytest.mark.parametrize("who", ["ann", "customer"])
def test_agents_who_lead_nothing_and_customers_get_the_forbidden_page(client, world, who):
    user = getattr(world, who)
    web_login(client, user)
    for url in (PAGE, CSV_URL):
        response = client.get(url, query_string=PERIOD)
        assert response.status_code == 403
        assert response.mimetype == "text/html"
        page = page_text(response)
        assert "Reports are for admins and team leads" in page
        assert "Alpha" not in page
    if who == "ann":
        home = page_text(client.get("/agent/"))
        assert 'href="/reports/teams"' not in home  # no Reports link for her


def test_the_reports_link_follows_the_team_lead_at_the_next_page(client, world):
    # Whether the agent leads a team is read with their login, once per request: a lead
    # named or taken away by an admin shows on the agent's very next page.
    web_login(client, world.ann)
    assert 'href="/reports/teams"' not in page_text(client.get("/agent/"))
    teams.do_update_team(world.admin, world.alpha.id, {"lead_id": world.ann.id})
    assert 'href="/reports/teams"' in page_text(client.get("/agent/"))
    teams.do_update_team(world.admin, world.alpha.id, {"lead_id": None})
    assert 'href="/reports/teams"' not in page_text(client.get("/agent/"))


def test_anonymous_visitors_are_sent_to_log_in(client: FlaskClient, world: World):
    response = client.get(CSV_URL, query_string=PERIOD)
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_an_admin_with_no_teams_sees_an_empty_state(client: FlaskClient, factory: Any):
    web_login(client, factory.admin())
    response = client.get(PAGE)

    assert response.status_code == 200
    assert 'id="report-empty"' in response.get_data(as_text=True)
    assert read_csv(client.get(CSV_URL)) == [list(CSV_COLUMNS)]


# -- the seeded demo history ---------------------------------------------------------------------


def test_the_demo_history_fills_the_report_and_leaves_nothing_due(db_session: Any):
    """``seed_demo`` writes weeks of past tickets: every figure of the default report has
    data, and the beat sweep finds nothing to fire in them (no stale deadline or time rule)."""
    seed.seed_demo()
    admin = db_session.scalar(select(User).where(User.email == "admin@example.com"))
    today = datetime.now(UTC).date()

    report = reports.team_report(admin, start=today - timedelta(days=29), end=today)

    assert [t["team_name"] for t in report["teams"]] == ["Support", "Billing"]
    for team in report["teams"]:
        assert team["created"] > 20 and team["solved"] > 20 and team["backlog_now"] > 0
        assert len({day["open"] for day in team["backlog_trend"]}) > 3  # a trend, not a line
        assert team["first_response_seconds_p50"] < team["first_response_seconds_p90"]
        assert team["resolution_seconds_p50"] < team["resolution_seconds_p90"]
        assert team["sla_clocks_stopped"] > 20 and team["csat_ratings"] > 5
        assert 1 <= team["csat_average"] <= 5
        assert any(agent["open_assigned"] for agent in team["agents"])
    assert sweep.do_sweep() == dict.fromkeys(
        ("sla_warnings", "sla_breaches", "time_rules", "assignments"), 0
    )
    assert history.seed_history() == 0  # once only


def test_no_time_rule_of_the_demo_history_falls_due_when_the_demo_starts(db_session: Any):
    """At this moment the auto-close of a seeded ticket solved four days earlier fell due just
    after the seeded past ended, so the first sweep closed a demo ticket (a failed CI run)."""
    seeded_at = datetime(2026, 11, 21, 14, 4, 44, 937245, tzinfo=UTC)
    seed.seed_demo(now=seeded_at)

    for later in (timedelta(seconds=1), timedelta(minutes=1)):
        assert sweep.do_sweep(now=seeded_at + later)["time_rules"] == 0


def test_demo_history_tickets_keep_the_workflow_invariants(db_session: Any):
    seed.seed_demo()
    past = list(db_session.scalars(select(Ticket).where(Ticket.channel == "email")))
    assert len(past) > 100
    for ticket in past:
        assert ticket.category == engine_for(ticket).categories[ticket.status]
        assert ticket.first_responded_at is not None
        assert ticket.created_at < ticket.first_responded_at <= ticket.updated_at
        assert (ticket.solved_at is not None) == (ticket.category in ("solved", "closed"))
        assert ticket.first_response_business_seconds is not None
        assert (ticket.resolution_business_seconds is not None) == (ticket.solved_at is not None)
        assert (ticket.closed_at is not None) == (ticket.category == "closed")
        assert ticket.assignee_id is not None and ticket.team_id is not None
