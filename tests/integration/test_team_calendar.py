"""A team's own business hours: validated at the field (API), chosen by
``sla.calendar_for_ticket`` over the workflow SLA policy's calendar, and running SLA clocks
rescheduled without losing the time already used when a ticket moves team or the team's hours
change."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from autocrm.engine.models import Workflow, WorkflowVersion
from autocrm.people import teams
from autocrm.people.models import Team
from autocrm.sla import clocks as sla
from autocrm.sla.models import SlaClock
from autocrm.tickets import services as tickets
from autocrm.tickets.models import Priority
from tests.factories import ApiClient, Factory, assert_error, drain
from workflows import default_definition, dump_definition, load_definition
from workflows.calendar import BusinessCalendar, add_business_time

NINE_TO_FIVE = {
    "timezone": "UTC",
    "hours": {day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")},
    "holidays": ["2026-12-25"],
}
MONDAY_8AM = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # a Monday
RESOLUTION_MINUTES = 600


@pytest.fixture
def always_open_version(db_session: Any) -> WorkflowVersion:
    """A default workflow whose SLA policy is always open (resolution in 10 hours for urgent):
    any business-hours effect in these tests comes from a team's calendar."""
    definition = copy.deepcopy(default_definition())
    definition["sla"]["calendar"] = None
    definition["sla"]["targets"]["urgent"] = {
        "first_response": 60,
        "resolution": RESOLUTION_MINUTES,
    }
    db_session.execute(update(Workflow).values(is_default=False))
    workflow = Workflow(name="always-open", is_default=True)
    version = WorkflowVersion(
        workflow=workflow, number=1, definition=dump_definition(load_definition(definition))
    )
    db_session.add(version)
    db_session.commit()
    return version


def clock(session: Any, ticket_id: int, metric: str = "resolution") -> SlaClock:
    return session.scalar(
        select(SlaClock).where(SlaClock.ticket_id == ticket_id, SlaClock.metric == metric)
    )


def due_in(calendar: dict[str, Any] | None, running: SlaClock) -> datetime:
    """Where the clock's deadline must be if it counts in ``calendar`` from its segment start."""
    remaining = running.target_seconds - running.consumed_seconds
    return add_business_time(
        running.segment_started_at, remaining, BusinessCalendar.from_definition(calendar)
    )


def manual_team(factory: Factory, name: str, calendar: dict[str, Any] | None = None) -> Team:
    team = factory.team(name)
    team.assignment_policy = "manual"
    team.calendar = calendar
    factory.session.commit()
    return team


# -- which calendar ------------------------------------------------------------------------------


def test_calendar_for_ticket_prefers_the_teams_hours(factory, always_open_version):
    with_hours = manual_team(factory, "With hours", NINE_TO_FIVE)
    without = manual_team(factory, "Without")
    customer = factory.customer()
    version_calendar = sla.calendar_of(always_open_version.id)

    in_team = factory.ticket(customer, team=with_hours)
    assert sla.calendar_for_ticket(in_team) == BusinessCalendar.from_definition(NINE_TO_FIVE)
    assert sla.calendar_for_ticket(factory.ticket(customer, team=without)) == version_calendar
    assert sla.calendar_for_ticket(factory.ticket(customer)) == version_calendar


def test_clocks_of_a_team_with_hours_count_in_them(factory, db_session, always_open_version):
    team = manual_team(factory, "Office hours", NINE_TO_FIVE)
    ticket = factory.ticket(factory.customer(), team=team, priority=Priority.URGENT)
    drain(db_session)
    running = clock(db_session, ticket.id)
    assert running.due_at == due_in(NINE_TO_FIVE, running)
    # Ten business hours never fit in one 9-to-5 day: not the always-open policy's deadline.
    assert running.due_at != running.segment_started_at + timedelta(minutes=RESOLUTION_MINUTES)


# -- a ticket moving team ------------------------------------------------------------------------


def test_moving_team_keeps_the_time_used_and_reschedules(factory, db_session, always_open_version):
    always_open = manual_team(factory, "Always open")
    office = manual_team(factory, "Office", NINE_TO_FIVE)
    ticket = factory.ticket(factory.customer(), team=always_open, priority=Priority.URGENT)
    sla.start(ticket, "resolution", MONDAY_8AM)
    running = clock(db_session, ticket.id)
    assert running.due_at == MONDAY_8AM + timedelta(hours=10)

    # Two hours later it moves to the office team: 2h used, 8h left in office hours
    # (Mon 10:00-17:00 is 7h, then 1h on Tuesday).
    ticket.team_id = office.id
    sla.on_team_change(ticket, always_open.id, MONDAY_8AM + timedelta(hours=2))
    assert running.consumed_seconds == 2 * 3600
    assert running.due_at == datetime(2026, 3, 3, 10, 0, tzinfo=UTC)
    assert running.warn_at is not None and running.warn_at < running.due_at

    # Back again on Tuesday 09:30: 7.5 office hours used meanwhile, half an hour left.
    ticket.team_id = always_open.id
    sla.on_team_change(ticket, office.id, datetime(2026, 3, 3, 9, 30, tzinfo=UTC))
    assert running.consumed_seconds == 9.5 * 3600
    assert running.due_at == datetime(2026, 3, 3, 10, 0, tzinfo=UTC)


def test_a_paused_or_stopped_clock_is_left_alone_by_a_move(
    factory, db_session, always_open_version
):
    always_open = manual_team(factory, "Open")
    office = manual_team(factory, "Office", NINE_TO_FIVE)
    ticket = factory.ticket(factory.customer(), team=always_open, priority=Priority.URGENT)
    sla.start(ticket, "resolution", MONDAY_8AM)
    sla.stop(ticket, "resolution", MONDAY_8AM + timedelta(hours=1))
    stopped = clock(db_session, ticket.id)
    before = (stopped.consumed_seconds, stopped.due_at, stopped.stopped_at)
    ticket.team_id = office.id
    sla.on_team_change(ticket, always_open.id, MONDAY_8AM + timedelta(hours=2))
    assert (stopped.consumed_seconds, stopped.due_at, stopped.stopped_at) == before


def test_the_worker_reschedules_when_a_ticket_moves(factory, db_session, always_open_version):
    always_open = manual_team(factory, "Open")
    office = manual_team(factory, "Office", NINE_TO_FIVE)
    admin = factory.admin()
    ticket = factory.ticket(factory.customer(), team=always_open, priority=Priority.URGENT)
    drain(db_session)
    started = clock(db_session, ticket.id).segment_started_at

    tickets.do_update_ticket(admin, ticket.id, {"team_id": office.id})
    drain(db_session)
    running = clock(db_session, ticket.id)
    assert running.segment_started_at > started
    assert running.consumed_seconds > 0  # the always-open time before the move
    assert running.due_at == due_in(NINE_TO_FIVE, running)


# -- a team's hours changing --------------------------------------------------------------------


def test_new_team_hours_reschedule_running_clocks_at_once(factory, db_session, always_open_version):
    team = manual_team(factory, "Changing")
    ticket = factory.ticket(factory.customer(), team=team, priority=Priority.URGENT)
    sla.stop(ticket, "first_response", ticket.created_at)  # answered: only resolution runs
    sla.start(ticket, "resolution", MONDAY_8AM)
    db_session.commit()

    team.calendar = NINE_TO_FIVE
    touched = sla.on_team_calendar_change(team, None, MONDAY_8AM + timedelta(hours=2))
    running = clock(db_session, ticket.id)
    assert touched == 1
    assert running.consumed_seconds == 2 * 3600
    assert running.due_at == datetime(2026, 3, 3, 10, 0, tzinfo=UTC)


def test_saving_team_hours_reschedules_only_that_teams_running_clocks(
    factory, db_session, always_open_version
):
    team, other = manual_team(factory, "Team"), manual_team(factory, "Other")
    admin, agent, customer = factory.admin(), factory.agent(team), factory.customer()
    running_ticket = factory.ticket(customer, team=team, priority=Priority.URGENT)
    paused_ticket = factory.ticket(customer, team=team, priority=Priority.URGENT)
    others_ticket = factory.ticket(customer, team=other, priority=Priority.URGENT)
    tickets.do_transition(agent, paused_ticket.id, "start")
    tickets.do_transition(agent, paused_ticket.id, "wait_on_customer")
    drain(db_session)
    others_due = clock(db_session, others_ticket.id).due_at
    assert clock(db_session, paused_ticket.id).due_at is None

    teams.do_update_team(admin, team.id, {"calendar": NINE_TO_FIVE})  # commits the reschedule
    db_session.expire_all()
    running = clock(db_session, running_ticket.id)
    assert running.due_at == due_in(NINE_TO_FIVE, running)
    assert clock(db_session, paused_ticket.id).due_at is None  # resumes in the new hours
    assert clock(db_session, others_ticket.id).due_at == others_due

    tickets.do_transition(agent, paused_ticket.id, "resume")
    drain(db_session)
    resumed = clock(db_session, paused_ticket.id)
    assert resumed.due_at == due_in(NINE_TO_FIVE, resumed)


# -- the teams API ------------------------------------------------------------------------------


def test_api_sets_shows_and_clears_a_teams_calendar(client, factory):
    api = ApiClient(client, factory.admin())
    created = api.post("/api/teams", json={"name": "Berlin", "calendar": NINE_TO_FIVE})
    assert created.status_code == 201, created.json
    assert created.json["calendar"] == NINE_TO_FIVE
    team_id = created.json["id"]
    assert api.get(f"/api/teams/{team_id}").json["calendar"] == NINE_TO_FIVE

    cleared = api.patch(f"/api/teams/{team_id}", json={"calendar": None})
    assert cleared.status_code == 200 and cleared.json["calendar"] is None
    assert api.get("/api/teams").json["items"][-1]["calendar"] is None


@pytest.mark.parametrize(
    ("calendar", "field"),
    [
        ({"timezone": "Mars/Olympus", "hours": {"mon": [["09:00", "17:00"]]}}, "calendar.timezone"),
        ({"timezone": "UTC", "hours": {"mon": [["17:00", "09:00"]]}}, "calendar.hours.mon.0"),
        ({"timezone": "UTC", "hours": {"mon": [["9am", "17:00"]]}}, "calendar.hours.mon.0"),
        ({"timezone": "UTC", "hours": {"funday": [["09:00", "17:00"]]}}, "calendar.hours"),
        ({"timezone": "UTC", "hours": {}}, "calendar.hours"),
        (
            {"timezone": "UTC", "hours": {"mon": [["09:00", "17:00"]]}, "holidays": ["xmas"]},
            "calendar.holidays.0",
        ),
        ({"timezone": "UTC", "hours": {"mon": [["09:00", "17:00"]]}, "colour": 1}, "calendar"),
        ({"hours": {"mon": [["09:00", "17:00"]]}}, "calendar.timezone"),
    ],
)
def test_api_bad_calendars_are_422_at_the_field(client, factory, db_session, calendar, field):
    api = ApiClient(client, factory.admin())
    team = factory.team("Unchanged")
    body = assert_error(api.patch(f"/api/teams/{team.id}", json={"calendar": calendar}), 422)
    assert list(body["errors"]) == [field], body
    assert body["errors"][field][0]
    body = assert_error(api.post("/api/teams", json={"name": "New", "calendar": calendar}), 422)
    assert list(body["errors"]) == [field]
    db_session.expire_all()
    assert db_session.get(Team, team.id).calendar is None


def test_api_a_calendar_must_be_an_object(client, factory):
    api = ApiClient(client, factory.admin())
    body = assert_error(api.post("/api/teams", json={"name": "X", "calendar": "9 to 5"}), 422)
    assert "calendar" in body["errors"]["json"]
