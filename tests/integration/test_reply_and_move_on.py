"""Reply and move on in one step: a message with a workflow transition, all or nothing, through
the REST API (``transition`` on POST messages) and the workspace's "Send and set <state>"
buttons (labelled by the target state the workflow allows from the ticket's state)."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from sqlalchemy import func, select

from autocrm.tickets import services as tickets
from autocrm.tickets.models import Message, Ticket, TicketEvent
from tests.factories import ApiClient, assert_error, csrf_token, web_login


@pytest.fixture(autouse=True)
def _fresh_login_limit(fresh_login_limit: None) -> None:
    """Every page test logs in; the login rate limit must not carry over between them."""


@pytest.fixture
def setup(factory: Any) -> dict[str, Any]:
    support = factory.team("Support")
    agent = factory.agent(support, name="Alex Agent")
    customer = factory.customer(name="Casey Customer")
    ticket = factory.ticket(customer, team=support)
    tickets.do_transition(agent, ticket.id, "start")  # open: pending, on hold and solved ahead
    return {"agent": agent, "customer": customer, "ticket": ticket}


def messages_of(db_session: Any, ticket_id: int) -> list[str]:
    rows = db_session.scalars(select(Message.body).where(Message.ticket_id == ticket_id))
    return list(rows)


def status_of(db_session: Any, ticket_id: int) -> str:
    db_session.expire_all()
    return db_session.get(Ticket, ticket_id).status


# -- the API -----------------------------------------------------------------------------------


def test_api_reply_and_set_pending_is_one_change(client, setup, db_session):
    api = ApiClient(client, setup["agent"])
    ticket = setup["ticket"]
    resp = api.post(
        f"/api/tickets/{ticket.id}/messages",
        json={"body": "Could you send a photo?", "transition": "wait_on_customer"},
    )
    assert resp.status_code == 201, resp.get_data(as_text=True)
    assert resp.get_json()["body"] == "Could you send a photo?"
    assert status_of(db_session, ticket.id) == "pending"
    moved = db_session.scalars(
        select(TicketEvent).where(
            TicketEvent.ticket_id == ticket.id, TicketEvent.kind == "ticket.transitioned"
        )
    ).all()
    assert [(e.to_state, e.actor_id) for e in moved][-1] == ("pending", setup["agent"].id)


def test_api_refused_transition_keeps_nothing(client, setup, db_session):
    api = ApiClient(client, setup["agent"])
    ticket = setup["ticket"]
    before = messages_of(db_session, ticket.id)
    resp = api.post(
        f"/api/tickets/{ticket.id}/messages",
        json={"body": "Reopening it for you.", "transition": "reopen"},  # not from open
    )
    body = assert_error(resp, 409)
    assert "transition" in body["errors"]
    assert "solve" in body["allowed_transitions"]
    assert messages_of(db_session, ticket.id) == before  # the reply went with the refusal
    assert status_of(db_session, ticket.id) == "open"

    unknown = api.post(
        f"/api/tickets/{ticket.id}/messages", json={"body": "Hi", "transition": "teleport"}
    )
    assert "transition" in assert_error(unknown, 422)["errors"]
    assert messages_of(db_session, ticket.id) == before


def test_api_customer_may_not_fire_a_staff_transition_with_a_reply(client, setup, db_session):
    api = ApiClient(client, setup["customer"])
    ticket = setup["ticket"]
    resp = api.post(
        f"/api/tickets/{ticket.id}/messages",
        json={"body": "Please wait", "transition": "wait_on_customer"},
    )
    assert_error(resp, 409)
    assert messages_of(db_session, ticket.id) == []


def test_openapi_documents_the_transition_field(client):
    spec = client.get("/api/openapi.json").get_json()
    schema = spec["components"]["schemas"]["MessageCreate"]
    assert "transition" in schema["properties"]
    assert "transaction" in schema["properties"]["transition"]["description"]


# -- the workspace page ------------------------------------------------------------------------


def log_in(client: Any, user: Any) -> str:
    web_login(client, user)
    return csrf_token(client, "/notifications")


def test_page_offers_moves_named_by_target_state(client, setup):
    log_in(client, setup["agent"])
    page = html.unescape(client.get(f"/agent/tickets/{setup['ticket'].id}").get_data(as_text=True))
    moves = re.findall(r'name="transition" value="([a-z_]+)"[^>]*>Send and set ([^<]+)<', page)
    # From "open" the default workflow allows these; labels are the states' own names.
    assert dict(moves) == {
        "wait_on_customer": "Waiting on customer",
        "hold": "On hold",
        "solve": "Solved",
    }
    assert "Send and set Open" not in page  # no move to where it already is


def test_page_send_and_set_solved(client, setup, db_session):
    token = log_in(client, setup["agent"])
    ticket = setup["ticket"]
    resp = client.post(
        f"/agent/tickets/{ticket.id}/messages",
        data={"csrf_token": token, "body": "Fixed: replaced the fuser.", "transition": "solve"},
    )
    assert resp.status_code == 302
    assert messages_of(db_session, ticket.id) == ["Fixed: replaced the fuser."]
    assert status_of(db_session, ticket.id) == "solved"
    page = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "Reply sent and status set." in page


def test_page_refused_move_keeps_the_text_in_the_box(client, setup, db_session):
    token = log_in(client, setup["agent"])
    ticket = setup["ticket"]
    # Someone solves it while the agent types; "Send and set On hold" is no longer allowed.
    tickets.do_transition(setup["agent"], ticket.id, "solve")
    resp = client.post(
        f"/agent/tickets/{ticket.id}/messages",
        data={
            "csrf_token": token,
            "body": "Putting this on hold <b>now</b>.",
            "transition": "hold",
        },
    )
    assert resp.status_code == 409
    page = resp.get_data(as_text=True)
    assert "Not sent:" in page and "Your text is kept" in page
    assert "Putting this on hold &lt;b&gt;now&lt;/b&gt;.</textarea>" in page
    assert messages_of(db_session, ticket.id) == []
    # The buttons now follow the new state (solved): reopen is offered, hold is not.
    assert 'value="reopen"' in page and 'name="transition" value="hold"' not in page


def test_page_json_reply_with_move_and_refusal(client, setup, db_session):
    token = log_in(client, setup["agent"])
    ticket = setup["ticket"]
    url = f"/agent/tickets/{ticket.id}/messages"
    headers = {"X-CSRFToken": token, "Accept": "application/json"}
    ok = client.post(url, json={"body": "Waiting on you", "transition": "wait_on_customer"},
                     headers=headers)  # fmt: skip
    assert ok.status_code == 201 and ok.get_json()["ok"] is True
    assert status_of(db_session, ticket.id) == "pending"
    refused = client.post(url, json={"body": "Again", "transition": "wait_on_customer"},
                          headers=headers)  # fmt: skip
    assert refused.status_code == 409
    assert "Your text is kept" in refused.get_json()["error"]
    count = db_session.scalar(select(func.count()).where(Message.ticket_id == ticket.id))
    assert count == 1


def test_a_closed_ticket_can_be_answered_and_reopened_in_one_step(client, setup, db_session):
    agent, ticket = setup["agent"], setup["ticket"]
    tickets.do_transition(agent, ticket.id, "solve")
    tickets.do_transition(agent, ticket.id, "close")
    api = ApiClient(client, agent)
    url = f"/api/tickets/{ticket.id}/messages"
    assert_error(api.post(url, json={"body": "One more thing"}), 409)  # closed: no reply
    resp = api.post(url, json={"body": "One more thing", "transition": "reopen"})
    assert resp.status_code == 201, resp.get_data(as_text=True)
    assert status_of(db_session, ticket.id) == "open"
    assert messages_of(db_session, ticket.id) == ["One more thing"]
