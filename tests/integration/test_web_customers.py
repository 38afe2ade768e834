"""The customer page agents open from a ticket's requester (issue 13): the customer's details
and tickets, open first; agents keep the name and staff-only notes up to date; customers never
reach it, nor see the notes."""

from __future__ import annotations

from sqlalchemy import select

from autocrm.audit.models import AdminAuditEntry
from autocrm.tickets import services as tickets
from tests.factories import ApiClient, csrf_token, web_login


def test_an_agent_opens_the_requester_and_keeps_notes(client, factory, db_session):
    team = factory.team()
    agent = factory.agent(team)
    customer = factory.customer(name="Dana Customer")
    done = factory.ticket(customer, team=team, subject="Old question")
    tickets.do_transition(agent, done.id, "solve")
    current = factory.ticket(customer, team=team, subject="New question")
    web_login(client, agent)

    workspace = client.get(f"/agent/tickets/{current.id}").get_data(as_text=True)
    assert f'href="/agent/customers/{customer.id}"' in workspace
    page = client.get(f"/agent/customers/{customer.id}").get_data(as_text=True)
    assert page.index("New question") < page.index("Old question")  # open first

    token = csrf_token(client, f"/agent/customers/{customer.id}")
    saved = client.post(
        f"/agent/customers/{customer.id}",
        data={"csrf_token": token, "name": "Dana Fernández", "notes": "Prefers phone calls."},
    )

    assert saved.status_code == 302
    db_session.refresh(customer)
    assert (customer.name, customer.notes) == ("Dana Fernández", "Prefers phone calls.")
    entry = db_session.scalar(
        select(AdminAuditEntry).where(AdminAuditEntry.action == "user.updated")
    )
    assert entry.actor_id == agent.id and "notes" in entry.changes
    assert "Prefers phone calls." in client.get(f"/agent/tickets/{current.id}").get_data(
        as_text=True
    )


def test_a_blank_name_keeps_what_was_typed(client, factory):
    agent = factory.agent()
    customer = factory.customer()
    web_login(client, agent)
    token = csrf_token(client, f"/agent/customers/{customer.id}")

    page = client.post(
        f"/agent/customers/{customer.id}",
        data={"csrf_token": token, "name": " ", "notes": "kept text"},
    )

    assert page.status_code == 422
    assert "kept text" in page.get_data(as_text=True)


def test_staff_accounts_are_no_customer_page_and_customers_cannot_come_in(client, factory):
    agent = factory.agent()
    colleague = factory.agent()
    customer = factory.customer()
    web_login(client, agent)
    assert client.get(f"/agent/customers/{colleague.id}").status_code == 404
    client.post("/logout", data={"csrf_token": csrf_token(client, "/agent/")})

    web_login(client, customer)
    refused = client.get(f"/agent/customers/{customer.id}")
    assert refused.status_code == 302 and "/agent/" not in refused.location


def test_notes_never_reach_the_customer_through_the_api(client, factory, db_session):
    customer = factory.customer()
    customer.notes = "Staff only: difficult."
    db_session.commit()

    me = ApiClient(client, customer).get("/api/users/me").get_json()

    assert "notes" not in me and "difficult" not in str(me)
