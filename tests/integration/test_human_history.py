"""The ticket history in words people read (``autocrm.tickets.history``): on the workspace, in
the REST trail's ``summary`` and ``why``; each change said once, rule conditions behind "why"."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from typing import Any

import pytest

from autocrm.automation import sweep
from autocrm.people.models import AssignmentPolicy
from autocrm.tickets import conversation
from autocrm.tickets import services as tickets
from autocrm.tickets.models import Priority, Ticket
from tests.factories import ApiClient, drain, web_login


@pytest.fixture(autouse=True)
def _fresh_login_limit(fresh_login_limit: None) -> None:
    """Every page test logs in; the login rate limit must not carry over between them."""


@pytest.fixture
def desk(factory: Any, db_session: Any) -> dict[str, Any]:
    team = factory.team("Support")
    team.assignment_policy = AssignmentPolicy.ROUND_ROBIN
    db_session.commit()
    agent = factory.agent(team, name="Alex Agent")
    admin = factory.admin(name="Ann Admin")
    customer = factory.customer(name="Casey Customer")
    ticket = factory.ticket(customer, team=team, by=admin)
    drain(db_session)  # round robin assigns it to Alex
    return {"team": team, "agent": agent, "admin": admin, "customer": customer, "ticket": ticket}


def history_of(client: Any, user: Any, ticket_id: int) -> list[str]:
    """The history panel's main lines, newest first (without the "why" toggles' contents)."""
    web_login(client, user)
    page = client.get(f"/agent/tickets/{ticket_id}").get_data(as_text=True)
    panel = page[page.index('id="ws-trail"') :]
    return [
        html.unescape(line).strip()
        for line in re.findall(r'<div class="ws-event-summary">([^<]*)</div>', panel)
    ]


def test_round_robin_assignment_reads_once_with_its_reason(client, desk):
    lines = history_of(client, desk["agent"], desk["ticket"].id)
    assert lines.count("Assigned to Alex Agent by round robin") == 1
    assert not [line for line in lines if "Alex Agent" in line and line.startswith("Changed")]
    assert lines[-1] == "Opened by Ann Admin"


def test_priority_change_names_both_values_and_who(client, desk):
    tickets.do_update_ticket(desk["admin"], desk["ticket"].id, {"priority": Priority.HIGH})
    lines = history_of(client, desk["agent"], desk["ticket"].id)
    assert lines[0] == "Priority changed from Normal to High by Ann Admin"


def test_reopened_by_a_rule_says_why_and_keeps_the_conditions_behind_a_toggle(
    client, db_session, desk
):
    agent, ticket = desk["agent"], desk["ticket"]
    tickets.do_transition(agent, ticket.id, "start")
    tickets.do_transition(agent, ticket.id, "wait_on_customer")
    conversation.do_add_message(desk["customer"], ticket.id, "Here is the photo.")
    drain(db_session)  # the rule reopen_on_customer_reply resumes it
    lines = history_of(client, agent, ticket.id)
    assert lines[0] == "Reopened because the customer replied"
    assert "Set to Waiting on customer by Alex Agent" in lines
    assert "Work started by Alex Agent" in lines
    assert not [line for line in lines if "event.author_role" in line]  # not in a main line
    page = html.unescape(client.get(f"/agent/tickets/{ticket.id}").get_data(as_text=True))
    toggle = page[page.index("Reopened because the customer replied") :]
    toggle = toggle[: toggle.index("</details>")]
    assert "<summary>why</summary>" in toggle
    assert "Rule “reopen_on_customer_reply” of workflow version 1" in toggle
    assert "event.author_role is customer" in toggle


def test_api_trail_carries_the_summary_and_skips_nothing(client, desk):
    api = ApiClient(client, desk["admin"])
    entries = api.get(f"/api/tickets/{desk['ticket'].id}/events").get_json()
    by_kind = {e["kind"]: e for e in entries}
    assert by_kind["ticket.created"]["summary"] == "Opened by Ann Admin"
    assert by_kind["ticket.updated"]["summary"] == "Assigned to Alex Agent by round robin"
    assert by_kind["ticket.updated"]["why"] == ["Team Support assigns by round robin."]
    # The announcement of the same assignment is still in the trail, said once (null).
    assert by_kind["ticket.assigned"]["summary"] is None
    spec = client.get("/api/openapi.json").get_json()
    assert "summary" in spec["components"]["schemas"]["TrailEntry"]["properties"]


def test_customers_read_status_changes_in_words(client, desk):
    tickets.do_transition(desk["agent"], desk["ticket"].id, "solve")
    api = ApiClient(client, desk["customer"])
    entries = api.get(f"/api/tickets/{desk['ticket'].id}/events").get_json()
    assert [e["summary"] for e in entries][-1] == "Solved by Alex Agent"


def test_an_sla_breach_and_its_escalation_read_plainly(client, db_session, desk):
    ticket = db_session.get(Ticket, desk["ticket"].id)
    sweep.do_sweep(ticket.created_at + timedelta(days=30))
    drain(db_session)
    lines = history_of(client, desk["agent"], ticket.id)
    assert "The first response target was missed" in lines
    assert any(
        line.startswith("Priority changed from Normal to High because the ") for line in lines
    ), lines
