"""Open ticket pages follow the ticket from the realtime events alone: a customer's portal page
when an agent replies and solves, an agent's workspace when the customer replies and solves.

The other side acts through the services (as another browser would through a form): what
reaches the page is only what the server sends. Each page counts its GET requests for the
ticket (the page itself, its messages.json, the REST API) after it has started following the
ticket; it must make none, however much changes. A last message is the marker that everything
before it has arrived (no sleeping).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from playwright.sync_api import Page, Request, expect

from autocrm.columns import utcnow
from autocrm.extensions import db
from autocrm.tickets import conversation
from autocrm.tickets import services as tickets
from autocrm.tickets.models import Ticket
from tests import processes
from tests.browser.conftest import ContextFactory, DemoUsers, LiveServer, Screenshot
from tests.browser.test_flows import (
    EVENT_MS,
    WORKER_S,
    _token,
    _user,
    assert_not_reloaded,
    create_ticket,
    open_followed,
)
from tests.conftest import wait_until


def count_ticket_gets(page: Page, ticket_id: int) -> list[str]:
    """The GETs the page makes from now on for this ticket: its page, messages.json or the API
    (not the socket's transport, nor the unread-notifications badge)."""
    seen: list[str] = []
    wanted = re.compile(rf"/(portal|agent)/tickets/{ticket_id}\b|/api/")

    def on_request(request: Request) -> None:
        if request.method == "GET" and wanted.search(request.url):
            seen.append(request.url)

    page.on("request", on_request)
    return seen


def as_staff(live_server: LiveServer, email: str, change: Callable[..., object]) -> None:
    """Make a change as a user, through the services, on the browser database, and wait until
    the worker has handled what it emitted (its rules may change the ticket again): the next
    change then starts from the ticket as a person reloading it would see it."""
    with live_server.data():
        started = utcnow()
        change(_user(email))
        assert wait_until(lambda: processes.idle(started), timeout=WORKER_S)


def _ticket(ticket_id: int) -> Ticket:
    return db.session.get_one(Ticket, ticket_id)


def test_the_customers_page_follows_an_agents_reply_and_solve(
    new_context: ContextFactory,
    demo: DemoUsers,
    live_server: LiveServer,
    screenshot: Screenshot,
) -> None:
    token = _token()
    ticket_id = create_ticket(live_server, demo, f"Live portal {token}")
    customer = new_context.logged_in(demo.customer.email, demo.customer.password)
    open_followed(customer, f"/portal/tickets/{ticket_id}")
    expect(
        customer.locator("#actions").get_by_role("button", name="Mark as solved")
    ).to_be_visible()
    expect(customer.locator("#feedback")).to_be_hidden()
    gets = count_ticket_gets(customer, ticket_id)

    answer = f"Agent answer {token}"
    as_staff(
        live_server,
        demo.agent.email,
        lambda agent: conversation.do_add_message(agent, ticket_id, answer),
    )
    reply = customer.locator("#message-list li").filter(has_text=answer)
    expect(reply).to_be_visible(timeout=EVENT_MS)
    expect(reply.locator("header strong")).to_have_text(demo.agent.name)
    expect(reply.locator(".role-tag")).to_have_text("Support")

    as_staff(
        live_server,
        demo.agent.email,
        lambda agent: tickets.do_transition(agent, ticket_id, "solve", _ticket(ticket_id).version),
    )
    expect(customer.locator("#ticket-status")).to_have_text("Solved", timeout=EVENT_MS)
    actions = customer.locator("#actions")
    expect(actions.get_by_role("button", name="Reopen")).to_be_visible()
    expect(actions.get_by_role("button", name="Mark as solved")).to_have_count(0)
    expect(
        customer.locator("#feedback").get_by_role("group", name="How did we do?")
    ).to_be_visible()
    expect(customer.locator("#timeline li").last).to_contain_text("Status set to Solved")
    expect(customer.locator("#timeline li").last).to_contain_text(f"by {demo.agent.name}")

    marker = f"Marker {token}"
    as_staff(
        live_server,
        demo.agent.email,
        lambda agent: conversation.do_add_message(agent, ticket_id, marker),
    )
    expect(customer.locator("#message-list").get_by_text(marker)).to_be_visible(timeout=EVENT_MS)
    assert gets == [], f"the page fetched instead of applying the events: {gets}"
    assert_not_reloaded(customer)
    for width in (375, 1280):
        customer.set_viewport_size({"width": width, "height": 900})
        screenshot(customer, f"live-portal-solved-{width}")

    # The button drawn from the event works: it carries the ticket's new version.
    actions.get_by_role("button", name="Reopen").click()
    expect(customer.get_by_text("The ticket is open again.")).to_be_visible()
    expect(customer.locator("#ticket-status")).to_have_text("Open")


def test_the_agents_workspace_follows_the_customers_reply_and_solve(
    new_context: ContextFactory,
    demo: DemoUsers,
    live_server: LiveServer,
    screenshot: Screenshot,
) -> None:
    token = _token()
    ticket_id = create_ticket(live_server, demo, f"Live workspace {token}")
    agent = new_context.logged_in(demo.agent.email, demo.agent.password)
    open_followed(agent, f"/agent/tickets/{ticket_id}")
    gets = count_ticket_gets(agent, ticket_id)

    question = f"Customer question {token}"
    as_staff(
        live_server,
        demo.customer.email,
        lambda customer: conversation.do_add_message(customer, ticket_id, question),
    )
    message = agent.locator("#ws-messages li").filter(has_text=question)
    expect(message).to_be_visible(timeout=EVENT_MS)
    expect(message.locator(".ws-msg-kind")).to_have_text("Customer")
    expect(message.locator(".ws-author")).to_have_text(demo.customer.name)

    as_staff(
        live_server,
        demo.admin.email,
        lambda admin: tickets.do_update_ticket(
            admin, ticket_id, {"assignee_id": _user(demo.agent.email).id, "tags": ["live"]}
        ),
    )
    expect(agent.locator("#ws-assignee-text")).to_have_text(demo.agent.name, timeout=EVENT_MS)
    expect(agent.locator("#ws-tags")).to_have_value("live")
    expect(agent.locator("#ws-assignee")).to_have_value(str(_user_id(live_server, demo)))

    as_staff(
        live_server,
        demo.customer.email,
        lambda customer: tickets.do_transition(
            customer, ticket_id, "solve", _ticket(ticket_id).version
        ),
    )
    expect(agent.locator("#ws-status-badge")).to_have_text("Solved", timeout=EVENT_MS)
    transitions = agent.locator("#ws-transitions")
    expect(transitions.get_by_role("button", name="Reopen")).to_be_visible()
    expect(transitions.get_by_role("button", name="Close")).to_be_visible()
    expect(transitions.get_by_role("button", name="Solve")).to_have_count(0)
    expect(agent.locator("#ws-trail li").first).to_contain_text(f"Solved by {demo.customer.name}")
    expect(agent.locator("#ws-clocks")).to_contain_text("Met")  # resolution stopped

    marker = f"Marker {token}"
    as_staff(
        live_server,
        demo.customer.email,
        lambda customer: conversation.do_add_message(customer, ticket_id, marker),
    )
    expect(agent.locator("#ws-messages").get_by_text(marker)).to_be_visible(timeout=EVENT_MS)
    assert gets == [], f"the workspace fetched instead of applying the events: {gets}"
    assert_not_reloaded(agent)
    for width in (375, 1280):
        agent.set_viewport_size({"width": width, "height": 900})
        screenshot(agent, f"live-workspace-solved-{width}")

    # The redrawn Close button posts the ticket's current version: it works.
    transitions.get_by_role("button", name="Close").click()
    expect(agent.get_by_text("Status updated.")).to_be_visible()
    expect(agent.locator("#ws-status-badge")).to_have_text("Closed")


def _user_id(live_server: LiveServer, demo: DemoUsers) -> int:
    with live_server.data():
        return _user(demo.agent.email).id
