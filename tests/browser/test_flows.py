"""End-to-end flows through the web UI: an agent and a customer chatting live on one ticket,
the queue updating by itself, feedback on a solved ticket, a bulk assignment, an XSS message
that stays text, and the main pages at phone and desktop widths.

Every test makes its own tickets (subjects carry a unique token: the browser database is shared
by all the browser tests and never rolled back) and bounds every wait with a timeout.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from playwright.sync_api import Dialog, Page, expect
from sqlalchemy import select

from autocrm.columns import utcnow
from autocrm.extensions import db
from autocrm.people.models import Team, User
from autocrm.tickets import services as tickets
from autocrm.tickets.models import Feedback, Ticket
from tests import processes
from tests.browser.conftest import PAGE_MS, ContextFactory, DemoUsers, LiveServer, Screenshot
from tests.conftest import wait_until

LIVE_MS = 1000  # a message sent on one side shows on the other within this
EVENT_MS = PAGE_MS  # worker-driven changes (auto-assignment) and page loads
WORKER_S = 15.0
NO_RELOAD = "window.__autocrmNoReload"


# -- helpers ------------------------------------------------------------------------------------


def _token() -> str:
    return uuid.uuid4().hex[:10]


def _user(email: str) -> User:
    user = db.session.scalar(select(User).where(User.email == email))
    assert user is not None, email
    return user


def _team_id(name: str) -> int:
    team_id = db.session.scalar(select(Team.id).where(Team.name == name))
    assert team_id is not None, name
    return team_id


def create_ticket(
    live_server: LiveServer,
    demo: DemoUsers,
    subject: str,
    *,
    team: str | None = "Support",
    description: str = "",
) -> int:
    """A ticket of the demo customer, opened by the admin (in ``team``, or in triage), and
    handled by the worker (SLA clocks, auto-assignment) before the browser looks at it."""
    with live_server.data():
        started = utcnow()
        ticket = tickets.do_create_ticket(
            _user(demo.admin.email),
            subject=subject,
            description=description or f"{subject}: details.",
            channel="web",
            requester_id=_user(demo.customer.email).id,
            team_id=_team_id(team) if team else None,
        )
        ticket_id = ticket.id
        assert wait_until(lambda: processes.idle(started), timeout=WORKER_S)
    return ticket_id


def ticket_row(live_server: LiveServer, ticket_id: int) -> tuple[int | None, int | None, str]:
    """(assignee_id, team_id, status) of a ticket, read fresh."""
    with live_server.data():
        row = processes.snapshot(
            lambda: db.session.execute(
                select(Ticket.assignee_id, Ticket.team_id, Ticket.status).where(
                    Ticket.id == ticket_id
                )
            ).one()
        )
    return row[0], row[1], row[2]


def user_id(live_server: LiveServer, email: str) -> int:
    with live_server.data():
        return processes.snapshot(
            lambda: db.session.scalar(select(User.id).where(User.email == email))
        )


def socket_connected(page: Page) -> None:
    page.wait_for_function(
        "() => window.AutoCRM && window.AutoCRM.socket.connected", timeout=EVENT_MS
    )


def open_followed(page: Page, path: str) -> None:
    """Open a ticket page (workspace or portal) and wait until it follows the ticket live: its
    script joins the ticket's rooms, then fetches messages.json to catch up."""
    with page.expect_response(lambda r: "/messages.json" in r.url, timeout=EVENT_MS):
        page.goto(path)
    socket_connected(page)
    mark_no_reload(page)


def open_queue(page: Page, query: str) -> None:
    """Open the queue and wait until its socket has joined every queue room it listens to."""
    page.goto(f"/agent/?{query}")
    socket_connected(page)
    acks = page.evaluate(
        """async () => {
            const rooms = JSON.parse(document.getElementById("queue").dataset.rooms);
            return Promise.all(rooms.map((id) => window.AutoCRM.emit("join_queue", {team_id: id})));
        }"""
    )
    assert acks and all(ack.get("ok", True) is not False for ack in acks), acks
    mark_no_reload(page)


def mark_no_reload(page: Page) -> None:
    page.evaluate(f"() => {{ {NO_RELOAD} = true; }}")


def assert_not_reloaded(page: Page) -> None:
    assert page.evaluate(f"() => {NO_RELOAD} === true"), "the page was reloaded"


@contextmanager
def no_dialogs(*pages: Page) -> Iterator[list[str]]:
    fired: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        fired.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    for page in pages:
        page.on("dialog", on_dialog)
    yield fired
    assert fired == [], f"a dialog was opened: {fired}"


# -- 1. live conversation -----------------------------------------------------------------------


def test_agent_and_customer_chat_live_and_internal_notes_stay_internal(
    new_context: ContextFactory, demo: DemoUsers, live_server: LiveServer
) -> None:
    token = _token()
    ticket_id = create_ticket(live_server, demo, f"Live chat {token}")
    agent = new_context.logged_in(demo.agent.email, demo.agent.password)
    customer = new_context.logged_in(demo.customer.email, demo.customer.password)
    open_followed(agent, f"/agent/tickets/{ticket_id}")
    open_followed(customer, f"/portal/tickets/{ticket_id}")

    # The customer writes: the agent sees it without reloading.
    question = f"Customer question {token}"
    customer.get_by_label("Your reply").fill(question)
    customer.get_by_role("button", name="Send reply").click()
    expect(customer.get_by_label("Your reply")).to_have_value("")  # acknowledged
    expect(customer.locator("#message-list").get_by_text(question)).to_be_visible()
    agent_message = agent.locator("#ws-messages li").filter(has_text=question)
    expect(agent_message).to_be_visible(timeout=LIVE_MS)
    expect(agent_message.locator(".ws-msg-kind")).to_have_text("Customer")

    # The agent replies in public: the customer sees it without reloading.
    answer = f"Agent answer {token}"
    agent.get_by_role("radio", name="Public reply").check()
    agent.get_by_label(f"Reply to {demo.customer.name}").fill(answer)
    agent.get_by_role("button", name="Send reply").click()
    expect(agent.locator("#ws-send-state")).to_have_text("Reply sent.")
    expect(agent.locator("#ws-body")).to_have_value("")
    customer_reply = customer.locator("#message-list li").filter(has_text=answer)
    expect(customer_reply).to_be_visible(timeout=LIVE_MS)
    expect(customer_reply.locator(".role-tag")).to_have_text("Support")

    # An internal note: the agent sees it, the customer never does.
    note = f"Internal note {token} (customer must not see this)"
    agent.get_by_role("radio", name=re.compile("Internal note")).check()
    expect(agent.get_by_role("button", name="Add internal note")).to_be_visible()
    agent.locator("#ws-body").fill(note)
    agent.get_by_role("button", name="Add internal note").click()
    expect(agent.locator("#ws-send-state")).to_have_text("Internal note added.")
    agent_note = agent.locator("#ws-messages li.ws-msg-internal").filter(has_text=note)
    expect(agent_note).to_be_visible(timeout=LIVE_MS)
    expect(agent_note.locator(".ws-msg-kind")).to_have_text("Internal note")

    customer.wait_for_timeout(2000)
    expect(customer.get_by_text(note)).to_have_count(0)
    assert note not in customer.content()
    assert_not_reloaded(customer)
    assert_not_reloaded(agent)
    customer.reload()
    expect(customer.locator("#message-list").get_by_text(answer)).to_be_visible()
    assert note not in customer.content()
    catch_up = customer.request.get(f"/portal/tickets/{ticket_id}/messages.json?after=0")
    assert catch_up.ok
    assert question in catch_up.text() and note not in catch_up.text()

    # The agent's page keeps all three after a reload too.
    agent.reload()
    for text in (question, answer, note):
        expect(agent.locator("#ws-messages").get_by_text(text)).to_be_visible()


# -- 2. the live queue --------------------------------------------------------------------------


def test_queue_shows_a_new_portal_ticket_and_its_assignment_live(
    new_context: ContextFactory, demo: DemoUsers, live_server: LiveServer
) -> None:
    token = _token()
    subject = f"Queue live {token}"
    agent_context = new_context.logged_in(demo.agent.email, demo.agent.password).context
    unassigned, everything = agent_context.new_page(), agent_context.new_page()
    for page in (unassigned, everything):
        page.set_default_timeout(EVENT_MS)
    open_queue(unassigned, f"view=unassigned&q={token}")
    open_queue(everything, f"view=all&q={token}")
    for page in (unassigned, everything):
        expect(page.locator("#queue-rows tr")).to_have_count(0)
        expect(page.locator("#queue-empty")).to_be_visible()

    # The customer opens a ticket in the portal (it lands in the triage queue).
    customer = new_context.logged_in(demo.customer.email, demo.customer.password)
    customer.goto("/portal/tickets/new")
    customer.get_by_label("Subject").fill(subject)
    customer.get_by_label("Description").fill(f"Opened from the portal ({token}).")
    customer.get_by_label("Priority").select_option("high")
    customer.get_by_role("button", name="Send ticket").click()
    expect(customer).to_have_url(re.compile(r"/portal/tickets/\d+$"))
    ticket_id = int(customer.url.rsplit("/", 1)[1])
    expect(customer.get_by_role("heading", level=1)).to_contain_text(subject)

    for page in (unassigned, everything):
        row = page.locator(f'#queue-rows tr[data-ticket-id="{ticket_id}"]')
        expect(row).to_be_visible(timeout=EVENT_MS)
        expect(row.locator(".col-subject")).to_contain_text(subject)
        expect(row.locator(".col-assignee")).to_have_text("Unassigned")
        expect(row.locator(".col-team")).to_have_text("Triage")
        expect(page.locator("#queue-empty")).to_be_hidden()

    # Triage sends it to Support; the worker assigns it round-robin to Support's agent.
    with live_server.data():
        tickets.do_update_ticket(
            _user(demo.admin.email), ticket_id, {"team_id": _team_id("Support")}
        )
    row = everything.locator(f'#queue-rows tr[data-ticket-id="{ticket_id}"]')
    expect(row.locator(".col-assignee")).to_have_text(demo.agent.name, timeout=EVENT_MS)
    expect(row.locator(".col-team")).to_have_text("Support")
    expect(unassigned.locator(f'tr[data-ticket-id="{ticket_id}"]')).to_have_count(
        0, timeout=EVENT_MS
    )
    expect(unassigned.locator("#queue-empty")).to_be_visible()
    assert_not_reloaded(unassigned)
    assert_not_reloaded(everything)

    assignee_id, team_id, _ = ticket_row(live_server, ticket_id)
    assert assignee_id == user_id(live_server, demo.agent.email)
    with live_server.data():
        assert team_id == processes.snapshot(lambda: _team_id("Support"))


# -- 3. feedback --------------------------------------------------------------------------------


def test_customer_rates_a_ticket_the_agent_solved(
    new_context: ContextFactory, demo: DemoUsers, live_server: LiveServer
) -> None:
    token = _token()
    ticket_id = create_ticket(live_server, demo, f"Please rate {token}")

    agent = new_context.logged_in(demo.agent.email, demo.agent.password)
    agent.goto(f"/agent/tickets/{ticket_id}")
    agent.locator(".ws-transitions").get_by_role("button", name="Solve").click()
    expect(agent.get_by_text("Status updated.")).to_be_visible()
    expect(agent.locator("#ws-status-badge")).to_have_text(re.compile("^solved$", re.I))
    assert ticket_row(live_server, ticket_id)[2] == "solved"

    customer = new_context.logged_in(demo.customer.email, demo.customer.password)
    customer.goto(f"/portal/tickets/{ticket_id}")
    feedback = customer.locator("#feedback")
    expect(feedback.get_by_role("group", name="How did we do?")).to_be_visible()
    feedback.get_by_role("radio", name=re.compile(r"^4\b")).check()
    comment = f"Quick and friendly {token}"
    feedback.get_by_label(re.compile("^Comment")).fill(comment)
    feedback.get_by_role("button", name="Send feedback").click()

    expect(customer.get_by_text("Thank you for your feedback!")).to_be_visible()
    expect(customer).to_have_url(re.compile(rf"/portal/tickets/{ticket_id}(#feedback)?$"))
    expect(feedback.locator(".rated")).to_contain_text("You rated this ticket 4 out of 5")
    expect(feedback.locator(".rated-comment")).to_have_text(comment)
    expect(feedback.get_by_role("button", name="Send feedback")).to_have_count(0)

    with live_server.data():
        rows = processes.snapshot(
            lambda: db.session.execute(
                select(Feedback.rating, Feedback.comment, Feedback.author_id).where(
                    Feedback.ticket_id == ticket_id
                )
            ).all()
        )
    assert [(r.rating, r.comment) for r in rows] == [(4, comment)]
    assert rows[0].author_id == user_id(live_server, demo.customer.email)


# -- 4. bulk assignment -------------------------------------------------------------------------


def test_bulk_assign_three_triage_tickets(
    new_context: ContextFactory, demo: DemoUsers, live_server: LiveServer
) -> None:
    token = _token()
    # No team: they wait in triage, where no worker assigns them.
    ids = [create_ticket(live_server, demo, f"Bulk {n} {token}", team=None) for n in range(1, 4)]
    agent_id = user_id(live_server, demo.agent.email)

    page = new_context.logged_in(demo.agent.email, demo.agent.password)
    open_queue(page, f"view=unassigned&q={token}")
    expect(page.locator("#queue-rows tr")).to_have_count(3)
    for n, ticket_id in enumerate(ids, start=1):
        page.get_by_role("checkbox", name=f"Select ticket #{ticket_id}: Bulk {n} {token}").check()
    expect(page.locator("#selected-count")).to_have_text("3 selected")
    page.get_by_label("Action").select_option("assign")
    page.get_by_label("Value").select_option(str(agent_id))
    page.get_by_role("button", name="Apply to selected").click()

    results = page.locator("#bulk-results")
    expect(results.get_by_role("heading")).to_have_text("3 of 3 tickets changed")
    for ticket_id in ids:
        item = results.locator(f'li[data-result-ticket="{ticket_id}"]')
        expect(item).to_have_text(f"#{ticket_id}: done")
        expect(item).to_have_attribute("data-ok", "true")
    expect(page.locator("#queue-rows tr")).to_have_count(0)  # none is unassigned any more

    page.goto(f"/agent/?view=mine&q={token}")
    expect(page.locator("#queue-rows tr")).to_have_count(3)
    for ticket_id in ids:
        row = page.locator(f'#queue-rows tr[data-ticket-id="{ticket_id}"]')
        expect(row.locator(".col-assignee")).to_have_text(demo.agent.name)
    for ticket_id in ids:
        assert ticket_row(live_server, ticket_id)[:2] == (agent_id, None)


# -- 5. XSS -------------------------------------------------------------------------------------


XSS = "<img src=x onerror=alert(1)>"


def test_an_html_message_stays_text_for_agent_and_customer(
    new_context: ContextFactory, demo: DemoUsers, live_server: LiveServer
) -> None:
    token = _token()
    ticket_id = create_ticket(
        live_server, demo, f"XSS {token} {XSS}", description=f"Description {XSS}"
    )
    agent = new_context.logged_in(demo.agent.email, demo.agent.password)
    customer = new_context.logged_in(demo.customer.email, demo.customer.password)
    with no_dialogs(agent, customer):
        open_followed(agent, f"/agent/tickets/{ticket_id}")
        open_followed(customer, f"/portal/tickets/{ticket_id}")

        customer.get_by_label("Your reply").fill(XSS)
        customer.get_by_role("button", name="Send reply").click()
        expect(customer.get_by_label("Your reply")).to_have_value("")

        agent_message = agent.locator("#ws-messages li").filter(has_text=XSS)
        expect(agent_message).to_be_visible(timeout=LIVE_MS)  # arrived live, as text
        customer_message = customer.locator("#message-list li").filter(has_text=XSS)
        expect(customer_message).to_be_visible()
        for page in (agent, customer):
            page.wait_for_timeout(300)  # an onerror handler would have run by now
            assert page.locator("img").count() == 0
        # Drawn by the server this time.
        for page in (agent, customer):
            page.reload()
            expect(page.get_by_role("heading", level=1)).to_contain_text(XSS)
            expect(page.get_by_text(f"Description {XSS}")).to_be_visible()
            listed = page.locator("#ws-messages li, #message-list li").filter(has_text=XSS)
            expect(listed).to_have_count(1)
            page.wait_for_timeout(300)
            assert page.locator("img").count() == 0


# -- 6. layouts ---------------------------------------------------------------------------------


@pytest.mark.parametrize("width", [375, 1280])
def test_main_pages_fit_phone_and_desktop(
    width: int,
    new_context: ContextFactory,
    demo: DemoUsers,
    live_server: LiveServer,
    screenshot: Screenshot,
) -> None:
    with live_server.data():
        ticket_id = processes.snapshot(
            lambda: db.session.scalar(
                select(Ticket.id).where(Ticket.subject == "App crashes when exporting a report")
            )
        )
    overflowing: list[str] = []

    def check(page: Page, name: str) -> None:
        page.wait_for_load_state("networkidle")
        fits = page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth + 1")
        if not fits:
            widths = page.evaluate(
                "() => [document.documentElement.scrollWidth, window.innerWidth]"
            )
            overflowing.append(f"{name}: page {widths[0]}px wide in a {widths[1]}px window")
        screenshot(page, f"{name}-{width}")

    agent = new_context.logged_in(demo.agent.email, demo.agent.password, width)
    agent.goto("/agent/")
    expect(agent.locator("#queue-rows tr").first).to_be_visible()
    check(agent, "queue")
    # The table may be wider than a phone: it scrolls inside its wrapper, not the page.
    wrap = agent.locator("#queue-table-wrap")
    assert wrap.evaluate("(el) => getComputedStyle(el).overflowX") in ("auto", "scroll")
    agent.goto(f"/agent/tickets/{ticket_id}")
    expect(agent.locator("#ws-messages li").first).to_be_visible()
    check(agent, "workspace")

    customer = new_context.logged_in(demo.customer.email, demo.customer.password, width)
    customer.goto("/portal/")
    expect(customer.locator("#portal-dashboard .ticket-row").first).to_be_visible()
    check(customer, "portal-dashboard")
    customer.goto(f"/portal/tickets/{ticket_id}")
    expect(customer.locator("#message-list li").first).to_be_visible()
    check(customer, "portal-ticket")

    assert overflowing == [], "pages wider than the window:\n" + "\n".join(overflowing)
