"""@mentions in the browser: agent A types "@Al" in an internal note, picks agent B from the
suggestions with the keyboard (the listbox the text points into with aria-activedescendant),
and posts it; the note shows B's highlighted name, not the syntax. B's page, open in another
browser context, counts the notification live, and its entry opens the ticket at the note.
The suggestions at phone (375 px) and desktop (1280 px) widths, on screenshots.

The browser database is shared and never rolled back: agent B and the ticket carry a unique
token in their names.
"""

from __future__ import annotations

import re

from playwright.sync_api import Locator, Page, expect
from sqlalchemy import select

from autocrm.extensions import db
from autocrm.people import users
from autocrm.people.models import Role, User
from autocrm.tickets import services as tickets
from tests.browser.conftest import ContextFactory, DemoUsers, LiveServer, Screenshot
from tests.browser.test_flows import EVENT_MS, _token
from tests.factories import PASSWORD

PHONE = (375, 812)


def colleague_and_ticket(live_server: LiveServer, demo: DemoUsers, token: str) -> tuple[int, int]:
    """Agent B ("Alba <token>") and a ticket in triage (no team: every agent may see it)."""
    with live_server.data():
        admin = db.session.scalar(select(User).where(User.email == demo.admin.email))
        customer = db.session.scalar(select(User).where(User.email == demo.customer.email))
        assert admin is not None and customer is not None
        colleague = users.create_user(
            f"alba-{token}@example.com", PASSWORD, Role.AGENT, f"Alba {token}"
        )
        db.session.commit()
        ticket = tickets.do_create_ticket(
            admin,
            subject=f"Mentions {token}",
            description="The badge reader rejects every card.",
            channel="web",
            requester_id=customer.id,
        )
        return colleague.id, ticket.id


def suggestions(page: Page) -> Locator:
    return page.get_by_role("listbox", name="Colleagues to mention")


def type_mention(page: Page, text: str) -> None:
    page.get_by_label("Internal note").check()
    body = page.locator("#ws-body")
    body.click()
    body.press_sequentially(text)
    expect(suggestions(page)).to_be_visible()


def choose(page: Page, name: str) -> None:
    """Move through the suggestions with the arrow keys until ``name`` is the active one."""
    body = page.locator("#ws-body")
    listbox = suggestions(page)
    count = listbox.get_by_role("option").count()
    for _ in range(count):
        active = listbox.locator('[role="option"][aria-selected="true"]')
        if name in (active.text_content() or ""):
            break
        body.press("ArrowDown")
    active = listbox.locator('[role="option"][aria-selected="true"]')
    expect(active).to_contain_text(name)
    expect(body).to_have_attribute("aria-activedescendant", active.get_attribute("id") or "")


def assert_fits(page: Page, width: int) -> None:
    scroll_width = page.evaluate("() => document.documentElement.scrollWidth")
    assert scroll_width <= width, f"{page.url} is {scroll_width}px wide at {width}px"


def test_a_mentioned_colleague_is_notified_live_and_opens_the_note(
    new_context: ContextFactory,
    demo: DemoUsers,
    live_server: LiveServer,
    screenshot: Screenshot,
) -> None:
    token = _token()
    name = f"Alba {token}"
    colleague_id, ticket_id = colleague_and_ticket(live_server, demo, token)

    colleague = new_context.logged_in(f"alba-{token}@example.com", PASSWORD)
    colleague.goto("/agent/")
    bell = colleague.locator("#unread-count")
    expect(bell).to_have_text("")

    author = new_context.logged_in(demo.agent.email, demo.agent.password)
    author.goto(f"/agent/tickets/{ticket_id}")
    expect(author.get_by_text("Type @ and a name to mention a colleague")).to_be_hidden()
    type_mention(author, "Over to you @Al")
    choose(author, name)
    screenshot(author, "mentions-suggestions-1280")
    author.locator("#ws-body").press("Enter")
    expect(suggestions(author)).to_be_hidden()
    expect(author.locator("#ws-body")).to_have_value(f"Over to you @[{name}](user:{colleague_id}) ")
    author.locator("#ws-body").press_sequentially("— the reader logs are attached.")
    author.get_by_role("button", name="Add internal note").click()
    note = author.locator("#ws-messages .ws-msg-internal").last
    expect(note.locator(".mention")).to_have_text(f"@{name}")
    expect(note).not_to_contain_text("user:")
    message_id = note.get_attribute("data-message-id")

    # B's page was open all along: the bell counts the notification without a reload.
    expect(bell).to_have_text("1", timeout=EVENT_MS)
    colleague.get_by_role("link", name=re.compile(r"^Notifications")).click()
    entry = colleague.locator(f'[data-entry="ticket-{ticket_id}"]')
    expect(entry).to_contain_text(f"Alex Agent mentioned you on [#{ticket_id}] Mentions {token}")
    entry.get_by_role("button", name=re.compile("mentioned you")).click()
    expect(colleague).to_have_url(re.compile(rf"/agent/tickets/{ticket_id}#message-{message_id}$"))
    opened = colleague.locator(f"#message-{message_id}")
    expect(opened).to_be_visible()
    expect(opened.locator(".mention")).to_have_text(f"@{name}")
    opened.scroll_into_view_if_needed()
    screenshot(colleague, "mentions-note-opened-1280")


def test_the_suggestions_fit_a_phone_and_escape_closes_them(
    new_context: ContextFactory,
    demo: DemoUsers,
    live_server: LiveServer,
    screenshot: Screenshot,
) -> None:
    token = _token()
    _, ticket_id = colleague_and_ticket(live_server, demo, token)
    page = new_context.logged_in(demo.agent.email, demo.agent.password, *PHONE)
    page.goto(f"/agent/tickets/{ticket_id}")
    type_mention(page, "@Al")
    expect(
        suggestions(page).get_by_role("option", name=re.compile(f"Alba {token}"))
    ).to_be_visible()
    expect(page.get_by_text("Type @ and a name to mention a colleague")).to_be_visible()
    assert_fits(page, PHONE[0])
    page.locator("#ws-mention-list").scroll_into_view_if_needed()
    screenshot(page, "mentions-suggestions-375")

    page.locator("#ws-body").press("Escape")
    expect(suggestions(page)).to_be_hidden()
    expect(page.locator("#ws-body")).to_have_value("@Al")
    expect(page.locator("#ws-body")).not_to_have_attribute("aria-activedescendant", re.compile("."))
