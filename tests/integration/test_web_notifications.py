"""The in-app notification page: one entry per ticket with its unread count, marking an entry
or everything read, opening a ticket from its entry, paging through entries, and nobody seeing
another user's notifications.

Notifications are written as rows here rather than through ``notify``: this page is about
reading them, and the rows let each test place read and unread ones exactly.
"""

from __future__ import annotations

import html
import itertools
import re

import pytest

from autocrm.columns import utcnow
from autocrm.listing import encode_cursor
from autocrm.notifications import inbox
from autocrm.notifications.models import Notification
from autocrm.people.models import User
from autocrm.tickets.models import Ticket
from tests.factories import csrf_token, web_login
from tests.integration.test_query_counts import count_queries

_keys = itertools.count(1)


def note(
    session, user: User, ticket: Ticket | None = None, title: str = "", *, read: bool = False
) -> Notification:
    row = Notification(
        user_id=user.id,
        kind="public_reply" if ticket else "escalation",
        ticket_id=ticket.id if ticket else None,
        title=title or f"Note {next(_keys)}",
        body="",
        dedupe_key=f"inbox-test-{next(_keys)}",
        read_at=utcnow() if read else None,
    )
    session.add(row)
    session.commit()
    return row


def entry_keys(page: str) -> list[str]:
    return re.findall(r'data-entry="([^"]+)"', page)


def entry_html(page: str, key: str) -> str:
    match = re.search(rf'<li class="inbox-entry[^"]*" id="entry-{key}".*?\n  </li>', page, re.S)
    assert match, f"no entry {key}"
    return match.group(0)


def text_of(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def older_link(page: str) -> str | None:
    match = re.search(r'<a href="([^"]+)" rel="next">Older</a>', page)
    return html.unescape(match.group(1)) if match else None


def unread_ids(session, user: User) -> set[int]:
    return {
        n.id for n in session.query(Notification).filter_by(user_id=user.id, read_at=None).all()
    }


@pytest.fixture
def alice(factory) -> User:
    return factory.customer(name="Alice")


@pytest.fixture
def bob(factory) -> User:
    return factory.customer(name="Bob")


@pytest.fixture
def csrf(client, alice, fresh_login_limit) -> str:
    web_login(client, alice)
    return csrf_token(client, "/portal/profile")


@pytest.fixture
def printer(factory, alice) -> Ticket:
    return factory.ticket(alice, subject="Printer on fire")


@pytest.fixture
def invoice(factory, alice) -> Ticket:
    return factory.ticket(alice, subject="Invoice wrong")


# -- grouping and unread counts ----------------------------------------------------------------


def test_one_entry_per_ticket_newest_first_with_its_unread_count(
    client, csrf, db_session, alice, printer, invoice
):
    note(db_session, alice, printer, "Printer: first", read=True)
    note(db_session, alice, invoice, "Invoice: only one")
    note(db_session, alice, printer, "Printer: second")
    loose = note(db_session, alice, None, "Your export is ready")
    note(db_session, alice, printer, "Printer: newest")

    response = client.get("/notifications")
    assert response.status_code == 200
    page = text_of(response)

    assert entry_keys(page) == [
        f"ticket-{printer.id}",
        f"note-{loose.id}",
        f"ticket-{invoice.id}",
    ]
    printer_entry = entry_html(page, f"ticket-{printer.id}")
    assert "Printer: newest" in printer_entry
    assert "2 unread" in printer_entry
    assert "All 3 notifications" in printer_entry  # expandable to the single ones
    for title in ("Printer: first", "Printer: second", "Printer: newest"):
        assert title in printer_entry
    assert "Invoice: only one" in entry_html(page, f"ticket-{invoice.id}")
    assert "<details" not in entry_html(page, f"ticket-{invoice.id}")  # nothing to expand
    assert "Your export is ready" in entry_html(page, f"note-{loose.id}")
    assert '<p class="inbox-total" id="inbox-unread">4 unread</p>' in page


def test_notifications_without_a_ticket_are_entries_of_their_own(client, csrf, db_session, alice):
    first = note(db_session, alice, None, "Export ready")
    second = note(db_session, alice, None, "Import finished", read=True)

    page = text_of(client.get("/notifications"))

    assert entry_keys(page) == [f"note-{second.id}", f"note-{first.id}"]
    assert "1 unread" in entry_html(page, f"note-{first.id}")
    assert "Read" in entry_html(page, f"note-{second.id}")
    assert "Mark read" not in entry_html(page, f"note-{second.id}")


def test_a_busy_ticket_lists_its_newest_notifications_and_counts_the_rest(
    db_session, alice, printer
):
    for n in range(inbox.ITEMS_PER_ENTRY + 3):
        note(db_session, alice, printer, f"Reply {n}")

    (entry,) = inbox.list_inbox(alice).entries

    assert entry.total == inbox.ITEMS_PER_ENTRY + 3
    assert entry.unread == inbox.ITEMS_PER_ENTRY + 3
    assert [item.title for item in entry.items][:2] == [
        f"Reply {inbox.ITEMS_PER_ENTRY + 2}",
        f"Reply {inbox.ITEMS_PER_ENTRY + 1}",
    ]
    assert len(entry.items) == inbox.ITEMS_PER_ENTRY
    assert entry.not_listed == 3


def test_the_page_shows_the_users_own_shell(client, factory, db_session, fresh_login_limit):
    customer = factory.customer()
    web_login(client, customer)
    page = text_of(client.get("/notifications"))
    assert "My tickets" in page and "New ticket" in page  # the portal's navigation
    assert "Queue" not in page
    assert 'id="notifications-link" aria-current="page"' in page

    client.post("/logout", data={"csrf_token": csrf_token(client, "/notifications")})
    web_login(client, factory.agent(factory.team()))
    page = text_of(client.get("/notifications"))
    assert "Queue" in page and "Knowledge base" in page  # the staff navigation
    assert "My tickets" not in page


def test_the_page_query_count_does_not_grow_with_its_entries(
    client, csrf, factory, db_session, alice
):
    tickets = [factory.ticket(alice, subject=f"T{n}") for n in range(6)]
    note(db_session, alice, tickets[0])
    note(db_session, alice, tickets[0])
    ids = (alice.id, [ticket.id for ticket in tickets])
    with count_queries() as few:
        assert client.get("/notifications").status_code == 200
    alice = db_session.get(User, ids[0])  # counting starts from an empty session
    tickets = [db_session.get(Ticket, ticket_id) for ticket_id in ids[1]]
    for ticket in tickets:
        note(db_session, alice, ticket)
        note(db_session, alice, ticket, read=True)
        note(db_session, alice, None)
    with count_queries() as many:
        assert client.get("/notifications").status_code == 200
    assert len(few) == len(many)


# -- marking read --------------------------------------------------------------------------------


def test_marking_one_tickets_entry_read_leaves_the_others(
    client, csrf, db_session, alice, printer, invoice
):
    note(db_session, alice, printer)
    shown = note(db_session, alice, printer)
    other = note(db_session, alice, invoice)
    arrived_meanwhile = note(db_session, alice, printer)

    response = client.post(
        f"/notifications/tickets/{printer.id}/read",
        data={"csrf_token": csrf, "up_to": str(shown.id)},
    )

    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/notifications#entry-ticket-{printer.id}")
    assert unread_ids(db_session, alice) == {other.id, arrived_meanwhile.id}
    page = text_of(client.get("/notifications"))
    assert "Marked 2 notifications read." in page
    assert "1 unread" in entry_html(page, f"ticket-{printer.id}")


def test_mark_all_read_stops_at_what_the_page_showed(
    client, csrf, db_session, alice, printer, invoice
):
    note(db_session, alice, printer)
    shown = note(db_session, alice, invoice)
    page = text_of(client.get("/notifications"))
    assert f'name="up_to" value="{shown.id}"' in page
    later = note(db_session, alice, None)

    response = client.post(
        "/notifications/read-all", data={"csrf_token": csrf, "up_to": str(shown.id)}
    )

    assert response.status_code == 303
    assert unread_ids(db_session, alice) == {later.id}
    client.post("/notifications/read-all", data={"csrf_token": csrf})
    assert unread_ids(db_session, alice) == set()
    page = text_of(client.get("/notifications"))
    assert "unread" not in page.split('id="notification-list"')[1]
    assert "Mark all read" not in page


def test_a_notification_about_no_ticket_is_marked_read_by_its_id(client, csrf, db_session, alice):
    loose = note(db_session, alice, None)
    other = note(db_session, alice, None)

    response = client.post(f"/notifications/{loose.id}/read", data={"csrf_token": csrf})

    assert response.status_code == 303
    assert unread_ids(db_session, alice) == {other.id}


def test_opening_a_ticket_from_its_entry_marks_the_entry_read(
    client, csrf, db_session, alice, printer, invoice
):
    shown = note(db_session, alice, printer)
    other = note(db_session, alice, invoice)

    response = client.post(
        f"/notifications/tickets/{printer.id}/open",
        data={"csrf_token": csrf, "up_to": str(shown.id)},
    )

    assert response.status_code == 303
    assert response.headers["Location"] == f"/portal/tickets/{printer.id}"
    assert unread_ids(db_session, alice) == {other.id}


def test_staff_open_the_ticket_in_the_workspace(client, factory, db_session, fresh_login_limit):
    team = factory.team()
    agent = factory.agent(team)
    ticket = factory.ticket(factory.customer(), team=team)
    note(db_session, agent, ticket)
    web_login(client, agent)

    response = client.post(
        f"/notifications/tickets/{ticket.id}/open",
        data={"csrf_token": csrf_token(client, "/notifications")},
    )

    assert response.headers["Location"] == f"/agent/tickets/{ticket.id}"
    assert unread_ids(db_session, agent) == set()


def test_marking_read_needs_the_csrf_token(client, csrf, db_session, alice, printer):
    note(db_session, alice, printer)
    response = client.post(f"/notifications/tickets/{printer.id}/read", data={})
    assert response.status_code == 400
    assert len(unread_ids(db_session, alice)) == 1


def test_a_bad_up_to_is_a_422_naming_the_problem(client, csrf, db_session, alice, printer):
    note(db_session, alice, printer)
    for bad in ("abc", "0", str(2**40), "-3"):
        response = client.post(
            f"/notifications/tickets/{printer.id}/read", data={"csrf_token": csrf, "up_to": bad}
        )
        assert response.status_code == 422, bad
        assert "The form is out of date; reload the page." in text_of(response)
    assert len(unread_ids(db_session, alice)) == 1


# -- other people's notifications ------------------------------------------------------------


def test_another_users_notifications_are_never_shown_or_changed(
    client, csrf, factory, db_session, alice, bob, printer
):
    mine = note(db_session, alice, printer, "Alice's news")
    theirs = note(db_session, bob, printer, "Bob's secret")
    bobs_loose = note(db_session, bob, None, "Bob's export")
    bobs_ticket = factory.ticket(bob, subject="Bob only")
    note(db_session, bob, bobs_ticket, "Bob's ticket news")

    page = text_of(client.get("/notifications"))
    assert entry_keys(page) == [f"ticket-{printer.id}"]
    assert "Bob" not in page
    assert "1 unread" in entry_html(page, f"ticket-{printer.id}")

    client.post("/notifications/read-all", data={"csrf_token": csrf})
    client.post(f"/notifications/tickets/{bobs_ticket.id}/read", data={"csrf_token": csrf})
    response = client.post(f"/notifications/{bobs_loose.id}/read", data={"csrf_token": csrf})
    assert response.status_code == 404
    assert unread_ids(db_session, alice) == set()
    assert theirs.id in unread_ids(db_session, bob) and bobs_loose.id in unread_ids(db_session, bob)
    assert len(unread_ids(db_session, bob)) == 3
    assert mine.id not in unread_ids(db_session, bob)


# -- paging ------------------------------------------------------------------------------------


def test_paging_walks_every_entry_once_newest_first(client, csrf, factory, db_session, alice):
    tickets = [factory.ticket(alice, subject=f"Ticket {n}") for n in range(5)]
    for ticket in tickets:  # the oldest entries: the last page
        note(db_session, alice, ticket)
    for _ in range(inbox.PAGE_SIZE * 2):
        note(db_session, alice, None)
    expected = [entry.key for entry in inbox.list_inbox(alice, limit=100).entries]
    assert len(expected) == inbox.PAGE_SIZE * 2 + 5

    seen: list[str] = []
    url: str | None = "/notifications"
    pages = 0
    while url:
        response = client.get(url)
        assert response.status_code == 200
        page = text_of(response)
        keys = entry_keys(page)
        assert 0 < len(keys) <= inbox.PAGE_SIZE
        seen.extend(keys)
        url = older_link(page)
        pages += 1
        if pages == 1:
            # News on a ticket of the last page moves it to the first: it is not shown again.
            note(db_session, alice, tickets[0])
    assert pages == 3
    assert seen == [key for key in expected if key != f"ticket-{tickets[0].id}"]
    assert "No older" not in page and "Newest</a>" in page


def test_the_service_pages_without_gaps_or_duplicates(db_session, alice, factory):
    tickets = [factory.ticket(alice, subject=f"T{n}") for n in range(4)]
    for n in range(10):
        note(db_session, alice, tickets[n // 2 % 4] if n % 2 else None)
    everything = [e.key for e in inbox.list_inbox(alice, limit=100).entries]

    walked, cursor = [], None
    while True:
        page = inbox.list_inbox(alice, cursor, limit=3)
        walked.extend(e.key for e in page.entries)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert walked == everything
    assert len(everything) == 5 + 4


@pytest.mark.parametrize(
    "cursor",
    [
        "not-a-cursor",
        "%%%",
        encode_cursor("-id", 5, 5),  # a cursor of another listing
        encode_cursor(inbox.CURSOR_SORT, None, 2**40),  # out of the id range
        encode_cursor(inbox.CURSOR_SORT, None, 0),
    ],
)
def test_a_bad_cursor_is_a_friendly_422(client, csrf, db_session, alice, printer, cursor):
    note(db_session, alice, printer, "Still here")
    response = client.get("/notifications", query_string={"cursor": cursor})
    assert response.status_code == 422
    page = text_of(response)
    assert "That page link is broken or out of date" in page
    assert "Still here" in page  # the newest notifications instead


def test_the_page_needs_a_login(client):
    response = client.get("/notifications")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]
