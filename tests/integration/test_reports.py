"""GET /api/reports/teams: every figure against hand-computed values, and who may see what.

The fixture's tickets are opened through the services; their timestamps, category and assignee
are then set by an UPDATE so every number below can be worked out by hand (see comments).
Period: 2026-03-01 .. 2026-03-03 (UTC), i.e. [03-01 00:00, 03-04 00:00).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import delete, update

from autocrm.models import Feedback, SlaClock, Team, Ticket, User
from tests.factories import ApiClient, assert_error

URL = "/api/reports/teams"
PERIOD = {"start": "2026-03-01", "end": "2026-03-03"}


def at(day: int, hour: int, minute: int = 0, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


@dataclass
class World:
    admin: User
    lead: User
    a1: User
    a2: User
    b_agent: User
    b_lead: User
    team_a: Team
    team_b: Team
    tickets: dict[str, Ticket]


def _set(session: Any, ticket: Ticket, **values: Any) -> None:
    session.execute(update(Ticket).where(Ticket.id == ticket.id).values(**values))


@pytest.fixture
def world(db_session, factory) -> World:
    admin = factory.admin()
    lead = factory.agent(name="Lee Lead")
    team_a = factory.team("Alpha", lead=lead)
    b_lead = factory.agent(name="Dee Lead")
    team_b = factory.team("Bravo", lead=b_lead)
    a1 = factory.agent(team_a, name="Ann One")
    a2 = factory.agent(team_a, name="Bob Two")
    b_agent = factory.agent(team_b, name="Cy Bravo")
    customer = factory.customer()
    t = {name: factory.ticket(customer, team=team_a) for name in ("T1", "T2", "T3", "T4", "T5")}
    t |= {name: factory.ticket(customer, team=team_a) for name in ("T6", "T7")}
    t["T8"] = factory.ticket(customer, team=team_b)
    rows = {
        #     created        first response         solved                 category  assignee
        "T1": (at(1, 9), at(1, 9, 10), at(1, 12), "solved", a1),  # fr 600, res 10800
        "T2": (at(1, 10), at(1, 10, 30), at(2, 10), "closed", a1),  # fr 1800, res 86400
        "T3": (at(2, 8), at(2, 9), None, "open", a2),  # fr 3600
        "T4": (at(3, 15), None, None, "new", None),
        "T5": (at(27, 12, month=2), at(27, 13, month=2), at(2, 12), "solved", a2),  # res 259200
        "T6": (at(20, 8, month=2), None, None, "pending", a1),
        "T7": (at(2, 9), at(2, 9, 2), at(4, 9), "solved", a2),  # fr 120; solved after period
        "T8": (at(1, 11), at(1, 11, 5), at(3, 11), "solved", None),  # fr 300, res 172800
    }
    for name, (created, responded, solved, category, assignee) in rows.items():
        _set(
            db_session,
            t[name],
            created_at=created,
            first_responded_at=responded,
            solved_at=solved,
            category=category,
            assignee_id=assignee.id if assignee else None,
        )
    ids = [ticket.id for ticket in t.values()]
    db_session.execute(delete(SlaClock).where(SlaClock.ticket_id.in_(ids)))
    version = t["T1"].workflow_version_id
    clocks = [
        ("T1", "first_response", at(1, 9, 10), None),  # in period, kept
        ("T2", "resolution", at(2, 10), at(2, 9)),  # in period, breached
        ("T3", "first_response", at(2, 9), None),  # in period, kept
        ("T5", "resolution", at(2, 12), None),  # in period, kept
        ("T6", "first_response", at(20, 9, month=2), at(20, 9, month=2)),  # before the period
        ("T4", "first_response", None, None),  # still running
    ]
    for name, metric, stopped, breached in clocks:
        db_session.add(
            SlaClock(
                ticket_id=t[name].id,
                metric=metric,
                workflow_version_id=version,
                target_seconds=3600,
                started_at=at(1, 0),
                stopped_at=stopped,
                breached_at=breached,
            )
        )
    for name, rating in (("T1", 5), ("T2", 2), ("T7", 4)):  # T7 was solved after the period
        db_session.add(Feedback(ticket_id=t[name].id, author_id=customer.id, rating=rating))
    db_session.flush()
    db_session.expire_all()
    return World(admin, lead, a1, a2, b_agent, b_lead, team_a, team_b, t)


def idle(agent: User) -> dict[str, Any]:
    return {
        "user_id": agent.id,
        "name": agent.name,
        "open_assigned": 0,
        "solved": 0,
        "first_response_seconds_p50": None,
    }


def expected_alpha(w: World) -> dict[str, Any]:
    return {
        "team_id": w.team_a.id,
        "team_name": "Alpha",
        "created": 5,  # T1 T2 T3 T4 T7
        "solved": 3,  # T1 T2 T5 (T7 on 03-04)
        "backlog_now": 3,  # T3 open, T4 new, T6 pending
        "backlog_trend": [
            {"day": "2026-03-01", "open": 3},  # T2 T5 T6
            {"day": "2026-03-02", "open": 3},  # T3 T6 T7
            {"day": "2026-03-03", "open": 4},  # T3 T4 T6 T7
        ],
        # 120 600 1800 3600: p50 at rank 2.5 -> 1200; p90 at rank 3.7 -> 1800 + .7 * 1800
        "first_response_seconds_p50": 1200.0,
        "first_response_seconds_p90": 3060.0,
        # 10800 86400 259200: p50 86400; p90 at rank 2.8 -> 86400 + .8 * 172800
        "resolution_seconds_p50": 86400.0,
        "resolution_seconds_p90": 224640.0,
        "sla_clocks_stopped": 4,
        "sla_compliance_percent": 75.0,
        "csat_ratings": 2,  # T1 5, T2 2
        "csat_average": 3.5,
        "csat_response_rate": 0.6667,  # 2 of 3 solved
        "agents": [
            idle(w.lead),  # a team's lead is one of its members
            # T6 open; solved T1 T2; first responses 600 1800
            {
                "user_id": w.a1.id,
                "name": "Ann One",
                "open_assigned": 1,
                "solved": 2,
                "first_response_seconds_p50": 1200.0,
            },
            # T3 open; solved T5; first responses 120 3600
            {
                "user_id": w.a2.id,
                "name": "Bob Two",
                "open_assigned": 1,
                "solved": 1,
                "first_response_seconds_p50": 1860.0,
            },
        ],
    }


def expected_bravo(w: World) -> dict[str, Any]:
    return {
        "team_id": w.team_b.id,
        "team_name": "Bravo",
        "created": 1,
        "solved": 1,
        "backlog_now": 0,
        "backlog_trend": [
            {"day": "2026-03-01", "open": 1},
            {"day": "2026-03-02", "open": 1},
            {"day": "2026-03-03", "open": 0},  # solved 03-03 11:00
        ],
        "first_response_seconds_p50": 300.0,
        "first_response_seconds_p90": 300.0,
        "resolution_seconds_p50": 172800.0,
        "resolution_seconds_p90": 172800.0,
        "sla_clocks_stopped": 0,
        "sla_compliance_percent": None,
        "csat_ratings": 0,
        "csat_average": None,
        "csat_response_rate": 0.0,
        "agents": [idle(w.b_lead), idle(w.b_agent)],
    }


def test_admin_sees_every_team_with_hand_computed_figures(client, world):
    response = ApiClient(client, world.admin).get(URL, query_string=PERIOD)

    assert response.status_code == 200, response.json
    assert response.json["start"] == "2026-03-01"
    assert response.json["end"] == "2026-03-03"
    assert response.json["teams"] == [expected_alpha(world), expected_bravo(world)]


def test_admin_may_ask_for_one_team(client, world):
    query = {**PERIOD, "team_id": world.team_b.id}
    response = ApiClient(client, world.admin).get(URL, query_string=query)

    assert response.status_code == 200, response.json
    assert response.json["teams"] == [expected_bravo(world)]


def test_a_lead_sees_only_their_team(client, world):
    api = ApiClient(client, world.lead)

    everything = api.get(URL, query_string=PERIOD)
    own = api.get(URL, query_string={**PERIOD, "team_id": world.team_a.id})

    assert everything.status_code == 200, everything.json
    assert everything.json["teams"] == [expected_alpha(world)]
    assert own.json["teams"] == [expected_alpha(world)]


def test_a_lead_asking_for_another_team_gets_404(client, world):
    response = ApiClient(client, world.lead).get(
        URL, query_string={**PERIOD, "team_id": world.team_b.id}
    )
    assert_error(response, 404)


def test_unknown_team_is_404_for_an_admin(client, world):
    response = ApiClient(client, world.admin).get(
        URL, query_string={**PERIOD, "team_id": 2_000_000}
    )
    assert_error(response, 404)


def test_an_agent_who_leads_nothing_is_forbidden(client, world):
    assert_error(ApiClient(client, world.a1).get(URL, query_string=PERIOD), 403)


def test_a_customer_is_forbidden(client, world, factory):
    assert_error(ApiClient(client, factory.customer()).get(URL, query_string=PERIOD), 403)


def test_a_period_with_no_activity_reports_zeros_and_nulls(client, world):
    query = {"start": "2025-01-01", "end": "2025-01-02", "team_id": world.team_b.id}
    (team,) = ApiClient(client, world.admin).get(URL, query_string=query).json["teams"]

    assert team["created"] == team["solved"] == team["sla_clocks_stopped"] == 0
    assert team["backlog_trend"] == [
        {"day": "2025-01-01", "open": 0},
        {"day": "2025-01-02", "open": 0},
    ]
    assert team["first_response_seconds_p50"] is None
    assert team["resolution_seconds_p90"] is None
    assert team["csat_response_rate"] is None


def test_the_period_defaults_to_the_last_30_days(client, world):
    body = ApiClient(client, world.admin).get(URL).json
    assert len(body["teams"][0]["backlog_trend"]) == 30
    assert body["teams"][0]["backlog_trend"][-1]["day"] == body["end"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"start": "2026-03-05", "end": "2026-03-01"}, "end"),
        ({"start": "2025-01-01", "end": "2026-01-02"}, "end"),  # 367 days
        ({"start": "2026-02-30", "end": "2026-03-01"}, "start"),
        ({"start": "2026-03-01", "end": "2026-03-02", "team_id": "x"}, "team_id"),
        ({"start": "2026-03-01", "end": "2026-03-02", "team_id": 0}, "team_id"),
        ({"start": "2026-03-01", "end": "2026-03-02", "colour": "red"}, "colour"),
    ],
)
def test_bad_arguments_are_422_naming_the_field(client, world, query, field):
    body = assert_error(ApiClient(client, world.admin).get(URL, query_string=query), 422)
    assert field in body["errors"]["query"]


def test_a_full_year_is_allowed(client, world):
    response = ApiClient(client, world.admin).get(
        URL, query_string={"start": "2024-01-01", "end": "2024-12-31", "team_id": world.team_b.id}
    )
    assert response.status_code == 200, response.json
    assert len(response.json["teams"][0]["backlog_trend"]) == 366
