"""The agent's ticket workspace and macros (the former canned responses), through the Flask
test client with a real login (session cookie and CSRF tokens, as a browser has them)."""

from __future__ import annotations

import html
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from autocrm.errors import Forbidden
from autocrm.events import causes
from autocrm.macros import applying
from autocrm.macros import services as macros
from autocrm.macros.models import Macro
from autocrm.people import organizations
from autocrm.tickets import conversation
from autocrm.tickets import services as tickets
from autocrm.tickets.models import Message, Ticket
from tests.factories import ApiClient, Factory, csrf_token, refusal, web_login


@pytest.fixture(autouse=True)
def _fresh_login_limit(fresh_login_limit: None) -> None:
    """Every test logs in; the login rate limit must not carry over between them."""


def log_in(client: FlaskClient, user: Any) -> str:
    """Log in through the login form; returns the session's CSRF token."""
    web_login(client, user)
    return csrf_token(client, "/notifications")


@pytest.fixture
def setup(factory: Factory) -> dict[str, Any]:
    support, billing = factory.team("Support"), factory.team("Billing")
    agent = factory.agent(support, name="Alex Agent")
    colleague = factory.agent(support, name="Bea Colleague")
    outsider = factory.agent(billing, name="Olga Outsider")
    customer = factory.customer(name="Casey Customer")
    ticket = factory.ticket(customer, team=support, subject="Printer on fire")
    other = factory.ticket(customer, team=billing, subject="Invoice question")
    return {
        "support": support,
        "billing": billing,
        "agent": agent,
        "colleague": colleague,
        "outsider": outsider,
        "customer": customer,
        "ticket": ticket,
        "other": other,
    }


def url(ticket: Ticket, suffix: str = "") -> str:
    return f"/agent/tickets/{ticket.id}{suffix}"


# -- the page ----------------------------------------------------------------------------------


def test_workspace_renders_for_a_team_agent(client, setup):
    ticket = setup["ticket"]
    conversation.do_add_message(setup["colleague"], ticket.id, "Looked at it.", internal=True)
    log_in(client, setup["agent"])
    response = client.get(url(ticket))
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Printer on fire" in page
    assert "Casey Customer" in page
    assert "ws-msg-internal" in page and "Internal note" in page
    assert 'value="internal"' in page and "Public reply" in page
    assert 'name="name" value="start"' in page  # a transition the workflow allows now
    assert 'name="name" value="reopen"' not in page  # one it does not
    assert "History" in page and "Opened by" in page
    assert 'id="ws-priority"' in page and 'id="ws-assignee"' in page and 'id="ws-tags"' in page
    assert "Bea Colleague" in html.unescape(page)  # names for presence and authors
    assert "<script>" not in page.replace("<script src=", "")  # no inline scripts (CSP)
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]


def test_another_teams_ticket_is_a_404_page(client, setup):
    log_in(client, setup["agent"])
    response = client.get(url(setup["other"]))
    assert response.status_code == 404
    assert "not found" in response.get_data(as_text=True)
    assert client.get(url(setup["other"], "/messages.json")).status_code == 404


def test_customers_are_sent_away_from_the_workspace(client, setup):
    log_in(client, setup["customer"])
    response = client.get(url(setup["ticket"]))
    assert response.status_code == 302
    assert "/agent/" not in response.headers["Location"]


def test_logged_out_users_go_to_the_login_page(client, setup):
    response = client.get(url(setup["ticket"]))
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


# -- conversation ------------------------------------------------------------------------------


def test_internal_note_form_never_reaches_the_customer(client, db_session, setup):
    ticket = setup["ticket"]
    token = log_in(client, setup["agent"])
    response = client.post(
        url(ticket, "/messages"),
        data={"csrf_token": token, "visibility": "internal", "body": "Customer is a VIP"},
    )
    assert response.status_code == 302
    note = db_session.scalar(select(Message).where(Message.ticket_id == ticket.id))
    assert note.internal is True and note.body == "Customer is a VIP"

    page = client.get(url(ticket)).get_data(as_text=True)
    assert f'id="message-{note.id}"' in page and "ws-msg-internal" in page

    as_customer = ApiClient(client, setup["customer"])
    bodies = [m["body"] for m in as_customer.get(url_api(ticket)).get_json()["items"]]
    assert "Customer is a VIP" not in bodies
    items, _ = conversation.list_messages(setup["customer"], ticket.id)
    assert items == []


def url_api(ticket: Ticket) -> str:
    return f"/api/tickets/{ticket.id}/messages"


def test_public_reply_form_and_json_fallback(client, db_session, setup):
    ticket = setup["ticket"]
    token = log_in(client, setup["agent"])
    response = client.post(
        url(ticket, "/messages"),
        data={"csrf_token": token, "visibility": "public", "body": "On it!"},
    )
    assert response.status_code == 302 and "#message-" in response.headers["Location"]
    response = client.post(
        url(ticket, "/messages"),
        json={"body": "A note from the script", "internal": True},
        headers={"X-CSRFToken": token, "Accept": "application/json"},
    )
    assert response.status_code == 201
    data = response.get_json()
    assert data["ok"] is True and data["message"]["internal"] is True
    assert data["message"]["author_name"] == "Alex Agent"
    rows = db_session.scalars(select(Message).where(Message.ticket_id == ticket.id)).all()
    assert [(m.body, m.internal) for m in rows] == [
        ("On it!", False),
        ("A note from the script", True),
    ]


def test_a_failed_reply_keeps_the_text(client, setup):
    ticket = setup["ticket"]
    for name in ("solve", "close"):
        tickets.do_transition(setup["agent"], ticket.id, name)
    token = log_in(client, setup["agent"])
    response = client.post(
        url(ticket, "/messages"),
        data={"csrf_token": token, "visibility": "public", "body": "My long careful answer"},
    )
    assert response.status_code == 409
    page = response.get_data(as_text=True)
    assert "closed" in page
    assert "My long careful answer</textarea>" in page
    response = client.post(
        url(ticket, "/messages"),
        json={"body": "again"},
        headers={"X-CSRFToken": token, "Accept": "application/json"},
    )
    assert response.status_code == 409 and response.get_json()["ok"] is False


@pytest.mark.parametrize("body", [" \n\t", "x" * (conversation.MAX_MESSAGE_LENGTH + 1)])
def test_a_bad_reply_gets_the_message_rule(client, db_session, setup, body):
    rule = refusal(conversation.check_message, body)
    ticket = setup["ticket"]
    token = log_in(client, setup["agent"])
    page = client.post(
        url(ticket, "/messages"), data={"csrf_token": token, "visibility": "public", "body": body}
    )
    assert page.status_code == 422
    assert html.escape(rule.message) in page.get_data(as_text=True)
    script = client.post(
        url(ticket, "/messages"),
        json={"body": body},
        headers={"X-CSRFToken": token, "Accept": "application/json"},
    )
    assert script.status_code == 422
    assert script.get_json() == {"ok": False, "error": rule.message, "errors": rule.errors}
    assert set(rule.errors) == {"body"}
    assert db_session.scalar(select(Message).where(Message.ticket_id == ticket.id)) is None


def test_messages_json_is_sanitized_and_pages_after_an_id(client, setup):
    ticket = setup["ticket"]
    first = conversation.do_add_message(setup["customer"], ticket.id, "Hello **there**")
    conversation.do_add_message(setup["customer"], ticket.id, "<img src=x onerror=alert(1)>")
    conversation.do_add_message(setup["colleague"], ticket.id, "note", internal=True)
    log_in(client, setup["agent"])
    response = client.get(url(ticket, f"/messages.json?after={first.id}"))
    assert response.status_code == 200
    data = response.get_json()
    assert [m["body"] for m in data["items"]] == ["<img src=x onerror=alert(1)>", "note"]
    evil = data["items"][0]["body_html"]
    assert "<img" not in evil and "&lt;img" in evil
    assert data["items"][1]["internal"] is True
    assert data["items"][0]["author_name"] == "Casey Customer"
    assert data["has_more"] is False
    everything = client.get(url(ticket, "/messages.json")).get_json()["items"]
    assert everything[0]["body_html"] == "<p>Hello <strong>there</strong></p>\n"


def test_post_without_csrf_token_is_refused(client, db_session, setup):
    ticket = setup["ticket"]
    log_in(client, setup["agent"])
    response = client.post(
        url(ticket, "/messages"), data={"body": "sneaky", "visibility": "public"}
    )
    assert response.status_code == 400
    response = client.post(url(ticket, "/transition"), data={"name": "start", "version": "1"})
    assert response.status_code == 400
    response = client.post("/agent/macros", data={"title": "x", "body": "y"})
    assert response.status_code == 400
    assert db_session.scalar(select(Message).where(Message.ticket_id == ticket.id)) is None
    assert db_session.get(Ticket, ticket.id).status == "new"


# -- workflow and fields -----------------------------------------------------------------------


def test_transition_button_and_stale_version(client, db_session, setup):
    ticket = setup["ticket"]
    token = log_in(client, setup["agent"])
    stale = ticket.version
    response = client.post(
        url(ticket, "/transition"),
        data={"csrf_token": token, "name": "start", "version": str(stale)},
    )
    assert response.status_code == 302
    assert db_session.get(Ticket, ticket.id).status == "open"

    response = client.post(
        url(ticket, "/transition"),
        data={"csrf_token": token, "name": "hold", "version": str(stale)},
    )
    assert response.status_code == 409
    page = response.get_data(as_text=True)
    assert "changed by someone else" in page
    assert db_session.get(Ticket, ticket.id).status == "open"


def test_a_transition_not_allowed_now_says_so(client, setup):
    ticket = setup["ticket"]
    token = log_in(client, setup["agent"])
    response = client.post(
        url(ticket, "/transition"),
        data={"csrf_token": token, "name": "close", "version": str(ticket.version)},
    )
    assert response.status_code == 409
    assert "changed by someone else" not in response.get_data(as_text=True)
    response = client.post(
        url(ticket, "/transition"), data={"csrf_token": token, "name": "start", "version": "x"}
    )
    assert response.status_code == 422


def test_fields_form_updates_and_a_stale_version_keeps_the_input(client, db_session, setup):
    ticket = setup["ticket"]
    token = log_in(client, setup["agent"])
    version = ticket.version
    form = {
        "csrf_token": token,
        "priority": "high",
        "team_id": str(setup["support"].id),
        "assignee_id": str(setup["colleague"].id),
        "tags": "vip, printer",
        "version": str(version),
    }
    assert client.post(url(ticket, "/fields"), data=form).status_code == 302
    saved = db_session.get(Ticket, ticket.id)
    assert saved.priority.label == "high" and saved.assignee_id == setup["colleague"].id
    assert list(saved.tags) == ["printer", "vip"]

    page = client.get(url(ticket)).get_data(as_text=True)
    assert "Priority changed from Normal to High" in page  # the trail says who changed what

    response = client.post(
        url(ticket, "/fields"), data={**form, "tags": "mine-wins", "priority": "low"}
    )
    assert response.status_code == 409
    page = response.get_data(as_text=True)
    assert "changed by someone else" in page
    assert 'value="mine-wins"' in page
    assert '<option value="low" selected>' in page
    assert f'name="version" value="{saved.version}"' in page  # submitting again is possible
    assert list(db_session.get(Ticket, ticket.id).tags) == ["printer", "vip"]


def test_fields_form_rejects_an_assignee_from_another_team(client, setup):
    ticket = setup["ticket"]
    token = log_in(client, setup["agent"])
    response = client.post(
        url(ticket, "/fields"),
        data={
            "csrf_token": token,
            "priority": "normal",
            "team_id": str(setup["support"].id),
            "assignee_id": str(setup["outsider"].id),
            "tags": "",
            "version": str(ticket.version),
        },
    )
    assert response.status_code == 422
    assert "not a member" in response.get_data(as_text=True)


def test_the_trail_explains_automated_changes(client, db_session, setup):
    ticket = setup["ticket"]
    because = [{"field": "ticket.priority", "op": "eq", "value": "normal", "actual": "normal"}]
    version = ticket.workflow_version_id
    with causes.caused_by("tag_printers", workflow_version=version, because=because, depth=1):
        tickets.apply_changes(None, ticket, {"tags": ["printer"]})
    db_session.commit()
    log_in(client, setup["agent"])
    page = html.unescape(client.get(url(ticket)).get_data(as_text=True))
    assert "Tagged printer by the rule “tag_printers”" in page
    assert "Rule “tag_printers” of workflow version 1" in page  # behind the "why" toggle
    assert "ticket.priority is normal" in page


# -- macros (formerly canned responses) -----------------------------------------------------


def test_macro_crud(client, db_session, setup):
    token = log_in(client, setup["agent"])
    support = setup["support"]
    team = f"team:{support.id}"
    response = client.post(
        "/agent/macros",
        data={"csrf_token": token, "title": "Greeting", "body": "Hi!", "shared_with": team},
    )
    assert response.status_code == 302
    item = db_session.scalar(select(Macro).where(Macro.title == "Greeting"))
    assert item.team_id == support.id and item.created_by_id == setup["agent"].id
    assert item.actions == {} and item.owner_id is None
    assert "Greeting" in client.get("/agent/macros").get_data(as_text=True)

    edit = client.get(f"/agent/macros/{item.id}/edit")
    assert edit.status_code == 200 and "Hi!</textarea>" in edit.get_data(as_text=True)
    response = client.post(
        f"/agent/macros/{item.id}/edit",
        data={
            "csrf_token": token,
            "title": "Hello",
            "body": "Hello!",
            "shared_with": "personal",
            "priority": "high",
            "assignee": "me",
            "add_tags": "vip, follow-up",
            "transition": "wait_on_customer",
        },
    )
    assert response.status_code == 302
    item = db_session.get(Macro, item.id)
    assert item.title == "Hello" and item.owner_id == setup["agent"].id and item.team_id is None
    assert item.actions == {
        "priority": "high",
        "assignee_id": "me",
        "add_tags": ["follow-up", "vip"],
        "transition": "wait_on_customer",
    }

    blank = client.post(
        f"/agent/macros/{item.id}/edit",
        data={"csrf_token": token, "title": " ", "body": "kept text", "shared_with": team},
    )
    assert blank.status_code == 422 and "kept text</textarea>" in blank.get_data(as_text=True)
    bad = client.post(
        f"/agent/macros/{item.id}/edit",
        data={
            "csrf_token": token,
            "title": "x",
            "body": "",
            "shared_with": team,
            "transition": "teleport",
        },
    )
    assert bad.status_code == 422 and "Not a transition" in bad.get_data(as_text=True)

    response = client.post(f"/agent/macros/{item.id}/delete", data={"csrf_token": token})
    assert response.status_code == 302
    assert db_session.get(Macro, item.id) is None


def test_old_canned_addresses_redirect_to_macros(client, setup):
    log_in(client, setup["agent"])
    assert client.get("/agent/canned").headers["Location"].endswith("/agent/macros")
    moved = client.get("/agent/canned/7/edit")
    assert moved.status_code == 301 and moved.headers["Location"].endswith("/agent/macros/7/edit")


def test_macro_visibility_and_who_may_change_what(client, setup, factory):
    admin = factory.admin()
    shared = macros.do_create_macro(admin, title="Shared", body="For all", scope="global")
    billing_only = macros.do_create_macro(
        admin, title="Billing only", body="Money", team_id=setup["billing"].id
    )
    secret = macros.do_create_macro(
        setup["colleague"], title="Bea's own", body="Mine", scope="personal"
    )
    token = log_in(client, setup["agent"])
    page = client.get("/agent/macros").get_data(as_text=True)
    assert "Shared" in page and "Billing only" not in page and "Bea&#39;s own" not in page
    assert f"/agent/macros/{shared.id}/edit" not in page  # global ones: admins manage them

    refused = client.post(f"/agent/macros/{shared.id}/delete", data={"csrf_token": token})
    assert refused.status_code == 302  # back to the list with a message
    assert macros.access_macro_by_id(admin, shared.id) is not None
    assert client.get(f"/agent/macros/{billing_only.id}/edit").status_code == 404
    assert client.get(f"/agent/macros/{secret.id}/edit").status_code == 404
    response = client.post(
        "/agent/macros",
        data={"csrf_token": token, "title": "Mine for all", "body": "x", "shared_with": "global"},
    )
    assert response.status_code == 422
    assert "Only admins" in response.get_data(as_text=True)
    workspace = client.get(url(setup["ticket"])).get_data(as_text=True)
    assert "Shared" in workspace and "Billing only" not in workspace


def test_macro_placeholders_are_plain_text(client, setup, factory):
    agent, ticket = setup["agent"], setup["ticket"]
    item = macros.do_create_macro(
        agent,
        title="Hi",
        body="Hi {{customer_name}}, ticket #{{ ticket_id }}. {{ 7*7 }} {{config}} -- "
        "{{agent_name}} ({{agent.first_name}}) re {{ticket.subject}} for {{requester.name}}",
        team_id=setup["support"].id,
    )
    log_in(client, agent)
    data = client.get(url(ticket, f"/macros/{item.id}.json")).get_json()
    assert data == {
        "ok": True,
        "body": f"Hi Casey Customer, ticket #{ticket.id}. {{{{ 7*7 }}}} {{{{config}}}} -- "
        "Alex Agent (Alex) re Printer on fire for Casey Customer",
        "text_only": True,
        "changes": [
            {
                "field": "reply",
                "description": "Public reply to the requester",
                "possible": True,
                "reason": "",
            }
        ],
    }

    # Without JavaScript: the page opens with the preview and the text in the reply box (the
    # old ?canned= address too).
    for param in ("macro", "canned"):
        page = html.unescape(client.get(url(ticket, f"?{param}={item.id}")).get_data(as_text=True))
        assert f"Hi Casey Customer, ticket #{ticket.id}. {{{{ 7*7 }}}}" in page
        assert "Preview: Hi" in page

    # A customer whose name looks like a placeholder or a template stays text.
    sneaky = factory.customer(name="{{agent_name}} {{ 7*7 }}")
    other = factory.ticket(sneaky, team=setup["support"])
    body = applying.preview_by_id(agent, other.id, item.id).body
    assert body.startswith("Hi {{agent_name}} {{ 7*7 }}, ticket")

    assert client.get(url(ticket, f"/canned/{item.id}.json")).get_json() == data  # old address
    missing = client.get(url(ticket, "/macros/999999.json"))
    assert missing.status_code == 404 and missing.get_json()["ok"] is False


def test_a_macro_with_changes_is_previewed_then_applied_from_the_workspace(
    client, db_session, setup
):
    agent, ticket = setup["agent"], setup["ticket"]
    tickets.do_transition(agent, ticket.id, "start")
    item = macros.do_create_macro(
        agent,
        title="Need info",
        body="Could you send a screenshot, {{requester.first_name}}?",
        team_id=setup["support"].id,
        actions={"priority": "high", "transition": "wait_on_customer"},
    )
    token = log_in(client, agent)
    fragment = client.get(url(ticket, f"/macros/{item.id}/preview")).get_data(as_text=True)
    assert "Could you send a screenshot, Casey?" in fragment
    assert "Priority: normal → high" in fragment and "Waiting on customer" in fragment
    version = db_session.get(Ticket, ticket.id).version

    stale = client.post(
        url(ticket, f"/macros/{item.id}/apply"), data={"csrf_token": token, "version": version - 1}
    )
    assert stale.status_code == 302 and f"macro={item.id}" in stale.headers["Location"]
    assert db_session.get(Ticket, ticket.id).status == "open"

    applied = client.post(
        url(ticket, f"/macros/{item.id}/apply"), data={"csrf_token": token, "version": version}
    )
    assert applied.status_code == 302
    fresh = db_session.get(Ticket, ticket.id)
    assert fresh.status == "pending" and fresh.priority.label == "high"
    messages = db_session.scalars(select(Message).where(Message.ticket_id == ticket.id)).all()
    assert [m.body for m in messages] == ["Could you send a screenshot, Casey?"]

    # Now pending: waiting on the customer again is not possible, and the preview says so.
    fragment = client.get(url(ticket, f"/macros/{item.id}/preview")).get_data(as_text=True)
    assert "not possible: not possible from Waiting on customer" in fragment
    assert "Apply macro" not in fragment


def test_customers_cannot_use_macros(setup):
    with pytest.raises(Forbidden):
        macros.list_macros(setup["customer"])


def test_requester_panel_shows_who_asked_and_their_other_visible_tickets(client, setup, factory):
    admin = factory.admin()
    acme = organizations.do_create_organization(admin, name="Acme Ltd")
    organizations.do_add_member(admin, acme.id, setup["customer"].id)
    customer, support = setup["customer"], setup["support"]
    solved = factory.ticket(customer, team=support, subject="Old solved one")
    newer = factory.ticket(customer, team=support, subject="Newer open one")
    # solved last, so it is the most recently changed: still listed after the open one
    assert tickets.do_transition(admin, solved.id, "solve").category == "solved"
    log_in(client, setup["agent"])

    page = html.unescape(client.get(url(setup["ticket"])).get_data(as_text=True))

    head = page[page.index("From <strong>") : page.index('id="ws-team-text"')]
    assert "Casey Customer" in head and 'id="ws-requester-org">Acme Ltd<' in head
    panel = page[page.index('id="ws-requester-heading"') :]
    assert customer.email in panel and "Acme Ltd" in panel
    listed = panel[: panel.index("</ul>")]
    # open first; Billing's ticket is not the agent's to see; the ticket itself is not listed
    assert listed.index(f"#{newer.id} Newer open one") < listed.index(f"#{solved.id} Old solved")
    assert "Invoice question" not in listed and "Printer on fire" not in listed
    assert f'href="/agent/tickets/{newer.id}"' in listed
