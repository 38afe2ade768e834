"""Two things every page shares (issue 15): the main navigation folds behind a "Menu" button
on a phone (keyboard and screen-reader operable, unchanged on a desktop), and times show in
the viewer's own time zone, relative to now, with the exact local time on hover, also for
a message that arrives live over the socket.

The browser database is shared by all browser tests and never rolled back: what is made here
carries a unique token.
"""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

from playwright.sync_api import Page, expect

from autocrm.extensions import db
from autocrm.tickets import conversation
from autocrm.tickets import services as tickets
from autocrm.tickets.models import Ticket
from tests.browser.conftest import ContextFactory, DemoUsers, LiveServer, Screenshot
from tests.browser.test_flows import EVENT_MS, _token, create_ticket, open_followed
from tests.browser.test_live_pages import as_staff

ZONE = "America/New_York"
# A header with the menu folded: the brand and the button, not 230 px of links.
FOLDED_HEADER_MAX_PX = 100
RECENT = re.compile(r"^(just now|\d+ minutes? ago)$")


def header_height(page: Page) -> float:
    return page.evaluate("document.querySelector('.site-header').getBoundingClientRect().height")


def test_the_navigation_folds_into_a_menu_on_a_phone(
    new_context: ContextFactory, demo: DemoUsers, screenshot: Screenshot
) -> None:
    page = new_context.logged_in(demo.customer.email, demo.customer.password, 375, 800)
    nav = page.get_by_role("navigation", name="Main")
    menu = nav.get_by_role("button", name="Menu")
    expect(menu).to_be_visible()
    expect(menu).to_have_attribute("aria-expanded", "false")
    expect(menu).to_have_attribute("aria-controls", "site-nav-links")
    expect(nav.get_by_role("link", name="New ticket")).to_be_hidden()
    assert header_height(page) <= FOLDED_HEADER_MAX_PX
    screenshot(page, "phone-menu-closed-375")

    menu.focus()
    page.keyboard.press("Enter")
    expect(menu).to_have_attribute("aria-expanded", "true")
    expect(nav.get_by_role("link", name="New ticket")).to_be_visible()
    expect(nav.get_by_role("button", name=re.compile("^Log out"))).to_be_visible()
    screenshot(page, "phone-menu-open-375")
    page.keyboard.press("Escape")  # closes, and the focus goes back to the button
    expect(menu).to_have_attribute("aria-expanded", "false")
    expect(menu).to_be_focused()

    page.keyboard.press("Space")
    nav.get_by_role("link", name="New ticket").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("ticket")
    expect(menu).to_have_attribute("aria-expanded", "false")  # a new page starts folded


def test_the_navigation_is_unchanged_on_a_desktop(
    new_context: ContextFactory, demo: DemoUsers
) -> None:
    page = new_context.logged_in(demo.agent.email, demo.agent.password, 1280, 800)
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("button", name="Menu")).to_be_hidden()
    expect(nav.get_by_role("link", name="Queue")).to_be_visible()
    expect(nav.get_by_role("button", name=re.compile("^Log out"))).to_be_visible()


def exact_local(moment: datetime) -> re.Pattern[str]:
    """What the title holds for ``moment`` in ZONE (en-US, full date, long time)."""
    local = moment.astimezone(ZoneInfo(ZONE))
    hour = local.hour % 12 or 12
    return re.compile(
        rf"{local.strftime('%B')} {local.day}, {local.year} at {hour}:{local.minute:02d}:"
        rf"{local.second:02d}\s(AM|PM) E[SD]T"
    )


def test_times_are_local_and_relative_with_the_exact_time_on_hover(
    new_context: ContextFactory, demo: DemoUsers, live_server: LiveServer, screenshot: Screenshot
) -> None:
    token = _token()
    ticket_id = create_ticket(live_server, demo, f"Times {token}")
    with live_server.data():
        updated = db.session.get_one(Ticket, ticket_id).updated_at
    page = new_context.logged_in(
        demo.customer.email, demo.customer.password, 375, 800, timezone_id=ZONE, locale="en-US"
    )

    row_time = page.locator(f'[data-ticket-id="{ticket_id}"] time')
    expect(row_time).to_have_text(RECENT)
    expect(row_time).to_have_attribute("title", exact_local(updated))
    assert datetime.fromisoformat(row_time.get_attribute("datetime") or "") == updated
    screenshot(page, "times-portal-375")

    # A message arriving over the socket gets its time from the same formatter.
    open_followed(page, f"/portal/tickets/{ticket_id}")
    answer = f"Live answer {token}"
    as_staff(
        live_server,
        demo.agent.email,
        lambda agent: conversation.do_add_message(agent, ticket_id, answer),
    )
    live = page.locator("#message-list li").filter(has_text=answer).locator("time")
    expect(live).to_have_text(RECENT, timeout=EVENT_MS)
    expect(live).to_have_attribute(
        "title", re.compile(r"\d{4} at \d{1,2}:\d{2}:\d{2}\s(AM|PM) E[SD]T")
    )
    screenshot(page, "times-portal-ticket-375")


def test_a_customer_on_a_phone_finds_an_old_ticket_by_search(
    new_context: ContextFactory, demo: DemoUsers, live_server: LiveServer, screenshot: Screenshot
) -> None:
    token = _token()
    ticket_id = create_ticket(live_server, demo, f"Old invoice {token}")
    as_staff(
        live_server,
        demo.agent.email,
        lambda agent: tickets.do_transition(agent, ticket_id, "solve"),
    )
    page = new_context.logged_in(demo.customer.email, demo.customer.password, 375, 800)
    page.goto("/portal/")
    page.get_by_label("Search").fill(token)
    page.get_by_label("Status").select_option("solved")
    page.get_by_role("button", name="Find").click()
    rows = page.locator("[data-ticket-id]")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(f"Old invoice {token}")
    # Measured once the stylesheets are in: a layout read while they load is the bare table's.
    page.wait_for_load_state("load")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, f"the page is {width}px wide on a 375px screen"
    screenshot(page, "portal-search-375")
    page.get_by_label("Search").fill(f"#{ticket_id}")
    page.get_by_label("Status").select_option("")
    page.get_by_role("button", name="Find").click()
    expect(rows).to_have_count(1)
    rows.first.get_by_role("link").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(f"Old invoice {token}")
