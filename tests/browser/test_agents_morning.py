"""An agent's morning in one browser (issue 15's walk): the queue opens on "My unsolved", the
agent finds a customer's tickets by their email address, sees that one is a duplicate of the
other, and merges it: its conversation continues on the other ticket, and the duplicate says
where it went. Macros, mentions and the phone search have their own walks (test_macros,
test_mentions, test_phone_menu_and_times)."""

from __future__ import annotations

import uuid

from playwright.sync_api import expect

from tests.browser.conftest import ContextFactory, DemoUsers, LiveServer, Screenshot
from tests.browser.test_queue_views import _ticket


def test_find_a_customer_by_email_and_merge_their_duplicate(
    new_context: ContextFactory, demo: DemoUsers, live_server: LiveServer, screenshot: Screenshot
) -> None:
    token = uuid.uuid4().hex[:10]
    original = _ticket(live_server, demo, f"Printer jams {token}")
    duplicate = _ticket(live_server, demo, f"Printer still jams {token}")

    page = new_context.logged_in(demo.agent.email, demo.agent.password)
    page.goto("/agent/")
    expect(page.get_by_role("heading", level=1)).to_have_text("My unsolved")

    search = page.get_by_role("searchbox", name="Search")
    search.fill(demo.customer.email)
    search.press("Enter")
    rows = page.locator("#queue-rows tr[data-ticket-id]")
    for ticket_id in (original, duplicate):
        expect(rows.and_(page.locator(f'[data-ticket-id="{ticket_id}"]'))).to_have_count(1)
    for requester in page.locator("#queue-rows td.col-requester").all_inner_texts():
        assert demo.customer.name in requester
    screenshot(page, "agents-morning-search-1280")

    page.locator(f'#queue-rows tr[data-ticket-id="{duplicate}"] a').first.click()
    expect(page).to_have_url(f"{live_server.url}/agent/tickets/{duplicate}")
    page.get_by_label("Merge into… (ticket number)").fill(f"#{original}")
    page.get_by_role("button", name="Merge", exact=True).click()

    expect(page).to_have_url(f"{live_server.url}/agent/tickets/{original}")
    expect(page.locator(".flash-success")).to_contain_text(f"Merged #{duplicate} into this ticket")
    expect(page.locator("#ws-messages")).to_contain_text(f"Printer still jams {token}: details.")
    page.goto(f"/agent/tickets/{duplicate}")
    expect(page.locator("#ws-merged-into")).to_contain_text(f"Merged into #{original}")
