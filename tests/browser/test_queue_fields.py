"""Custom fields in the agent's queue, in a browser: an agent shows a field as a column,
filters the queue by it, saves that as a view and reopens it from the sidebar (the column and
the filter come back); on a 375 px phone the queue with field columns stays usable (the table
scrolls inside its frame, the page does not scroll sideways).

The browser database is shared and never rolled back: the field's key carries a unique token.
"""

from __future__ import annotations

import re
import uuid

from playwright.sync_api import expect
from sqlalchemy import select

from autocrm.fields import definitions
from autocrm.people.models import Team, User
from autocrm.tickets import services as tickets
from tests.browser.conftest import ContextFactory, DemoUsers, LiveServer, Screenshot


def test_an_agent_adds_a_field_column_and_filter_saves_the_view_and_reopens_it(
    new_context: ContextFactory, demo: DemoUsers, live_server: LiveServer, screenshot: Screenshot
) -> None:
    token = uuid.uuid4().hex[:8]
    key = f"sev_{token}"
    with live_server.data() as session:
        admin = session.scalar(select(User).where(User.email == demo.admin.email))
        customer = session.scalar(select(User.id).where(User.email == demo.customer.email))
        support = session.scalar(select(Team.id).where(Team.name == "Support"))
        options = [{"value": "low", "label": "Low"}, {"value": "high", "label": "High"}]
        definitions.do_create_field(
            admin,
            {"key": key, "label": f"Severity {token}", "type": "dropdown", "options": options},
        )
        made = {}
        for level in ("high", "low"):
            made[level] = tickets.do_create_ticket(
                admin,
                subject=f"{level.capitalize()} severity {token}",
                description="Details.",
                requester_id=customer,
                team_id=support,
                fields={key: level},
            ).id

    page = new_context.logged_in(demo.agent.email, demo.agent.password)
    page.goto("/agent/?view=all")
    header = page.locator(f'th[data-field-column="{key}"]')
    expect(header).to_have_count(0)

    # Show the field as a column (applied as soon as it is ticked).
    page.locator("#columns-more > summary").click()
    page.locator(f'[id="col-{key}"]').check()
    expect(page).to_have_url(re.compile(rf"columns={key}"))
    expect(header).to_have_text(f"Severity {token}")

    # Filter by it: only the high one stays, its cell says so.
    page.locator("#filters-more > summary").click()
    page.locator(f'[id="f-field.{key}"]').select_option("high")
    expect(page).to_have_url(re.compile(rf"field\.{key}=high"))
    rows = page.locator("#queue-rows tr")
    expect(rows).to_have_count(1)
    expect(
        page.locator(f'#queue-rows tr[data-ticket-id="{made["high"]}"] td[data-field="{key}"]')
    ).to_have_text("High")

    # Save it as a view, then reopen it from the sidebar on a fresh page.
    name = f"High severity {token}"
    page.get_by_text("Save current filters as view").click()
    page.get_by_label("View name").fill(name)
    page.get_by_label("Just me").check()
    page.get_by_role("button", name="Save view").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(name)
    page.goto("/agent/")
    page.get_by_role("navigation", name="Queue views").get_by_role(
        "link", name=re.compile(name)
    ).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(name)
    expect(page).not_to_have_url(re.compile(r"columns=|field\."))
    expect(header).to_have_text(f"Severity {token}")
    expect(rows).to_have_count(1)
    expect(page.locator(f'#queue-rows tr[data-ticket-id="{made["high"]}"]')).to_have_count(1)
    screenshot(page, "queue-fields-1280")

    # A phone: the saved view with its column, and the page does not scroll sideways.
    phone = new_context.logged_in(demo.agent.email, demo.agent.password, width=375, height=740)
    phone.goto(page.url)
    expect(phone.get_by_role("heading", level=1)).to_have_text(name)
    expect(phone.locator(f'th[data-field-column="{key}"]')).to_have_count(1)
    screenshot(phone, "queue-fields-375")
    phone.locator("#filters-more > summary").click()
    phone.locator("#columns-more > summary").click()
    screenshot(phone, "queue-fields-375-filters-open")
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, f"the page scrolls sideways ({width}px)"
