"""The queue's views in a browser: an agent's queue opens on "My unsolved" (selected in the
sidebar, only their open tickets; its count follows new tickets live), the agent saves the
current filters as a view and lands on it, bulk actions offer only the transitions every
selected ticket can take, and on a 375 px phone the sidebar is a drawer that opens on demand."""

from __future__ import annotations

import re
import uuid

from playwright.sync_api import expect
from sqlalchemy import select

from autocrm.columns import utcnow
from autocrm.extensions import db
from autocrm.people.models import Team, User
from autocrm.tickets import services as tickets
from autocrm.tickets.models import Priority
from tests import processes
from tests.browser.conftest import ContextFactory, DemoUsers, LiveServer, Screenshot
from tests.browser.test_flows import open_queue
from tests.conftest import wait_until

WORKER_S = 20.0


def _ticket(live_server: LiveServer, demo: DemoUsers, subject: str, *, solved: bool = False) -> int:
    """A Support ticket of the demo customer assigned to the demo agent (solved if asked)."""
    with live_server.data():
        started = utcnow()
        admin = db.session.scalar(select(User).where(User.email == demo.admin.email))
        agent = db.session.scalar(select(User).where(User.email == demo.agent.email))
        customer = db.session.scalar(select(User).where(User.email == demo.customer.email))
        team_id = db.session.scalar(select(Team.id).where(Team.name == "Support"))
        assert admin and agent and customer and team_id
        ticket = tickets.do_create_ticket(
            admin,
            subject=subject,
            description=f"{subject}: details.",
            requester_id=customer.id,
            team_id=team_id,
            assignee_id=agent.id,
            priority=Priority.URGENT,
        )
        ticket_id = ticket.id
        if solved:
            tickets.do_transition(admin, ticket_id, "solve")
        assert wait_until(lambda: processes.idle(started), timeout=WORKER_S)
    return ticket_id


def test_my_unsolved_by_default_saving_a_view_and_the_phone_drawer(
    new_context: ContextFactory, demo: DemoUsers, live_server: LiveServer, screenshot: Screenshot
) -> None:
    token = uuid.uuid4().hex[:10]
    open_id = _ticket(live_server, demo, f"Open one {token}")
    solved_id = _ticket(live_server, demo, f"Solved one {token}", solved=True)

    page = new_context.logged_in(demo.agent.email, demo.agent.password)
    page.goto("/agent/")
    sidebar = page.get_by_role("navigation", name="Queue views")
    current = sidebar.locator('a[aria-current="page"]')
    expect(current).to_have_count(1)
    expect(current).to_contain_text("My unsolved")
    expect(page.get_by_role("heading", level=1)).to_have_text("My unsolved")
    expect(page.locator(f'#queue-rows tr[data-ticket-id="{open_id}"]')).to_have_count(1)
    expect(page.locator(f'#queue-rows tr[data-ticket-id="{solved_id}"]')).to_have_count(0)
    # Every row is the agent's, and none is solved or closed.
    for assignee in page.locator("#queue-rows td.col-assignee").all_inner_texts():
        assert assignee.strip() == demo.agent.name
    for status in page.locator("#queue-rows td.col-status").all_inner_texts():
        assert status.strip() not in {"Solved", "Closed"}
    screenshot(page, "queue-views-1280")

    # The sidebar's counts follow changes live: one more ticket of mine.
    open_queue(page, "view=my_unsolved")
    badge = page.locator('[data-count-for="my_unsolved"]')
    before = int(re.sub(r"\D", "", badge.inner_text()))
    another_id = _ticket(live_server, demo, f"Another one {token}")
    expect(badge).to_contain_text(str(before + 1), timeout=15_000)
    expect(page.locator(f'#queue-rows tr[data-ticket-id="{another_id}"]')).to_have_count(1)

    # Narrow the view by a filter (applied as soon as it changes), then save it.
    page.locator("#filters-more > summary").click()
    page.get_by_label("Priority", exact=True).select_option("urgent")
    expect(page).to_have_url(re.compile(r"priority=urgent"))
    page.get_by_text("Save current filters as view").click()
    page.get_by_label("View name").fill(f"Urgent mine {token}")
    page.get_by_label("Just me").check()
    page.get_by_role("button", name="Save view").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Urgent mine {token}")
    expect(sidebar.locator('a[aria-current="page"]')).to_contain_text(f"Urgent mine {token}")
    expect(page.locator(f'#queue-rows tr[data-ticket-id="{open_id}"]')).to_have_count(1)
    expect(page.locator(f'#queue-rows tr[data-ticket-id="{solved_id}"]')).to_have_count(0)

    # Bulk actions: "Apply" with nothing selected says so; a transition is offered only if
    # every selected ticket can take it (a new ticket can "Start work", a solved one cannot).
    page.goto("/agent/?view=all&q=" + token)
    page.get_by_role("button", name="Apply to selected").click()
    expect(page.locator("#selected-count")).to_have_text("Select at least one ticket.")
    start = page.locator('#bulk-value option[data-transition="start"]')
    reopen = page.locator('#bulk-value option[data-transition="reopen"]')
    page.get_by_role("checkbox", name=re.compile(f"^Select ticket #{open_id}:")).check()
    expect(start).to_be_enabled()
    expect(reopen).to_be_disabled()
    page.get_by_role("checkbox", name=re.compile(f"^Select ticket #{solved_id}:")).check()
    expect(start).to_be_disabled()
    expect(reopen).to_be_disabled()
    expect(page.locator("#transition-hint")).to_be_visible()

    # On a phone the views are a drawer: closed at first, naming the current view.
    phone = new_context.logged_in(demo.agent.email, demo.agent.password, width=375, height=740)
    phone.goto("/agent/")
    drawer = phone.locator("#views-drawer")
    expect(drawer).not_to_have_attribute("open", "")
    expect(drawer.locator(":scope > summary")).to_contain_text("My unsolved")
    all_tickets = phone.get_by_role("link", name=re.compile("^All tickets"))
    expect(all_tickets).to_be_hidden()
    screenshot(phone, "queue-views-375")
    drawer.locator(":scope > summary").click()
    expect(all_tickets).to_be_visible()
    screenshot(phone, "queue-views-375-drawer-open")
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, f"the page scrolls sideways ({width}px)"
    all_tickets.click()
    expect(phone.get_by_role("heading", level=1)).to_have_text("All tickets")
