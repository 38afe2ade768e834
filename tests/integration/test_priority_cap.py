"""Customers cannot raise priority above what the admin allows (default: up to High): the API
and the portal refuse Urgent from a customer with a 422 naming ``priority``, the portal form
offers only allowed priorities, staff are never capped, and the admin's setting is audited."""

from __future__ import annotations

import re

import pytest

from autocrm.audit.models import AdminAuditEntry
from autocrm.errors import Forbidden
from autocrm.tickets import priority_cap
from autocrm.tickets.models import Priority, Ticket
from tests.factories import ApiClient, assert_error, csrf_token, web_login

BODY = {"subject": "Printer on fire", "description": "It is on fire."}


@pytest.fixture
def customer(factory):
    return factory.customer(name="Casey")


def offered(html: str) -> list[str]:
    select = re.search(r'<select id="priority".*?</select>', html, re.S)
    assert select, html
    return re.findall(r'<option value="(\w+)"', select.group(0))


def test_the_api_refuses_urgent_from_a_customer_by_default(client, customer):
    api = ApiClient(client, customer)
    body = assert_error(api.post("/api/tickets", json={**BODY, "priority": "urgent"}), 422)
    assert "priority" in body["errors"]
    assert "High" in body["errors"]["priority"][0]
    created = api.post("/api/tickets", json={**BODY, "priority": "high"})
    assert created.status_code == 201 and created.get_json()["priority"] == "high"


def test_staff_may_open_urgent_tickets(client, factory, customer):
    api = ApiClient(client, factory.agent())
    body = {**BODY, "priority": "urgent", "requester_id": customer.id}
    created = api.post("/api/tickets", json=body)
    assert created.status_code == 201, created.get_data(as_text=True)
    assert created.get_json()["priority"] == "urgent"


def test_the_admins_cap_applies_to_the_api_and_is_audited(client, factory, customer, db_session):
    admin = factory.admin()
    priority_cap.do_set_customer_max_priority(admin, "normal")

    api = ApiClient(client, customer)
    assert (
        "priority"
        in assert_error(api.post("/api/tickets", json={**BODY, "priority": "high"}), 422)["errors"]
    )
    assert api.post("/api/tickets", json={**BODY, "priority": "normal"}).status_code == 201
    entries = db_session.query(AdminAuditEntry)
    entry = entries.filter_by(action="settings.customer_max_priority").one()
    assert entry.changes == {"customer_max_priority": ["high", "normal"]}


def test_the_portal_form_offers_only_allowed_priorities(client, customer, fresh_login_limit):
    web_login(client, customer)
    assert offered(client.get("/portal/tickets/new").get_data(as_text=True)) == [
        "low", "normal", "high",
    ]  # fmt: skip


def test_a_forged_urgent_from_the_portal_is_a_422_next_to_priority(
    client, customer, fresh_login_limit, db_session
):
    web_login(client, customer)
    token = csrf_token(client, "/portal/tickets/new")
    page = client.post(
        "/portal/tickets/new",
        data={**BODY, "priority": "urgent", "csrf_token": token},
    )
    assert page.status_code == 422
    html = page.get_data(as_text=True)
    assert 'id="priority-error"' in html and "up to High" in html
    assert db_session.query(Ticket).filter_by(requester_id=customer.id).count() == 0


def test_admins_change_the_cap_on_the_users_page(client, factory, customer, fresh_login_limit):
    admin = factory.admin()
    web_login(client, admin)
    token = csrf_token(client, "/admin/users")
    saved = client.post(
        "/admin/users/priority-policy", data={"max_priority": "urgent", "csrf_token": token}
    )
    assert saved.status_code == 303
    assert priority_cap.customer_max_priority() is Priority.URGENT
    page = client.get("/admin/users").get_data(as_text=True)
    assert '<option value="urgent" selected>' in page and "up to Urgent" in page

    refused = client.post(
        "/admin/users/priority-policy",
        data={"max_priority": "critical", "csrf_token": token},
        follow_redirects=True,
    )
    assert "The customer priority was not changed" in refused.get_data(as_text=True)
    assert priority_cap.customer_max_priority() is Priority.URGENT


def test_customers_may_not_change_the_cap(factory, customer, db_session):
    with pytest.raises(Forbidden):
        priority_cap.do_set_customer_max_priority(customer, "urgent")
