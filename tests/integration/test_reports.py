"""GET /api/reports/teams: every figure against hand-computed values, and who may see what.

The ``world`` fixture's tickets are opened through the services; their timestamps, category,
assignee and business durations are then set by an UPDATE so every number below can be worked
out by hand (see comments). Period: 2026-03-01 .. 2026-03-03 (UTC), i.e. [03-01 00:00,
03-04 00:00). The tests at the end let the services measure business hours themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import update

from autocrm.people import teams
from autocrm.people.models import Team, User
from autocrm.tickets import conversation
from autocrm.tickets import services as tickets
from autocrm.tickets.models import Ticket
from tests.factories import ApiClient, assert_error
from tests.integration.test_automation import use_workflow
from tests.report_history import at, plant_history, wall_clock_seconds

URL = "/api/reports/teams"
PERIOD = {"start": "2026-03-01", "end": "2026-03-03"}


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
    t["T9"] = factory.ticket(customer, team=team_b)
    history = {
        #     created        first response         solved                 category  assignee
        "T1": (at(1, 9), at(1, 9, 10), at(1, 12), "solved", a1),  # fr 600, res 10800
        "T2": (at(1, 10), at(1, 10, 30), at(2, 10), "closed", a1),  # fr 1800, res 86400
        "T3": (at(2, 8), at(2, 9), None, "open", a2),  # fr 3600
        "T4": (at(3, 15), None, None, "new", None),
        "T5": (at(27, 12, month=2), at(27, 13, month=2), at(2, 12), "solved", a2),  # res 259200
        "T6": (at(20, 8, month=2), None, None, "pending", a1),
        "T7": (at(2, 9), at(2, 9, 2), at(4, 9), "solved", a2),  # fr 120; solved after period
        "T8": (at(1, 11), at(1, 11, 5), at(3, 11), "solved", None),  # fr 300, res 172800
        "T9": (at(28, 9, month=2), None, None, "closed", None),  # closed unsolved 03-02 12:00
    }
    clocks = [
        ("T1", "first_response", at(1, 9, 10), None),  # in period, kept
        ("T2", "resolution", at(2, 10), at(2, 9)),  # in period, breached
        ("T3", "first_response", at(2, 9), None),  # in period, kept
        ("T5", "resolution", at(2, 12), None),  # in period, kept
        ("T6", "first_response", at(20, 9, month=2), at(20, 9, month=2)),  # before the period
        ("T4", "first_response", None, None),  # still running
    ]
    # Business durations are planted as an always-open calendar measures them (the wall-clock
    # spans noted above); the tests at the end have the services measure business hours.
    plant_history(
        db_session, t, history, clocks=clocks, clocks_started=at(1, 0),
        ratings={"T1": 5, "T2": 2, "T7": 4},  # T7 was solved after the period
        rater=customer, also={"T9": {"closed_at": at(2, 12)}},
    )  # fmt: skip
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
            {"day": "2026-03-01", "open": 2},  # T8 T9
            {"day": "2026-03-02", "open": 1},  # T9 closed (never solved) 03-02 12:00
            {"day": "2026-03-03", "open": 0},  # T8 solved 03-03 11:00
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


# -- business hours, measured by the services ---------------------------------------------------
# 2026-03-06 is a Friday. The calendar: 09:00-17:00 UTC, Monday to Friday.


@pytest.fixture
def nine_to_five(db_session):
    """New tickets run on a copy of the default workflow open 09:00-17:00 UTC, Mon-Fri."""

    def edit(definition):
        weekdays = ("mon", "tue", "wed", "thu", "fri")
        definition["sla"]["calendar"] = {
            "timezone": "UTC",
            "hours": {day: [["09:00", "17:00"]] for day in weekdays},
        }

    return use_workflow(db_session, edit)


@pytest.fixture
def clock(monkeypatch):
    """Sets the moment the ticket and conversation services take for now."""

    def set_now(moment: datetime) -> None:
        for module in (tickets, conversation):
            monkeypatch.setattr(module, "utcnow", lambda: moment)

    return set_now


@dataclass
class Desk:
    admin: User
    agent: User
    customer: User
    team: Team


@pytest.fixture
def desk(factory, nine_to_five) -> Desk:
    lead = factory.agent()
    team = factory.team("Nine to five", lead=lead)
    return Desk(factory.admin(), factory.agent(team, name="Nia Agent"), factory.customer(), team)


def opened(db_session, factory, desk: Desk, created: datetime) -> int:
    ticket = factory.ticket(desk.customer, team=desk.team, assignee_id=desk.agent.id)
    _set(db_session, ticket, created_at=created)
    db_session.commit()
    db_session.expire_all()
    return ticket.id


def durations(db_session, ticket_id: int) -> tuple[float | None, float | None]:
    db_session.expire_all()
    ticket = db_session.get(Ticket, ticket_id)
    return ticket.first_response_business_seconds, ticket.resolution_business_seconds


def test_durations_are_stored_in_business_hours_and_follow_a_reopen(
    db_session, factory, desk, clock
):
    ticket_id = opened(db_session, factory, desk, at(6, 16))  # Friday 16:00

    clock(at(7, 11))  # Saturday: an internal note and the customer's message are no response
    conversation.do_add_message(desk.admin, ticket_id, "Looking.", internal=True)
    conversation.do_add_message(desk.customer, ticket_id, "Any news?")
    assert durations(db_session, ticket_id) == (None, None)

    clock(at(9, 10))  # Monday 10:00: Friday 16-17 and Monday 9-10
    conversation.do_add_message(desk.agent, ticket_id, "On it.")
    clock(at(9, 12))  # a later reply is not the first response
    conversation.do_add_message(desk.agent, ticket_id, "Still on it.")
    assert durations(db_session, ticket_id) == (7200.0, None)

    clock(at(9, 15))  # solved Monday 15:00: Friday 1 h + Monday 6 h
    tickets.do_transition(desk.agent, ticket_id, "solve")
    assert durations(db_session, ticket_id) == (7200.0, 25200.0)

    clock(at(10, 10))  # reopened Tuesday 10:00: not resolved any more
    tickets.do_transition(desk.customer, ticket_id, "reopen")
    assert durations(db_session, ticket_id) == (7200.0, None)
    assert db_session.get(Ticket, ticket_id).solved_at is None

    clock(at(11, 12))  # solved again Wednesday 12:00: Fri 1 h + Mon 8 h + Tue 8 h + Wed 3 h
    tickets.do_transition(desk.agent, ticket_id, "solve")
    assert durations(db_session, ticket_id) == (7200.0, 72000.0)


def test_a_team_with_business_hours_of_its_own_measures_in_those(db_session, factory, desk, clock):
    mornings = {"timezone": "UTC", "hours": {"mon": [["09:00", "13:00"]]}}
    teams.do_update_team(desk.admin, desk.team.id, {"calendar": mornings})
    ticket_id = opened(db_session, factory, desk, at(6, 16))  # Friday 16:00

    clock(at(9, 10))  # Monday 10:00: only Monday 09-10 (the workflow's hours would add Friday)
    conversation.do_add_message(desk.agent, ticket_id, "On it.")
    clock(at(10, 12))  # Tuesday: the team is closed on Tuesdays, so Monday 09-13
    tickets.do_transition(desk.agent, ticket_id, "solve")

    assert durations(db_session, ticket_id) == (3600.0, 14400.0)


def test_recompute_durations_measures_older_tickets_in_business_hours(
    app, db_session, factory, desk, clock
):
    """Tickets answered or solved before migration 0007 hold wall-clock seconds (its backfill);
    ``flask recompute-durations`` measures them in their calendar like new ones."""
    answered = opened(db_session, factory, desk, at(6, 16))  # Friday 16:00
    clock(at(9, 10))  # Monday 10:00: 7200 business seconds
    conversation.do_add_message(desk.agent, answered, "On it.")
    clock(at(9, 15))  # Monday 15:00: 25200
    tickets.do_transition(desk.agent, answered, "solve")
    untouched = opened(db_session, factory, desk, at(9, 9))  # no response yet: stays empty
    for ticket_id in (answered, untouched):
        ticket = db_session.get(Ticket, ticket_id)
        _set(
            db_session,
            ticket,
            first_response_business_seconds=wall_clock_seconds(
                ticket.created_at, ticket.first_responded_at
            ),
            resolution_business_seconds=wall_clock_seconds(ticket.created_at, ticket.solved_at),
        )
    db_session.commit()
    assert durations(db_session, answered) == (66 * 3600.0, 71 * 3600.0)  # the wall clock

    result = app.test_cli_runner().invoke(args=["recompute-durations", "--batch-size", "1"])

    assert result.exit_code == 0, result.output
    assert "Recomputed the durations of answered or solved tickets: 1." in result.output
    assert durations(db_session, answered) == (7200.0, 25200.0)
    assert durations(db_session, untouched) == (None, None)


def test_the_report_gives_business_hours_percentiles(client, db_session, factory, desk, clock):
    friday = opened(db_session, factory, desk, at(6, 16))  # Friday 16:00
    weekend = opened(db_session, factory, desk, at(7, 12))  # Saturday 12:00
    monday = opened(db_session, factory, desk, at(9, 9, 30))  # Monday 09:30
    steps = [
        (at(8, 18), weekend, "reply"),  # Sunday: 0 s (wall clock: 30 h)
        (at(9, 9, 30), weekend, "solve"),  # 1800 s
        (at(9, 9, 45), monday, "reply"),  # 900 s
        (at(9, 10), friday, "reply"),  # 7200 s (wall clock: 66 h)
        (at(9, 11, 30), monday, "solve"),  # 7200 s
        (at(9, 15), friday, "solve"),
        (at(10, 10), friday, "reopen"),
        (at(11, 12), friday, "solve"),  # 72000 s, from creation to the last solve
    ]
    for moment, ticket_id, step in steps:
        clock(moment)
        if step == "reply":
            conversation.do_add_message(desk.agent, ticket_id, "Here to help.")
        else:
            tickets.do_transition(desk.agent, ticket_id, step)

    query = {"start": "2026-03-06", "end": "2026-03-11", "team_id": desk.team.id}
    response = ApiClient(client, desk.admin).get(URL, query_string=query)

    assert response.status_code == 200, response.json
    (team,) = response.json["teams"]
    # 0 900 7200: p50 900; p90 at rank 2.8 -> 900 + .8 * 6300
    assert team["first_response_seconds_p50"] == 900.0
    assert team["first_response_seconds_p90"] == 5940.0
    # 1800 7200 72000: p50 7200; p90 at rank 2.8 -> 7200 + .8 * 64800
    assert team["resolution_seconds_p50"] == 7200.0
    assert team["resolution_seconds_p90"] == 59040.0
    assert team["solved"] == 3  # the reopened ticket once, on the day of its last solve
    # Friday's ticket counts as open until its last solve (Wednesday), reopen or not.
    assert [day["open"] for day in team["backlog_trend"]] == [1, 2, 2, 1, 1, 0]
    [agent] = [a for a in team["agents"] if a["user_id"] == desk.agent.id]
    assert agent["first_response_seconds_p50"] == 900.0
    assert agent["solved"] == 3
