"""Ticket search as people use it, through the REST list's ``q`` (and the queue and portal,
which read the same list service): it finds a ticket by any message's text, by its
requester's email or name, and by its number; best match first, with a highlighted snippet;
and a customer never finds someone else's ticket nor anything through an internal note.
Runs on SQLite (FTS5) and, with AUTOCRM_TEST_DATABASE_URL, PostgreSQL (tsvector, GIN)."""

from __future__ import annotations

from typing import Any

import pytest

from autocrm.people import organizations
from autocrm.people.models import User
from autocrm.tickets import conversation
from autocrm.tickets import search as ticket_search
from autocrm.tickets import services as tickets
from autocrm.tickets.models import Ticket
from tests.factories import ApiClient, assert_error, csrf_token, web_login


def ok(resp: Any) -> Any:
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return resp.get_json()


def search(api: ApiClient, q: str, **params: Any) -> list[dict[str, Any]]:
    page = ok(api.client.get("/api/tickets", query_string={"q": q, **params}, headers=api.headers))
    return page["items"]


def ids(items: list[dict[str, Any]]) -> list[int]:
    return [item["id"] for item in items]


def open_ticket(admin: User, requester: User, subject: str, description: str) -> Ticket:
    return tickets.do_create_ticket(
        admin, subject=subject, description=description, requester_id=requester.id
    )


@pytest.fixture
def admin(factory):
    return factory.admin()


@pytest.fixture
def ann(factory):
    return factory.customer(email="ann.rivers@acme.test", name="Ann Rivers")


@pytest.fixture
def bob(factory):
    return factory.customer(email="bob@globex.test", name="Bob Stone")


def test_a_message_added_later_is_found(client, admin, ann):
    ticket = open_ticket(admin, ann, "Login trouble", "I cannot sign in.")
    api = ApiClient(client, admin)
    assert search(api, "kumquat") == []

    conversation.do_add_message(ann, ticket.id, "Also my kumquat invoice is missing.")

    found = search(api, "kumquat")
    assert ids(found) == [ticket.id]
    assert "<mark>kumquat</mark>" in found[0]["snippet"]


def test_found_by_requester_email_and_name(client, admin, ann, bob):
    annes = open_ticket(admin, ann, "Printer", "Jammed.")
    open_ticket(admin, bob, "Scanner", "Broken.")
    api = ApiClient(client, admin)

    assert ids(search(api, "ann.rivers@acme.test")) == [annes.id]
    assert ids(search(api, "Rivers")) == [annes.id]
    assert ids(search(api, "ann rivers")) == [annes.id]


def test_the_number_comes_first(client, admin, ann):
    first = open_ticket(admin, ann, "One", "Nothing to see.")
    mentions = open_ticket(admin, ann, "Two", f"Follows up on {first.id}, see ticket {first.id}.")
    api = ApiClient(client, admin)

    for q in (str(first.id), f"#{first.id}"):
        found = ids(search(api, q))
        assert found[0] == first.id
        assert mentions.id in found


def test_best_match_first_and_pages_keep_that_order(client, admin, ann):
    weak = open_ticket(admin, ann, "Invoice", "A question about a refund for an order.")
    strong = open_ticket(admin, ann, "Refund refused", "My refund was refused, I want a refund.")
    middle = open_ticket(admin, ann, "Order", "Refund please, the refund is late.")
    open_ticket(admin, ann, "Unrelated", "Nothing here.")
    api = ApiClient(client, admin)

    ranked = ids(search(api, "refund"))
    assert ranked == [strong.id, middle.id, weak.id]

    page1 = ok(api.get("/api/tickets?q=refund&limit=2"))
    page2 = ok(api.get(f"/api/tickets?q=refund&limit=2&cursor={page1['next_cursor']}"))
    assert ids(page1["items"]) + ids(page2["items"]) == ranked
    assert page2["next_cursor"] is None
    # A cursor of the plain list is not one of a search.
    plain = ok(api.get("/api/tickets?limit=1"))
    assert_error(api.get(f"/api/tickets?q=refund&cursor={plain['next_cursor']}"), 422)


def test_an_organization_manager_finds_colleagues_tickets_best_first_and_no_others(
    client, admin, ann, bob, factory
):
    """A manager's matches are spread among other people's (ids not in a row), and ranked
    among themselves only: an outsider's better matches neither show nor disturb the order."""
    organization = organizations.do_create_organization(admin, name="Acme")
    colleague = factory.customer(name="Colleague")
    organizations.do_add_member(admin, organization.id, ann.id, manager=True)
    organizations.do_add_member(admin, organization.id, colleague.id)
    outsider_best = open_ticket(admin, bob, "Refund refund", "Refund, refund, refund.")
    weak = open_ticket(admin, colleague, "Invoice", "A question about a refund for an order.")
    open_ticket(admin, bob, "Refund refused", "My refund was refused, I want a refund.")
    strong = open_ticket(admin, colleague, "Refund refused", "Refund refused, I want a refund.")
    open_ticket(admin, bob, "Order", "Refund please, the refund is late.")
    middle = open_ticket(admin, ann, "Order", "Refund please, the refund is late.")
    open_ticket(admin, colleague, "Unrelated", "Nothing here.")

    assert ids(search(ApiClient(client, ann), "refund")) == [strong.id, middle.id, weak.id]
    assert ids(search(ApiClient(client, admin), "refund"))[0] == outsider_best.id


def all_pages(api: ApiClient, q: str, limit: int) -> list[list[int]]:
    pages, cursor = [], None
    while True:
        params = {"q": q, "limit": limit, **({"cursor": cursor} if cursor else {})}
        page = ok(api.get("/api/tickets", query_string=params))
        pages.append(ids(page["items"]))
        assert all(item["snippet"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return pages


def test_a_common_word_ranks_its_newest_matches_then_lists_older_ones_newest_first(
    client, admin, ann, monkeypatch
):
    # Only the newest RANK_WINDOW matches are ranked (1000; 3 here): at 1M tickets a common
    # word matches most of them, and scoring every match took seconds.
    monkeypatch.setattr(ticket_search, "RANK_WINDOW", 3)
    best_but_old = open_ticket(admin, ann, "Printer printer", "The printer, printer, printer.")
    older = open_ticket(admin, ann, "Printer", "A printer question.")
    old = open_ticket(admin, ann, "Printer", "Another printer question.")
    weak = open_ticket(admin, ann, "Toner", "Toner is low, also on the other printer.")
    strong = open_ticket(admin, ann, "Printer printer", "My printer: the printer jams.")
    newest = open_ticket(admin, ann, "Printer", "Printer offline.")
    open_ticket(admin, ann, "Unrelated", "Nothing here.")
    api = ApiClient(client, admin)

    everything = [strong.id, newest.id, weak.id, old.id, older.id, best_but_old.id]
    assert ids(search(api, "printer")) == everything
    # Pages go through every match once, in that order, also across the window's end.
    for limit in (1, 2, 4):
        pages = all_pages(api, "printer", limit)
        assert [i for page in pages for i in page] == everything, limit
        assert [len(page) for page in pages[:-1]] == [limit] * (len(pages) - 1), limit
    # With every match in the window, all are ranked: the old best match comes first.
    monkeypatch.setattr(ticket_search, "RANK_WINDOW", 6)
    assert ids(search(api, "printer"))[0] == best_but_old.id


def test_filters_still_apply_to_a_search(client, admin, ann, factory):
    team = factory.team("Billing")
    in_team = tickets.do_create_ticket(
        admin, subject="Refund", description="x", requester_id=ann.id, team_id=team.id
    )
    open_ticket(admin, ann, "Refund", "y")
    api = ApiClient(client, admin)
    assert ids(search(api, "refund", team_id=team.id)) == [in_team.id]


def test_snippet_is_escaped_html_with_marks(client, admin, ann):
    ticket = open_ticket(admin, ann, "Form", "Is 2 < 3 & 5 > 4? <script>x()</script> zebra.")
    found = search(ApiClient(client, admin), "zebra")
    assert ids(found) == [ticket.id]
    snippet = found[0]["snippet"]
    assert "<script>" not in snippet  # escaped (SQLite) or dropped as a tag (PostgreSQL)
    assert "2 &lt; 3 &amp; 5 &gt; 4" in snippet
    assert "<mark>zebra</mark>" in snippet
    # Without q there is no snippet at all.
    assert "snippet" not in ok(ApiClient(client, admin).get("/api/tickets"))["items"][0]


def test_customers_never_find_internal_notes(client, admin, ann):
    ticket = open_ticket(admin, ann, "Delivery", "Where is my parcel?")
    conversation.do_add_message(admin, ticket.id, "Courier lost it, marmalade", internal=True)
    conversation.do_add_message(admin, ticket.id, "It is on its way.")

    staff = search(ApiClient(client, admin), "marmalade")
    assert ids(staff) == [ticket.id]
    assert "<mark>marmalade</mark>" in staff[0]["snippet"]

    customer = ApiClient(client, ann)
    assert search(customer, "marmalade") == []
    assert search(customer, "courier lost") == []
    # Words of a note and of the public text together: the note's words do not count.
    assert search(customer, "parcel marmalade") == []
    found = search(customer, "parcel")
    assert ids(found) == [ticket.id]
    assert "marmalade" not in found[0]["snippet"]
    assert "ourier" not in found[0]["snippet"]


def test_customers_never_find_other_peoples_tickets(client, admin, ann, bob):
    bobs = open_ticket(admin, bob, "Gizmo broken", "The gizmo sparks.")
    annes = open_ticket(admin, ann, "Gizmo question", "Which gizmo should I buy?")

    assert ids(search(ApiClient(client, ann), "gizmo")) == [annes.id]
    assert search(ApiClient(client, ann), str(bobs.id)) == []
    assert search(ApiClient(client, ann), "bob@globex.test") == []
    assert set(ids(search(ApiClient(client, admin), "gizmo"))) == {annes.id, bobs.id}


def test_query_syntax_is_plain_text(client, admin, ann):
    ticket = open_ticket(admin, ann, "Quotes", 'He said "NEAR" OR -minus * star')
    api = ApiClient(client, admin)
    for q in ('"NEAR"', "OR -minus", "star*", "NEAR(", "{subject}: x", "'", "&|!"):
        resp = api.get("/api/tickets", query_string={"q": q})
        assert resp.status_code == 200, (q, resp.get_data(as_text=True))
    assert ids(search(api, '"near" or')) == [ticket.id]


def test_a_renamed_requester_is_found_by_the_new_name(client, admin, ann, db_session):
    ticket = open_ticket(admin, ann, "Hello", "Hi.")
    ann.name = "Ann Quixote"
    db_session.commit()
    assert ids(search(ApiClient(client, admin), "quixote")) == [ticket.id]


def test_queue_and_portal_show_the_snippet(client, admin, ann):
    ticket = open_ticket(admin, ann, "Laptop", "The hinge of my laptop squeaks.")
    web_login(client, admin)
    page = client.get("/agent/?q=squeaks").get_data(as_text=True)
    assert f"#{ticket.id}" in page
    assert "<mark>squeaks</mark>" in page
    client.post("/logout", data={"csrf_token": csrf_token(client, "/agent/")})

    web_login(client, ann)
    portal = client.get("/portal/?q=squeaks").get_data(as_text=True)
    assert "Laptop" in portal
