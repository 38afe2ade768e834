"""The notification page in a browser: a customer reaches it from the portal's navigation, sees
one entry per ticket with its unread count, expands it, marks it read, and opens a ticket from
its entry (which marks it read); the page at phone and desktop widths.

The browser database is shared by all browser tests and never rolled back: the ticket made here
carries a unique token in its subject, and the test looks only at that ticket's entry.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

from playwright.sync_api import Locator, Page, expect
from sqlalchemy import select

from autocrm.columns import utcnow
from autocrm.extensions import db
from autocrm.notifications.models import Notification
from autocrm.people.models import User
from autocrm.tickets import services as tickets
from tests import processes
from tests.browser.conftest import ContextFactory, DemoUsers, LiveServer, Screenshot
from tests.conftest import wait_until

WORKER_S = 15.0
SCREENSHOT_DIR = Path("/tmp")  # noqa: S108 (the brief asks for /tmp/notif-*.png as well)


def _user(email: str) -> User:
    user = db.session.scalar(select(User).where(User.email == email))
    assert user is not None, email
    return user


def ticket_with_news(
    live_server: LiveServer, demo: DemoUsers, subject: str, titles: list[str]
) -> int:
    """A ticket of the demo customer, and a notification to them per title (oldest first)."""
    with live_server.data():
        started = utcnow()
        ticket = tickets.do_create_ticket(
            _user(demo.admin.email),
            subject=subject,
            description="Details.",
            channel="web",
            requester_id=_user(demo.customer.email).id,
        )
        ticket_id = ticket.id
        # Let the worker finish what the creation caused before adding rows beside it.
        assert wait_until(lambda: processes.idle(started), timeout=WORKER_S)
        add_news(live_server, demo, ticket_id, titles)
    return ticket_id


def add_news(live_server: LiveServer, demo: DemoUsers, ticket_id: int, titles: list[str]) -> None:
    with live_server.data():
        customer_id = _user(demo.customer.email).id
        for title in titles:
            db.session.add(
                Notification(
                    user_id=customer_id,
                    kind="public_reply",
                    ticket_id=ticket_id,
                    title=title,
                    body="",
                    dedupe_key=f"browser-{uuid.uuid4().hex}",
                )
            )
        db.session.commit()


def entry_of(page: Page, ticket_id: int) -> Locator:
    return page.locator(f'[data-entry="ticket-{ticket_id}"]')


def shoot(page: Page, screenshot: Screenshot, name: str) -> None:
    screenshot(page, name)
    page.screenshot(path=str(SCREENSHOT_DIR / f"{name}.png"), full_page=True)
    page.screenshot(path=str(SCREENSHOT_DIR / f"{name}-top.png"))


def test_a_customer_reads_notifications_grouped_by_ticket_in_the_portal(
    new_context: ContextFactory, demo: DemoUsers, live_server: LiveServer, screenshot: Screenshot
) -> None:
    token = uuid.uuid4().hex[:8]
    ticket_id = ticket_with_news(
        live_server,
        demo,
        f"Scanner jams {token}",
        [f"New reply on Scanner jams {token} ({n})" for n in (1, 2, 3)],
    )
    page = new_context.logged_in(demo.customer.email, demo.customer.password)

    main_nav = page.get_by_role("navigation", name="Main")
    main_nav.get_by_role("link", name=re.compile(r"^Notifications")).click()
    expect(page.get_by_role("heading", name="Notifications", level=1)).to_be_visible()
    expect(main_nav.get_by_role("link", name="My tickets")).to_be_visible()
    expect(main_nav.get_by_role("link", name="New ticket")).to_be_visible()
    expect(main_nav.get_by_role("link", name=re.compile(r"^Notifications"))).to_have_attribute(
        "aria-current", "page"
    )

    entry = entry_of(page, ticket_id)
    expect(entry.locator(".unread-tag")).to_have_text("3 unread")
    expect(entry.locator(".inbox-title")).to_have_text(f"New reply on Scanner jams {token} (3)")
    entry.get_by_text("All 3 notifications").click()  # expand the entry
    expect(entry.locator(".inbox-item")).to_have_count(3)
    expect(entry.locator(".inbox-item").last).to_contain_text(f"Scanner jams {token} (1)")
    shoot(page, screenshot, "notif-1280")

    entry.get_by_role("button", name="Mark read").click()
    expect(
        page.get_by_role("status").filter(has_text="Marked 3 notifications read.")
    ).to_be_visible()
    entry = entry_of(page, ticket_id)
    expect(entry.locator(".read-tag")).to_have_text("Read")
    expect(entry.locator(".unread-tag")).to_have_count(0)
    expect(entry.get_by_role("button", name="Mark read")).to_have_count(0)


def test_opening_a_ticket_from_its_entry_marks_it_read_on_a_phone(
    new_context: ContextFactory, demo: DemoUsers, live_server: LiveServer, screenshot: Screenshot
) -> None:
    token = uuid.uuid4().hex[:8]
    subject = f"Router blinks {token}"
    ticket_id = ticket_with_news(live_server, demo, subject, [f"{subject} is now open"])
    add_news(live_server, demo, ticket_id, [f"New reply on {subject}"])
    page = new_context.logged_in(demo.customer.email, demo.customer.password, width=375, height=800)

    page.goto("/notifications")
    entry = entry_of(page, ticket_id)
    expect(entry.locator(".unread-tag")).to_have_text("2 unread")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, f"the page is {width}px wide on a 375px screen"
    shoot(page, screenshot, "notif-375")

    entry.get_by_role("button", name=f"New reply on {subject}").click()
    expect(page).to_have_url(re.compile(rf"/portal/tickets/{ticket_id}$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text(subject)

    page.goto("/notifications")
    expect(entry_of(page, ticket_id).locator(".read-tag")).to_have_text("Read")
