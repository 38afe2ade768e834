"""The portal's "My tickets" (web/portal_tickets.py): open tickets first, search by subject or
number, a status filter, and pages, so a customer with many closed tickets is not handed one
endless page."""

from __future__ import annotations

import re

import pytest

from autocrm.tickets import services as tickets
from tests.factories import ApiClient, web_login
from web.portal_tickets import PAGE_SIZE

CLOSED_COUNT = 92


@pytest.fixture
def customer(factory):
    return factory.customer(name="Casey")


@pytest.fixture
def logged_in(client, customer, fresh_login_limit):
    web_login(client, customer)


def html_of(response) -> str:
    return response.get_data(as_text=True)


def ids_in(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'data-ticket-id="(\d+)"', html)]


def next_link(html: str) -> str | None:
    match = re.search(r'href="([^"]+)" rel="next"', html)
    return match.group(1).replace("&amp;", "&") if match else None


def done(factory, customer, subject: str, *, close: bool = False) -> int:
    admin = factory.admin()
    ticket = factory.ticket(customer, subject=subject)
    tickets.do_transition(admin, ticket.id, "solve")
    if close:
        tickets.do_transition(admin, ticket.id, "close")
    return ticket.id


def test_many_closed_tickets_come_in_pages_after_the_open_ones(
    client, factory, customer, logged_in
):
    closed = {done(factory, customer, f"Old question {n}", close=True) for n in range(CLOSED_COUNT)}
    open_ids = [factory.ticket(customer, subject=f"Open question {n}").id for n in range(3)]

    html = html_of(client.get("/portal/"))
    first = ids_in(html)
    assert first[:3] == open_ids[::-1]  # open work first, most recently updated first
    assert len(first) == 3 + PAGE_SIZE
    seen = first[3:]
    link = next_link(html)
    while link:
        page = client.get(link)
        assert page.status_code == 200
        html = html_of(page)
        rows = ids_in(html)
        assert 0 < len(rows) <= PAGE_SIZE and not set(rows) & set(open_ids)
        seen += rows
        link = next_link(html)
    assert sorted(seen) == sorted(closed)  # every closed ticket once, none twice


def test_search_finds_by_subject_and_by_number(client, factory, customer, logged_in):
    printer = factory.ticket(customer, subject="Printer on fire")
    invoice = done(factory, customer, "Invoice is wrong")
    factory.customer()  # someone else's ticket is never found
    other = factory.ticket(factory.customer(), subject="Printer of someone else")

    assert ids_in(html_of(client.get("/portal/?q=printer"))) == [printer.id]
    assert ids_in(html_of(client.get(f"/portal/?q=%23{invoice}"))) == [invoice]
    assert ids_in(html_of(client.get(f"/portal/?q={invoice}"))) == [invoice]
    nothing = html_of(client.get(f"/portal/?q={other.id}"))
    assert ids_in(nothing) == [] and "No tickets match" in nothing


def test_the_status_filter_shows_one_category(client, factory, customer, logged_in):
    admin = factory.admin()
    new = factory.ticket(customer, subject="Just opened")
    waiting = factory.ticket(customer, subject="Waiting on me")
    tickets.do_transition(admin, waiting.id, "start")
    tickets.do_transition(admin, waiting.id, "wait_on_customer")
    solved = done(factory, customer, "Solved one")
    closed = done(factory, customer, "Closed one", close=True)

    def shown(status: str) -> list[int]:
        return ids_in(html_of(client.get(f"/portal/?status={status}")))

    assert shown("open") == [new.id]
    assert shown("pending") == [waiting.id]
    assert shown("solved") == [solved]
    assert shown("closed") == [closed]
    assert set(shown("")) == {new.id, waiting.id, solved, closed}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("status=everything", "mt-status-error"),
        ("q=" + "x" * 201, "mt-q-error"),
        ("section=closed&cursor=forged", "That page link is broken"),
        ("cursor=nosection", "That page link is broken"),
    ],
)
def test_bad_filters_are_a_422_naming_what_to_fix(client, customer, logged_in, query, field):
    page = client.get(f"/portal/?{query}")
    assert page.status_code == 422
    assert field in html_of(page)


def test_the_api_lists_by_category_and_finds_by_number(client, factory, customer):
    open_one = factory.ticket(customer, subject="Still broken")
    solved = done(factory, customer, "Fixed now")
    api = ApiClient(client, customer)

    def listed(query: str) -> list[int]:
        page = api.get(f"/api/tickets?{query}")
        assert page.status_code == 200, page.get_data(as_text=True)
        return [t["id"] for t in page.get_json()["items"]]

    assert listed("category=solved&category=closed") == [solved]
    assert listed("category=new&category=open&category=pending") == [open_one.id]
    assert listed(f"q=%23{solved}") == [solved]
    refused = api.get("/api/tickets?category=finished")
    assert refused.status_code == 422 and "category" in refused.get_json()["errors"]["query"]
