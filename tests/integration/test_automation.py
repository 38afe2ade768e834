"""Automation run in-process: what workers do after each event and what the sweep does as
time passes. (Real worker processes are exercised in test_automation_workers.py.)"""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from sqlalchemy import select, update

from autocrm.automation import sweep
from autocrm.columns import utcnow
from autocrm.engine.models import Workflow, WorkflowVersion
from autocrm.events.models import OutboxEvent
from autocrm.notifications.models import EmailMessage, Notification
from autocrm.people.models import AssignmentPolicy
from autocrm.sla.models import SlaClock
from autocrm.tickets import conversation
from autocrm.tickets import services as tickets
from autocrm.tickets.models import Priority, Ticket, TicketEvent
from tests.factories import drain
from workflows import default_definition, dump_definition, load_definition


def trail(session, ticket_id: int, kind: str | None = None) -> list[TicketEvent]:
    stmt = select(TicketEvent).where(TicketEvent.ticket_id == ticket_id)
    if kind:
        stmt = stmt.where(TicketEvent.kind == kind)
    return list(session.scalars(stmt.order_by(TicketEvent.id)))


def use_workflow(session, edit) -> WorkflowVersion:
    """Make a modified copy of the default workflow the default (rolled back with the test)."""
    definition = copy.deepcopy(default_definition())
    edit(definition)
    session.execute(update(Workflow).values(is_default=False))
    workflow = Workflow(name=f"test-{id(definition)}", is_default=True)
    version = WorkflowVersion(
        workflow=workflow, number=1, definition=dump_definition(load_definition(definition))
    )
    session.add(version)
    session.commit()
    return version


def always_open_sla(**targets: Any):
    def edit(definition):
        definition["sla"]["calendar"] = None
        definition["sla"]["targets"]["urgent"] = targets

    return edit


@pytest.fixture
def team_setup(factory):
    lead = factory.agent()
    team = factory.team(lead=lead)
    agents = [lead, factory.agent(team), factory.agent(team)]
    return team, agents


# -- event rules --------------------------------------------------------------------------------


def test_customer_reply_on_pending_ticket_reopens_it_and_the_trail_says_why(factory, db_session):
    customer = factory.customer()
    agent = factory.agent()
    ticket = factory.ticket(customer)
    tickets.do_transition(agent, ticket.id, "start")
    tickets.do_transition(agent, ticket.id, "wait_on_customer")
    drain(db_session)
    conversation.do_add_message(customer, ticket.id, "Here is the screenshot.")
    drain(db_session)

    assert db_session.get(Ticket, ticket.id).status == "open"
    [reopened] = [
        e
        for e in trail(db_session, ticket.id, "ticket.transitioned")
        if e.data.get("transition") == "resume"
    ]
    assert reopened.actor_id is None
    cause = reopened.data["cause"]
    assert cause["rule"] == "reopen_on_customer_reply"
    assert cause["workflow_version"] == ticket.workflow_version_id
    assert {c["field"]: c["actual"] for c in cause["because"]} == {
        "event.author_role": "customer",
        "ticket.status": "pending",
    }


def test_first_public_agent_reply_starts_a_new_ticket_but_a_note_does_not(factory, db_session):
    customer, agent = factory.customer(), factory.agent()
    ticket = factory.ticket(customer)
    conversation.do_add_message(agent, ticket.id, "Looking into it", internal=True)
    drain(db_session)
    assert db_session.get(Ticket, ticket.id).status == "new"
    conversation.do_add_message(agent, ticket.id, "Hello! On it.")
    drain(db_session)
    assert db_session.get(Ticket, ticket.id).status == "open"
    assert trail(db_session, ticket.id, "ticket.transitioned")[-1].data["cause"]["rule"] == (
        "start_on_first_agent_reply"
    )


def test_solving_asks_the_requester_for_feedback_once(factory, db_session):
    customer, agent = factory.customer(), factory.agent()
    ticket = factory.ticket(customer)
    tickets.do_transition(agent, ticket.id, "solve")
    drain(db_session)
    drain(db_session)
    [request] = db_session.scalars(
        select(Notification).where(
            Notification.user_id == customer.id, Notification.kind == "feedback_request"
        )
    ).all()
    assert request.ticket_id == ticket.id
    [email] = db_session.scalars(
        select(EmailMessage).where(
            EmailMessage.to_address == customer.email, EmailMessage.subject.like("How did we do?%")
        )
    ).all()
    assert "/feedback/" in email.body


def test_rules_cannot_trigger_each_other_forever(factory, db_session):
    def ping_pong(definition):
        definition["rules"] = [
            {
                "name": "ping",
                "event": "ticket.updated",
                "if": [{"field": "ticket.priority", "op": "eq", "value": "low"}],
                "then": [{"action": "set_priority", "priority": "high"}],
            },
            {
                "name": "pong",
                "event": "ticket.updated",
                "if": [{"field": "ticket.priority", "op": "eq", "value": "high"}],
                "then": [{"action": "set_priority", "priority": "low"}],
            },
        ]

    use_workflow(db_session, ping_pong)
    admin = factory.admin()
    ticket = factory.ticket(factory.customer())
    tickets.do_update_ticket(admin, ticket.id, {"priority": Priority.LOW})
    drain(db_session, rounds=20)
    automated = [e for e in trail(db_session, ticket.id, "ticket.updated") if e.actor_id is None]
    assert 0 < len(automated) <= 5


# -- SLA clocks ---------------------------------------------------------------------------------


def clocks(session, ticket_id: int) -> dict[str, SlaClock]:
    rows = session.scalars(select(SlaClock).where(SlaClock.ticket_id == ticket_id))
    return {c.metric: c for c in rows}


def test_sla_clocks_start_pause_resume_and_stop(factory, db_session):
    use_workflow(db_session, always_open_sla(first_response=60, next_reply=30, resolution=240))
    customer, agent = factory.customer(), factory.agent()
    ticket = factory.ticket(customer, priority=Priority.URGENT)
    drain(db_session)
    started = clocks(db_session, ticket.id)
    assert set(started) == {"first_response", "resolution"}
    resolution = started["resolution"]
    assert resolution.due_at - resolution.started_at == timedelta(minutes=240)
    assert resolution.warn_at - resolution.started_at == timedelta(minutes=180)

    conversation.do_add_message(agent, ticket.id, "We are on it.")  # also starts the ticket
    drain(db_session)
    assert clocks(db_session, ticket.id)["first_response"].stopped_at is not None

    tickets.do_transition(agent, ticket.id, "wait_on_customer")
    drain(db_session)
    paused = clocks(db_session, ticket.id)["resolution"]
    assert paused.due_at is None and paused.stopped_at is None

    conversation.do_add_message(customer, ticket.id, "Done, see attached.")  # reopens
    drain(db_session)
    resumed = clocks(db_session, ticket.id)
    assert resumed["resolution"].due_at is not None
    assert resumed["next_reply"].due_at is not None  # the customer wrote again

    tickets.do_transition(agent, ticket.id, "solve")
    drain(db_session)
    assert all(c.stopped_at is not None for c in clocks(db_session, ticket.id).values())


def test_a_transition_pauses_and_resumes_clocks_at_its_own_time_without_a_worker(
    factory, db_session
):
    use_workflow(db_session, always_open_sla(first_response=60, resolution=240))
    agent = factory.agent()
    ticket = factory.ticket(factory.customer(), priority=Priority.URGENT)
    drain(db_session)  # the clocks start
    tickets.do_transition(agent, ticket.id, "start")
    started = clocks(db_session, ticket.id)["resolution"].segment_started_at

    paused_at = tickets.do_transition(agent, ticket.id, "wait_on_customer").status_changed_at
    paused = clocks(db_session, ticket.id)["resolution"]
    assert (paused.due_at, paused.warn_at, paused.stopped_at) == (None, None, None)
    assert paused.consumed_seconds == pytest.approx((paused_at - started).total_seconds())

    resumed_at = tickets.do_transition(agent, ticket.id, "resume").status_changed_at
    resumed = clocks(db_session, ticket.id)["resolution"]
    left = timedelta(minutes=240) - (paused_at - started)
    assert abs(resumed.due_at - (resumed_at + left)) < timedelta(milliseconds=1)
    unhandled = select(OutboxEvent).where(
        OutboxEvent.ticket_id == ticket.id,
        OutboxEvent.kind == "ticket.transitioned",
        OutboxEvent.processed_at.is_(None),
    )
    assert len(db_session.scalars(unhandled).all()) == 3, "no worker has seen the transitions"


def test_a_worker_thirty_minutes_behind_leaves_the_first_response_deadline_at_creation_plus_target(
    factory, db_session
):
    """Issue 10: with the worker 30 minutes behind, a first-response deadline moved from 18:49
    to 19:19. The clock is the creation's business now, not the worker's."""
    use_workflow(db_session, always_open_sla(first_response=60, resolution=240))
    ticket = factory.ticket(factory.customer(), priority=Priority.URGENT)
    opened = db_session.get(Ticket, ticket.id).created_at
    with time_machine.travel(opened + timedelta(minutes=30), tick=True):
        assert drain(db_session) >= 1  # ticket.created and what it sets off, half an hour late
    handled_at = db_session.scalar(
        select(OutboxEvent.processed_at).where(
            OutboxEvent.ticket_id == ticket.id, OutboxEvent.kind == "ticket.created"
        )
    )
    assert handled_at >= opened + timedelta(minutes=30)
    first = clocks(db_session, ticket.id)["first_response"]
    assert first.started_at == opened
    assert first.due_at == opened + timedelta(minutes=60)
    assert first.warn_at == opened + timedelta(minutes=45)


def test_priority_change_retargets_running_clocks(factory, db_session):
    use_workflow(db_session, always_open_sla(first_response=10, resolution=60))
    admin = factory.admin()
    ticket = factory.ticket(factory.customer(), priority=Priority.HIGH)
    drain(db_session)
    high_due = clocks(db_session, ticket.id)["first_response"].due_at
    tickets.do_update_ticket(admin, ticket.id, {"priority": Priority.URGENT})
    drain(db_session)
    assert clocks(db_session, ticket.id)["first_response"].due_at < high_due


def test_breach_fires_once_and_escalates(factory, db_session, team_setup):
    team, (lead, *_) = team_setup
    team.assignment_policy = AssignmentPolicy.MANUAL
    db_session.commit()
    use_workflow(db_session, always_open_sla(first_response=1, resolution=60))
    ticket = factory.ticket(factory.customer(), team=team, priority=Priority.HIGH)
    tickets.do_update_ticket(factory.admin(), ticket.id, {"priority": Priority.URGENT})
    drain(db_session)
    due = clocks(db_session, ticket.id)["first_response"].due_at

    early = sweep.do_sweep(due - timedelta(seconds=1))  # past the 75% warning point
    assert (early["sla_warnings"], early["sla_breaches"]) == (1, 0)
    swept = sweep.do_sweep(due + timedelta(seconds=1))
    assert (swept["sla_warnings"], swept["sla_breaches"]) == (0, 1)
    assert sweep.do_sweep(due + timedelta(minutes=5))["sla_breaches"] == 0
    drain(db_session)

    [breach] = trail(db_session, ticket.id, "sla.breached")
    assert breach.data["cause"]["rule"] == "sla.first_response.breach"
    assert breach.data["metric"] == "first_response"
    fresh = db_session.get(Ticket, ticket.id)
    assert fresh.assignee_id == lead.id  # on_breach: assign_team_lead
    assert fresh.priority == Priority.URGENT  # raise_priority stops at urgent
    notes = db_session.scalars(
        select(Notification).where(
            Notification.user_id == lead.id, Notification.kind == "escalation"
        )
    ).all()
    assert [n.title for n in notes] == [f"[#{ticket.id}] SLA breached."]


def test_a_paused_clock_never_breaches(factory, db_session):
    use_workflow(db_session, always_open_sla(first_response=1, resolution=2))
    agent = factory.agent()
    ticket = factory.ticket(factory.customer(), priority=Priority.URGENT)
    tickets.do_transition(agent, ticket.id, "start")
    tickets.do_transition(agent, ticket.id, "wait_on_customer")
    drain(db_session)
    assert sweep.do_sweep(utcnow() + timedelta(hours=1))["sla_breaches"] == 0


# -- time-based rules ---------------------------------------------------------------------------


def test_solved_tickets_auto_close_after_four_days_once(factory, db_session):
    agent = factory.agent()
    ticket = factory.ticket(factory.customer())
    tickets.do_transition(agent, ticket.id, "solve")
    drain(db_session)
    solved_at = db_session.get(Ticket, ticket.id).solved_at
    assert sweep.do_sweep(solved_at + timedelta(days=3))["time_rules"] == 1  # reminder
    assert db_session.get(Ticket, ticket.id).status == "solved"
    assert sweep.do_sweep(solved_at + timedelta(days=4, seconds=1))["time_rules"] == 1
    assert db_session.get(Ticket, ticket.id).status == "closed"
    assert sweep.do_sweep(solved_at + timedelta(days=9))["time_rules"] == 0
    [closed] = trail(db_session, ticket.id, "ticket.transitioned")[-1:]
    assert closed.data["cause"]["rule"] == "auto_close_solved"


def test_urgent_unassigned_ticket_alerts_the_team_lead(factory, db_session, team_setup):
    team, (lead, *_) = team_setup
    team.assignment_policy = AssignmentPolicy.MANUAL
    db_session.commit()
    ticket = factory.ticket(factory.customer(), team=team, priority=Priority.URGENT)
    drain(db_session)
    created = db_session.get(Ticket, ticket.id).created_at
    assert sweep.do_sweep(created + timedelta(minutes=14))["time_rules"] == 0
    assert sweep.do_sweep(created + timedelta(minutes=16))["time_rules"] == 1
    [alert] = db_session.scalars(
        select(Notification).where(
            Notification.user_id == lead.id,
            Notification.ticket_id == ticket.id,
            Notification.kind == "escalation",
        )
    ).all()
    assert "unassigned" in alert.title


# -- assignment ---------------------------------------------------------------------------------


def test_round_robin_takes_turns_and_names_its_rule(factory, db_session, team_setup):
    team, agents = team_setup
    customer = factory.customer()
    assigned = []
    for _ in range(4):
        ticket = factory.ticket(customer, team=team)
        drain(db_session)
        assigned.append(db_session.get(Ticket, ticket.id).assignee_id)
    ids = sorted(a.id for a in agents)
    assert assigned == [ids[0], ids[1], ids[2], ids[0]]
    [event] = trail(db_session, ticket.id, "ticket.assigned")
    assert event.data["cause"]["rule"] == "assignment:round_robin"


def test_least_open_picks_the_least_loaded_agent(factory, db_session, team_setup):
    team, agents = team_setup
    team.assignment_policy = AssignmentPolicy.LEAST_OPEN
    db_session.commit()
    customer = factory.customer()
    busy, idle = sorted(agents, key=lambda a: a.id)[:2]
    for agent in (busy, busy, idle):
        factory.ticket(customer, team=team, assignee_id=agent.id)
    third = sorted(agents, key=lambda a: a.id)[2]
    factory.ticket(customer, team=team, assignee_id=third.id)
    drain(db_session)
    ticket = factory.ticket(customer, team=team)
    drain(db_session)
    assert db_session.get(Ticket, ticket.id).assignee_id in {idle.id, third.id}
    assert db_session.get(Ticket, ticket.id).assignee_id == min(idle.id, third.id)


def test_cap_leaves_tickets_waiting_until_capacity_frees(factory, db_session):
    team = factory.team()
    agent = factory.agent(team)
    team.max_open_per_agent = 1
    db_session.commit()
    customer = factory.customer()
    first = factory.ticket(customer, team=team)
    second = factory.ticket(customer, team=team)
    drain(db_session)
    assert db_session.get(Ticket, first.id).assignee_id == agent.id
    assert db_session.get(Ticket, second.id).assignee_id is None
    tickets.do_transition(agent, first.id, "solve")
    drain(db_session)
    assert db_session.get(Ticket, second.id).assignee_id == agent.id


def test_manual_assignment_is_never_overridden(factory, db_session, team_setup):
    team, agents = team_setup
    chosen = agents[-1]
    ticket = factory.ticket(factory.customer(), team=team, assignee_id=chosen.id)
    drain(db_session)
    assert db_session.get(Ticket, ticket.id).assignee_id == chosen.id
    assert trail(db_session, ticket.id, "ticket.assigned") == []


def test_inactive_agents_get_nothing(factory, db_session):
    team = factory.team()
    factory.agent(team, active=False)
    ticket = factory.ticket(factory.customer(), team=team)
    drain(db_session)
    assert db_session.get(Ticket, ticket.id).assignee_id is None
