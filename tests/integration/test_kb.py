"""The knowledge base over the API: search with ranking and snippets, visibility, writes,
revisions, votes and suggestion events (on SQLite FTS5 and PostgreSQL tsvector alike)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from autocrm.kb import votes
from autocrm.kb.models import KbSuggestionEvent
from tests.factories import ApiClient, assert_error


@pytest.fixture
def agent(client, factory):
    return ApiClient(client, factory.agent())


@pytest.fixture
def customer(client, factory):
    return ApiClient(client, factory.customer())


def write(agent, **fields):
    body = {"status": "published", "visibility": "public", **fields}
    response = agent.post("/api/kb/articles", json=body)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.json


def ids(response):
    assert response.status_code == 200, response.get_data(as_text=True)
    return [item["id"] for item in response.json["items"]]


def test_a_customer_finds_an_article_by_a_word_of_its_body(agent, customer):
    article = write(agent, title="Resetting things", body="Open settings and choose password.")
    write(agent, title="Invoices", body="Where to download an invoice.")

    response = customer.get("/api/kb/articles?q=Password")

    assert ids(response) == [article["id"]]
    assert "<mark>password</mark>" in response.json["items"][0]["snippet"].lower()


def test_a_title_match_ranks_first(agent, customer):
    in_body = write(agent, title="Account basics", body="Your router may need a restart.")
    in_title = write(agent, title="Router setup", body="Plug it in and wait for the light.")

    assert ids(customer.get("/api/kb/articles?q=router")) == [in_title["id"], in_body["id"]]


def test_snippets_escape_the_text_and_highlight_matches(agent, client):
    write(agent, title="Markup", body="Type <script>alert(1)</script> near the printer tray.")

    item = client.get("/api/kb/articles?q=printer").json["items"][0]

    # SQLite's snippet() keeps the tag as (escaped) text; ts_headline drops tags.
    assert "<script" not in item["snippet"]
    assert "<mark>printer</mark>" in item["snippet"]


def test_snippets_read_as_text_not_markdown(agent, client):
    write(agent, title="Paper", body="Open **Settings** and see [the `tray` guide](/help/x).")

    item = client.get("/api/kb/articles?q=tray").json["items"][0]

    assert "Open Settings and see the <mark>tray</mark> guide" in item["snippet"]


@pytest.mark.parametrize(
    "q", ['"', '"unbalanced', "print*", "(printer", "NEAR(a b)", "-printer", "a OR", "^", "*", ":"]
)
def test_query_syntax_in_user_input_is_plain_text(agent, client, q):
    write(agent, title="Printer", body="The printer prints.")

    response = client.get("/api/kb/articles", query_string={"q": q})

    assert response.status_code == 200, response.get_data(as_text=True)


def test_special_characters_around_words_still_find_them(agent, client):
    article = write(agent, title="Printer", body="The printer prints.")

    assert ids(client.get("/api/kb/articles", query_string={"q": '"printer* -('})) == [
        article["id"]
    ]


def test_internal_and_draft_articles_never_reach_customers_or_anonymous_readers(
    agent, customer, client
):
    public = write(agent, title="Billing public", body="billing")
    for_customers = write(agent, title="Billing customers", body="billing", visibility="customers")
    internal = write(agent, title="Billing internal", body="billing", visibility="internal")
    draft = write(agent, title="Billing draft", body="billing", status="draft")

    assert set(ids(client.get("/api/kb/articles?q=billing"))) == {public["id"]}
    assert set(ids(customer.get("/api/kb/articles?q=billing"))) == {
        public["id"], for_customers["id"]
    }  # fmt: skip
    assert set(ids(agent.get("/api/kb/articles?q=billing"))) == {
        public["id"], for_customers["id"], internal["id"], draft["id"]
    }  # fmt: skip
    assert set(ids(client.get("/api/kb/articles"))) == {public["id"]}  # listing, no q
    for hidden in (internal, draft):
        assert_error(customer.get(f"/api/kb/articles/{hidden['id']}"), 404)
        assert_error(client.get(f"/api/kb/articles/{hidden['id']}"), 404)
    assert_error(client.get(f"/api/kb/articles/{for_customers['id']}"), 404)
    assert customer.get(f"/api/kb/articles/{for_customers['id']}").status_code == 200
    assert client.get(f"/api/kb/articles/{public['id']}").json["title"] == "Billing public"


def test_a_bad_token_is_refused_even_on_public_reads(client):
    response = client.get("/api/kb/articles", headers={"Authorization": "Bearer nonsense"})
    assert_error(response, 401)


def test_every_update_records_a_revision_and_search_follows_it(agent, client):
    article = write(agent, title="Old title", body="first text")
    url = f"/api/kb/articles/{article['id']}"

    assert agent.patch(url, json={"body": "second text about kettles"}).status_code == 200
    assert agent.patch(url, json={"title": "New title"}).status_code == 200

    revisions = agent.get(f"{url}/revisions").json
    assert [(r["number"], r["title"], r["body"]) for r in revisions] == [
        (1, "Old title", "first text"),
        (2, "Old title", "second text about kettles"),
        (3, "New title", "second text about kettles"),
    ]
    assert ids(client.get("/api/kb/articles?q=kettles")) == [article["id"]]
    assert ids(client.get("/api/kb/articles?q=first")) == []


def test_revisions_record_category_visibility_and_tags(agent, client, factory):
    admin = ApiClient(client, factory.admin())
    billing = admin.post("/api/kb/categories", json={"name": "Billing"}).json
    accounts = admin.post("/api/kb/categories", json={"name": "Accounts"}).json
    article = write(agent, title="Refunds", body="text", category_id=billing["id"], tags=["old"])
    url = f"/api/kb/articles/{article['id']}"
    change = {"category_id": accounts["id"], "visibility": "internal", "tags": ["Refund", "x"]}
    assert agent.patch(url, json=change).status_code == 200
    assert agent.patch(url, json={"category_id": None, "tags": []}).status_code == 200
    # Renamed since: each revision keeps the name its category had when it was saved.
    admin.patch(f"/api/kb/categories/{billing['id']}", json={"name": "Invoices"})

    revisions = agent.get(f"{url}/revisions").json
    fields = ("number", "category_id", "category_name", "visibility", "tags")
    assert [tuple(r[f] for f in fields) for r in revisions] == [
        (1, billing["id"], "Billing", "public", ["old"]),
        (2, accounts["id"], "Accounts", "internal", ["refund", "x"]),
        (3, None, None, "internal", []),
    ]


def test_an_edit_of_a_stale_revision_is_refused_and_the_newer_text_kept(agent, client, factory):
    other = ApiClient(client, factory.agent())
    article = write(agent, title="Refunds", body="Refunds take 5 days.")
    url = f"/api/kb/articles/{article['id']}"
    opened = agent.get(url)
    assert opened.headers["ETag"] == '"1"'
    assert other.get(url).headers["ETag"] == '"1"'  # both editors start from revision 1

    saved = agent.patch(url, json={"body": "Refunds take 3 days."}, headers={"If-Match": '"1"'})
    assert (saved.status_code, saved.headers["ETag"]) == (200, '"2"')
    stale = other.patch(url, json={"body": "Refunds take a week."}, headers={"If-Match": '"1"'})
    error = assert_error(stale, 409)
    assert "revision" in error["errors"]
    as_field = other.patch(url, json={"body": "Refunds take a week.", "revision": 1})
    assert_error(as_field, 409)

    assert agent.get(url).json["body"] == "Refunds take 3 days."
    assert len(agent.get(f"{url}/revisions").json) == 2
    current = other.patch(url, json={"body": "Refunds take a week."}, headers={"If-Match": '"2"'})
    assert (current.status_code, current.headers["ETag"]) == (200, '"3"')


@pytest.mark.parametrize(
    ("headers", "body", "status", "field"),
    [
        ({"If-Match": "yesterday"}, {}, 412, "If-Match"),
        ({}, {"revision": "two"}, 422, "revision"),
        ({}, {"revision": 0}, 422, "revision"),
    ],
)
def test_a_malformed_expected_revision_names_what_is_wrong(agent, headers, body, status, field):
    article = write(agent, title="Shipping", body="We ship daily.")
    url = f"/api/kb/articles/{article['id']}"

    response = agent.patch(url, json={"title": "Shipping times", **body}, headers=headers)

    assert field in str(assert_error(response, status)["errors"])
    assert agent.get(url).json["title"] == "Shipping"


def test_publishing_makes_a_draft_visible(agent, client):
    draft = write(agent, title="Soon", body="coming soon", status="draft")
    url = f"/api/kb/articles/{draft['id']}"
    assert_error(client.get(url), 404)

    published = agent.patch(url, json={"status": "published"}).json

    assert published["published_at"] is not None
    assert client.get(url).status_code == 200


def test_votes_are_one_per_user_and_replaced(agent, customer, client, factory):
    article = write(agent, title="Helpful?", body="maybe")
    url = f"/api/kb/articles/{article['id']}/votes"

    assert customer.post(url, json={"helpful": True}).json["helpful_count"] == 1
    tally = customer.post(url, json={"helpful": False}).json
    other = ApiClient(client, factory.customer()).post(url, json={"helpful": False}).json

    assert (tally["helpful_count"], tally["not_helpful_count"]) == (0, 1)
    assert (other["helpful_count"], other["not_helpful_count"]) == (0, 2)
    assert_error(customer.post(url, json={"helpful": "yes"}), 422)


def test_suggestion_events_settle_into_deflections(agent, customer, factory, db_session):
    article = write(agent, title="Fix it yourself", body="easy fix")
    response = customer.post(
        "/api/kb/suggestions/opened", json={"article_id": article["id"], "query": "fix"}
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    event = db_session.get(KbSuggestionEvent, response.json["id"])
    assert event.ticket_filed is None

    assert votes.do_settle_suggestions(event.opened_at + timedelta(hours=1)) == 0
    assert votes.do_settle_suggestions(event.opened_at + votes.DEFLECTION_WINDOW) == 1
    assert event.ticket_filed is False  # deflected: no ticket followed

    second = votes.do_record_suggestion_opened(customer.user, article["id"], "fix")
    factory.ticket(customer.user)
    votes.do_settle_suggestions(second.opened_at + votes.DEFLECTION_WINDOW)
    assert second.ticket_filed is True


def test_writes_are_for_staff_only(agent, customer, client, factory):
    article = write(agent, title="Staff made", body="text")
    url = f"/api/kb/articles/{article['id']}"

    assert_error(customer.post("/api/kb/articles", json={"title": "x", "body": "y"}), 403)
    assert_error(customer.patch(url, json={"title": "Mine now"}), 403)
    assert_error(customer.delete(url), 403)
    assert_error(customer.get(f"{url}/revisions"), 403)
    assert_error(client.post("/api/kb/articles", json={"title": "x", "body": "y"}), 401)
    assert_error(agent.post("/api/kb/categories", json={"name": "Billing"}), 403)

    assert agent.delete(url).json == {"id": article["id"], "deleted": True}
    assert_error(client.get(url), 404)


def test_admins_manage_categories_everyone_lists_them(client, factory, agent):
    admin = ApiClient(client, factory.admin())
    category = admin.post("/api/kb/categories", json={"name": "Billing", "position": 2}).json
    admin.post("/api/kb/categories", json={"name": "Accounts", "position": 1})
    assert_error(admin.post("/api/kb/categories", json={"name": "billing"}), 422)
    renamed = admin.patch(f"/api/kb/categories/{category['id']}", json={"name": "Invoices"})
    assert renamed.json["name"] == "Invoices"

    assert [c["name"] for c in client.get("/api/kb/categories").json] == ["Accounts", "Invoices"]

    in_category = write(agent, title="Refunds", body="refund", category_id=category["id"])
    write(agent, title="Other refunds", body="refund")
    listed = client.get(f"/api/kb/articles?q=refund&category_id={category['id']}")
    assert ids(listed) == [in_category["id"]]


def test_a_public_reply_linking_an_internal_article_is_refused_at_the_body(agent, client, factory):
    secret = write(agent, title="Escalation phones", body="Call 555.", visibility="internal")
    admin = ApiClient(client, factory.admin())
    ticket = factory.ticket(factory.customer())
    url = f"/api/tickets/{ticket.id}/messages"
    body = f"See http://127.0.0.1:5000/help/articles/{secret['id']}"

    error = assert_error(admin.post(url, json={"body": body}), 422)

    assert f"article {secret['id']} is internal" in error["errors"]["body"][0]
    assert admin.post(url, json={"body": body, "internal": True}).status_code == 201
