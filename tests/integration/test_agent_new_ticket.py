"""Agents open tickets for customers from the queue: an existing customer found by address, or
a new one made through the one customer-creation path; refusals name the field, keep the input."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from autocrm.audit.models import AdminAuditEntry as AuditEntry
from autocrm.people.models import Role, User
from autocrm.tickets.models import Ticket, TicketEvent
from tests.factories import csrf_token, web_login


@pytest.fixture(autouse=True)
def _fresh_login_limit(fresh_login_limit: None) -> None:
    """Every test logs in; the login rate limit must not carry over between them."""


@pytest.fixture
def desk(factory: Any) -> dict[str, Any]:
    support = factory.team("Support")
    return {
        "support": support,
        "agent": factory.agent(support, name="Alex Agent"),
        "customer": factory.customer(name="Casey Customer", email="casey@example.test"),
    }


def form(**fields: Any) -> dict[str, Any]:
    return {
        "email": "casey@example.test",
        "name": "",
        "subject": "Printer jammed",
        "description": "Called at 9:00: the printer on floor 2 jams.",
        "priority": "high",
        "team_id": "",
        "channel": "phone",
        **fields,
    }


def open_page(client: Any, user: Any) -> str:
    web_login(client, user)
    return csrf_token(client, "/agent/tickets/new")


def test_queue_links_to_the_new_ticket_page(client, desk):
    web_login(client, desk["agent"])
    queue = client.get("/agent/").get_data(as_text=True)
    assert 'href="/agent/tickets/new"' in queue and ">New ticket<" in queue
    page = client.get("/agent/tickets/new").get_data(as_text=True)
    assert "New ticket for a customer" in page
    assert '<option value="phone" selected>Phone</option>' in page
    assert 'value="walk-in"' in page and 'value="email-forward"' in page
    # An agent in one team starts with it chosen.
    assert f'<option value="{desk["support"].id}" selected>Support</option>' in page


def test_opens_a_ticket_for_an_existing_customer(client, db_session, desk):
    token = open_page(client, desk["agent"])
    response = client.post(
        "/agent/tickets/new",
        data={**form(team_id=str(desk["support"].id)), "csrf_token": token},
    )
    assert response.status_code == 302
    ticket = db_session.scalar(select(Ticket).where(Ticket.subject == "Printer jammed"))
    assert response.headers["Location"].endswith(f"/agent/tickets/{ticket.id}")
    assert ticket.requester_id == desk["customer"].id
    assert (ticket.channel, ticket.priority.label, ticket.team_id) == (
        "phone",
        "high",
        desk["support"].id,
    )
    created = db_session.scalar(
        select(TicketEvent).where(
            TicketEvent.ticket_id == ticket.id, TicketEvent.kind == "ticket.created"
        )
    )
    assert created.actor_id == desk["agent"].id  # the agent opened it
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert f"Ticket #{ticket.id} opened for Casey Customer." in page


def test_a_new_address_becomes_a_new_customer(client, db_session, desk):
    token = open_page(client, desk["agent"])
    response = client.post(
        "/agent/tickets/new",
        data={
            **form(email="Walk.In@Example.test", name="Wendy Walkin", channel="walk-in"),
            "csrf_token": token,
        },
    )
    assert response.status_code == 302
    wendy = db_session.scalar(select(User).where(User.email == "walk.in@example.test"))
    assert wendy.role is Role.CUSTOMER and wendy.name == "Wendy Walkin"
    assert wendy.email_verified_at is None  # as every door's new customer
    ticket = db_session.scalar(select(Ticket).where(Ticket.requester_id == wendy.id))
    assert ticket.channel == "walk-in"
    audit = db_session.scalar(
        select(AuditEntry).where(AuditEntry.action == "user.created").order_by(AuditEntry.id.desc())
    )
    assert audit.changes["source"] == [None, "ticket opened by staff"]


def test_refusals_name_the_fields_and_keep_the_input(client, db_session, desk):
    token = open_page(client, desk["agent"])
    response = client.post(
        "/agent/tickets/new",
        data={
            **form(email="not an address", subject=" ", channel="pigeon", priority="x"),
            "csrf_token": token,
        },
    )
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    for field in ("email", "subject", "channel", "priority"):
        assert f'id="nt-{field}-error"' in page, field
    assert "Called at 9:00: the printer on floor 2 jams.</textarea>" in page
    assert db_session.scalar(select(User).where(User.email == "not an address")) is None
    unknown_team = client.post(
        "/agent/tickets/new", data={**form(team_id="999999"), "csrf_token": token}
    )
    assert unknown_team.status_code == 422
    assert 'id="nt-team-error"' in unknown_team.get_data(as_text=True)
    assert db_session.scalar(select(Ticket).where(Ticket.subject == "Printer jammed")) is None


def test_customers_cannot_open_the_page(client, desk):
    web_login(client, desk["customer"])
    response = client.get("/agent/tickets/new")
    assert response.status_code in {302, 403, 404}
