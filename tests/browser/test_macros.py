"""Macros in the browser: an agent picks the demo's "Ask for screenshot" macro on an open
ticket, sees the preview (the reply as it will read, the status change), applies it in one
click and finds the reply in the conversation and the ticket waiting on the customer; then a
text-only macro goes into the reply box for editing. The management page at phone and desktop
widths, and the old canned-responses address leads to it."""

from __future__ import annotations

import re

from playwright.sync_api import expect
from sqlalchemy import select

from autocrm.extensions import db
from autocrm.people.models import Team, User
from autocrm.tickets import services as tickets
from tests.browser.conftest import ContextFactory, DemoUsers, LiveServer, Screenshot
from tests.browser.test_flows import _token
from tests.browser.test_followers import assert_fits

DESKTOP, PHONE = (1280, 900), (375, 812)


def open_ticket(live_server: LiveServer, demo: DemoUsers, subject: str) -> int:
    """A ticket of the demo customer in Support, assigned to and started by the demo agent
    (so: open; assigned already, so auto-assignment leaves it alone)."""
    with live_server.data():
        agent = db.session.scalar(select(User).where(User.email == demo.agent.email))
        customer = db.session.scalar(select(User).where(User.email == demo.customer.email))
        team_id = db.session.scalar(select(Team.id).where(Team.name == "Support"))
        ticket = tickets.do_create_ticket(
            agent,
            subject=subject,
            description="The export button does nothing.",
            requester_id=customer.id,
            team_id=team_id,
            assignee_id=agent.id,
        )
        tickets.do_transition(agent, ticket.id, "start")
        return ticket.id


def test_an_agent_applies_a_macro_that_replies_and_sets_pending(
    new_context: ContextFactory, demo: DemoUsers, live_server: LiveServer, screenshot: Screenshot
) -> None:
    ticket_id = open_ticket(live_server, demo, f"Export broken {_token()}")
    agent = new_context.logged_in(demo.agent.email, demo.agent.password, *DESKTOP)
    agent.goto(f"/agent/tickets/{ticket_id}")
    expect(agent.locator("#ws-status-badge")).to_have_text("Open")

    agent.get_by_label("Macro", exact=True).select_option(label="Ask for screenshot")
    agent.get_by_role("button", name="Preview").click()
    preview = agent.locator("#ws-macro-preview-panel")
    expect(preview).to_contain_text("Could you send us a screenshot")
    expect(preview).to_contain_text("Status: Open → Waiting on customer")
    expect(preview).to_contain_text("Add tags: needs-info")
    assert "{{" not in preview.inner_text()  # the placeholders were filled in
    screenshot(agent, "macros-preview-1280")

    agent.get_by_role("button", name="Apply macro").click()
    expect(agent.get_by_text("Macro applied.")).to_be_visible()
    expect(agent.locator("#ws-status-badge")).to_have_text("Waiting on customer")
    expect(agent.locator("#ws-messages")).to_contain_text("Could you send us a screenshot")
    screenshot(agent, "macros-applied-1280")

    # Waiting on the customer already: the preview now says the status change is not possible.
    agent.get_by_label("Macro", exact=True).select_option(label="Ask for screenshot")
    agent.get_by_role("button", name="Preview").click()
    expect(agent.locator("#ws-macro-preview-panel")).to_contain_text("not possible")
    expect(agent.get_by_role("button", name="Apply macro")).to_have_count(0)

    # A text-only macro goes into the reply box, to be edited and sent.
    agent.get_by_label("Macro", exact=True).select_option(
        label="Password reset instructions (Support)"
    )
    agent.get_by_role("button", name="Preview").click()
    expect(agent.locator("#ws-body")).to_have_value(re.compile("Forgot password"))
    expect(agent.locator("#ws-status-badge")).to_have_text("Waiting on customer")


def test_the_macro_pages_fit_a_phone_and_the_old_address_leads_there(
    new_context: ContextFactory, demo: DemoUsers, live_server: LiveServer, screenshot: Screenshot
) -> None:
    ticket_id = open_ticket(live_server, demo, f"Phone macro {_token()}")
    agent = new_context.logged_in(demo.agent.email, demo.agent.password, *PHONE)
    agent.goto("/agent/canned")
    expect(agent).to_have_url(re.compile(r"/agent/macros$"))
    expect(agent.get_by_role("heading", name="Macros", exact=True)).to_be_visible()
    expect(agent.locator(".ws-macro-list")).to_contain_text("Escalate to Billing")
    assert_fits(agent, PHONE[0])
    screenshot(agent, "macros-page-375")

    title = f"Mine {_token()}"
    agent.get_by_label("Name", exact=True).fill(title)
    agent.get_by_label("Reply text").fill("On it, {{requester.first_name}}.")
    agent.get_by_label("Priority").select_option("urgent")
    agent.get_by_role("button", name="Save macro").click()
    expect(agent.get_by_text("Macro saved.")).to_be_visible()
    expect(agent.locator(".ws-macro-list")).to_contain_text(title)

    agent.goto(f"/agent/tickets/{ticket_id}")
    agent.get_by_label("Macro", exact=True).select_option(label=f"{title} (mine)")
    agent.get_by_role("button", name="Preview").click()
    expect(agent.locator("#ws-macro-preview-panel")).to_contain_text("Priority: normal → urgent")
    assert_fits(agent, PHONE[0])
    screenshot(agent, "macros-preview-375")
    agent.get_by_role("button", name="Apply macro").click()
    expect(agent.locator("#ws-priority-text")).to_contain_text("Urgent", ignore_case=True)
    expect(agent.locator("#ws-messages")).to_contain_text("On it,")

    agent.set_viewport_size({"width": DESKTOP[0], "height": DESKTOP[1]})
    agent.goto("/agent/macros")
    screenshot(agent, "macros-page-1280")
