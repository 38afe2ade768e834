"""The workspace's details save as they change: workspace.js posts the form as JSON with the
version it shows; the answer is the ticket as it is now, or the refusal (409 when someone else
changed the ticket meanwhile, nothing saved)."""

from __future__ import annotations

from typing import Any

import pytest

from autocrm.tickets import services as tickets
from autocrm.tickets.models import Priority, Ticket
from tests.factories import csrf_token, web_login


@pytest.fixture(autouse=True)
def _fresh_login_limit(fresh_login_limit: None) -> None:
    """Every test logs in; the login rate limit must not carry over between them."""


@pytest.fixture
def desk(factory: Any) -> dict[str, Any]:
    support, billing = factory.team("Support"), factory.team("Billing")
    agent = factory.agent(support, name="Alex Agent")
    return {
        "support": support,
        "agent": agent,
        "outsider": factory.agent(billing, name="Olga Outsider"),
        "ticket": factory.ticket(factory.customer(), team=support),
    }


def save(client: Any, token: str, ticket: Ticket, version: int, **fields: Any) -> Any:
    body = {"priority": "normal", "team_id": ticket.team_id, "assignee_id": "", "tags": ""}
    return client.post(
        f"/agent/tickets/{ticket.id}/fields",
        json={**body, **fields, "version": version},
        headers={"X-CSRFToken": token, "Accept": "application/json"},
    )


def test_a_changed_field_saves_and_answers_the_ticket(client, db_session, desk):
    web_login(client, desk["agent"])
    token = csrf_token(client, f"/agent/tickets/{desk['ticket'].id}")
    ticket = desk["ticket"]
    response = save(client, token, ticket, ticket.version, priority="high", tags="vip, printer")
    assert response.status_code == 200
    data = response.get_json()
    assert data["ok"] and data["changed"]
    assert data["ticket"]["priority"] == "high" and data["ticket"]["tags"] == ["printer", "vip"]
    db_session.expire_all()
    saved = db_session.get(Ticket, ticket.id)
    assert saved.priority is Priority.HIGH and data["ticket"]["version"] == saved.version


def test_a_stale_version_is_409_and_saves_nothing(client, db_session, desk):
    web_login(client, desk["agent"])
    ticket = desk["ticket"]
    token = csrf_token(client, f"/agent/tickets/{ticket.id}")
    shown = ticket.version
    tickets.do_update_ticket(desk["agent"], ticket.id, {"tags": ["theirs"]})  # someone else
    response = save(client, token, ticket, shown, priority="urgent")
    assert response.status_code == 409
    assert "changed by someone else" in response.get_json()["error"]
    db_session.expire_all()
    saved = db_session.get(Ticket, ticket.id)
    assert saved.priority is Priority.NORMAL and list(saved.tags) == ["theirs"]


def test_a_refused_value_names_its_field(client, desk):
    web_login(client, desk["agent"])
    ticket = desk["ticket"]
    token = csrf_token(client, f"/agent/tickets/{ticket.id}")
    response = save(client, token, ticket, ticket.version, assignee_id=desk["outsider"].id)
    assert response.status_code == 422
    assert "assignee_id" in response.get_json()["errors"]


def test_the_page_keeps_the_save_button_for_browsers_without_script(client, desk):
    web_login(client, desk["agent"])
    page = client.get(f"/agent/tickets/{desk['ticket'].id}").get_data(as_text=True)
    assert 'id="ws-fields-save">Save details</button>' in page
