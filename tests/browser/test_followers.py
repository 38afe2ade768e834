"""Followers in the browser, on a phone (375 px): a customer adds a colleague by email on her
ticket's page; the colleague finds the ticket in her portal, follows its conversation live
(an agent's reply arrives, the internal note before it never does) and unfollows, after
which the ticket leaves her list. The agent sees the follower in the workspace. No page is
wider than the phone."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.browser.conftest import ContextFactory, DemoUsers, Screenshot
from tests.browser.test_flows import EVENT_MS, _token, assert_not_reloaded, open_followed

PHONE = (375, 812)
COLLEAGUE_EMAIL, COLLEAGUE_PASSWORD = "customer2@example.com", "customer-demo-pass"


WIDEST = """(width) => Array.from(document.querySelectorAll("body *"))
  .filter((el) => el.getBoundingClientRect().right > width)
  .slice(0, 3).map((el) => el.outerHTML.slice(0, 200))"""


def assert_fits(page: Page, width: int) -> None:
    scroll_width = page.evaluate("() => document.documentElement.scrollWidth")
    too_wide = page.evaluate(WIDEST, width) if scroll_width > width else []
    assert scroll_width <= width, f"{page.url} is {scroll_width}px wide at {width}px: {too_wide}"


def test_a_colleague_follows_a_ticket_live_and_unfollows_it_on_a_phone(
    new_context: ContextFactory, demo: DemoUsers, screenshot: Screenshot
) -> None:
    subject = f"Followers {_token()}"
    customer = new_context.logged_in(demo.customer.email, demo.customer.password, *PHONE)
    customer.goto("/portal/tickets/new")
    customer.get_by_label("Subject").fill(subject)
    customer.get_by_label("Description").fill("The projector in room 4 shows nothing.")
    customer.get_by_role("button", name="Send ticket").click()
    expect(customer).to_have_url(re.compile(r"/portal/tickets/\d+"))
    found = re.search(r"/portal/tickets/\d+", customer.url)
    assert found is not None
    ticket_path = found.group(0)

    customer.get_by_label("Add a colleague by email").fill("not an address")
    customer.get_by_role("button", name="Add follower").click()
    expect(customer.locator("#follower_email-error")).to_be_visible()
    expect(customer.get_by_label("Add a colleague by email")).to_have_value("not an address")
    customer.get_by_label("Add a colleague by email").fill(COLLEAGUE_EMAIL)
    customer.get_by_role("button", name="Add follower").click()
    expect(customer.locator("#follower-list")).to_contain_text("Dana Customer")
    assert_fits(customer, PHONE[0])
    screenshot(customer, "followers-portal-requester-375")

    colleague = new_context.logged_in(COLLEAGUE_EMAIL, COLLEAGUE_PASSWORD, *PHONE)
    colleague.goto("/portal/")
    colleague.get_by_role("link", name=re.compile(subject)).click()
    expect(colleague.get_by_role("heading", name=re.compile(subject))).to_be_visible()
    open_followed(colleague, ticket_path)

    agent = new_context.logged_in(demo.agent.email, demo.agent.password, *PHONE)
    ticket_id = ticket_path.rsplit("/", 1)[1]
    agent.goto(f"/agent/tickets/{ticket_id}")
    expect(agent.locator("#ws-follower-list")).to_contain_text("Dana Customer")
    assert_fits(agent, PHONE[0])
    screenshot(agent, "followers-workspace-375")
    agent.get_by_label("Internal note").check()
    agent.locator("#ws-body").fill("Projector lamp is a known issue")
    agent.get_by_role("button", name="Add internal note").click()
    expect(agent.locator("#ws-messages")).to_contain_text("known issue")
    agent.get_by_label("Public reply").check()
    agent.locator("#ws-body").fill("A technician is on the way")
    agent.get_by_role("button", name="Send reply").click()

    messages = colleague.locator("#message-list")
    expect(messages).to_contain_text("A technician is on the way", timeout=EVENT_MS)
    assert_not_reloaded(colleague)
    # The reply came after the note: had the note reached this page, it would be here by now.
    assert "known issue" not in colleague.content()
    assert_fits(colleague, PHONE[0])
    screenshot(colleague, "followers-portal-follower-375")

    colleague.get_by_role("button", name="Unfollow this ticket").click()
    expect(colleague).to_have_url(re.compile(r"/portal/?$"))
    expect(colleague.get_by_text(f"You no longer follow ticket #{ticket_id}.")).to_be_visible()
    expect(colleague.get_by_role("link", name=re.compile(subject))).to_have_count(0)
