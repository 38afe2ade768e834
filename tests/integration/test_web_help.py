"""The help center pages and ticket deflection, through the Flask test client: who reads which
articles on every page and in the suggestions, search with highlighted snippets, votes, bad
input, suggestion links recording their opening, the settle task, and the demo articles."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from autocrm.demo import seed
from autocrm.extensions import db
from autocrm.kb import articles, categories, votes
from autocrm.kb.models import Article, ArticleVisibility, KbCategory, KbSuggestionEvent
from autocrm.people.models import User
from autocrm.tickets.models import Ticket
from tests.factories import Factory, csrf_token, web_login
from web.help_center import safe_snippet
from workers.tasks import settle_kb_suggestions


@pytest.fixture(autouse=True)
def _fresh_login_limit(fresh_login_limit: None) -> None:
    """Tests log in; the login rate limit must not carry over between them."""


def new_client(app: Flask) -> FlaskClient:
    """Another browser: its own cookies (``client`` is already the fresh-``g`` class)."""
    return app.test_client()


def log_in(client: FlaskClient, user: User) -> str:
    """Log in through the login form; returns the session's CSRF token."""
    web_login(client, user)
    return csrf_token(client, "/notifications")


def text_of(response: Any) -> str:
    return response.get_data(as_text=True)


@pytest.fixture
def agent(factory: Factory) -> User:
    return factory.agent(name="Alex Agent")


@pytest.fixture
def customer(factory: Factory) -> User:
    return factory.customer(name="Casey Customer")


@pytest.fixture
def category(factory: Factory, db_session: Any) -> KbCategory:
    return categories.do_create_category(factory.admin(), name="Kitchen", position=1)


def write(
    author: User,
    title: str,
    body: str,
    *,
    category: KbCategory | None = None,
    visibility: str = "public",
    status: str = "published",
) -> Article:
    return articles.do_create_article(
        author,
        title=title,
        body=body,
        category_id=category.id if category else None,
        visibility=visibility,
        status=status,
    )


@pytest.fixture
def shelf(agent: User, category: KbCategory) -> dict[str, Article]:
    """One article of each kind, all in one category, all about kettles."""
    return {
        "public": write(agent, "Descale the public kettle", "Use vinegar on the kettle.",
                        category=category),
        "customers": write(agent, "Warranty for customers", "Your kettle warranty lasts a year.",
                           category=category, visibility="customers"),
        "internal": write(agent, "Secret kettle playbook", "Agents: replace any kettle free.",
                          category=category, visibility="internal"),
        "draft": write(agent, "Unfinished kettle notes", "Kettle notes, not ready.",
                       category=category, status="draft"),
    }  # fmt: skip


# -- who sees what -----------------------------------------------------------------------------


def visible_titles(client: FlaskClient, shelf: dict[str, Article], url: str) -> set[str]:
    response = client.get(url)
    assert response.status_code == 200, url
    page = text_of(response)
    return {kind for kind, article in shelf.items() if article.title in page}


def suggested_titles(client: FlaskClient, q: str) -> set[str]:
    response = client.get("/help/suggest", query_string={"q": q})
    assert response.status_code == 200, text_of(response)
    return {item["title"] for item in response.json["items"]}


@pytest.mark.parametrize(
    ("reader", "expected"),
    [
        ("anonymous", {"public"}),
        ("customer", {"public", "customers"}),
        ("agent", {"public", "customers"}),  # staff read internal ones elsewhere, never here
    ],
)
def test_internal_and_draft_articles_are_on_no_help_page_nor_in_suggestions(
    app, client, shelf, category, customer, agent, reader, expected
):
    if reader != "anonymous":
        log_in(client, {"customer": customer, "agent": agent}[reader])

    for url in ("/help/", f"/help/categories/{category.id}", "/help/search?q=kettle"):
        assert visible_titles(client, shelf, url) == expected, url
    titles = suggested_titles(client, "my kettle is broken")
    assert titles == {shelf[kind].title for kind in expected}
    for kind, article in shelf.items():
        response = client.get(f"/help/articles/{article.id}")
        assert response.status_code == (200 if kind in expected else 404), kind
        if kind not in expected:
            assert article.title not in text_of(response)
            assert article.body not in text_of(response)


def test_a_hidden_article_cannot_be_voted_on_or_opened_as_a_suggestion(client, shelf, customer):
    csrf = log_in(client, customer)
    internal = shelf["internal"]

    vote = client.post(
        f"/help/articles/{internal.id}/vote", data={"csrf_token": csrf, "helpful": "yes"}
    )
    opened = client.get(f"/help/articles/{internal.id}?suggested=whatever")

    assert vote.status_code == 404 and opened.status_code == 404
    assert votes.vote_summary(None, shelf["public"].id).helpful_count == 0


# -- pages -------------------------------------------------------------------------------------


def test_the_home_page_lists_topics_with_their_articles_and_a_search_box(client, shelf, category):
    page = text_of(client.get("/help/"))

    assert 'action="/help/search"' in page and 'name="q"' in page
    assert f'href="/help/categories/{category.id}"' in page
    assert "1 article<" in page  # the anonymous reader's count: the public one only
    assert f'href="/help/articles/{shelf["public"].id}"' in page
    assert "Log in</a> to see all our articles" in page


def test_a_category_without_readable_articles_is_not_offered(client, agent, factory):
    empty = categories.do_create_category(factory.admin(), name="Staff only", position=3)
    write(agent, "Only for us", "internal stuff", category=empty, visibility="internal")

    page = text_of(client.get("/help/"))

    assert "Staff only" not in page
    assert "No articles in this topic yet." in text_of(client.get(f"/help/categories/{empty.id}"))


def test_the_article_page_renders_markdown_with_category_and_date(client, agent, category):
    article = write(
        agent, "Clean the filter", "Rinse the **filter** <script>alert(1)</script>",
        category=category,
    )  # fmt: skip

    page = text_of(client.get(f"/help/articles/{article.id}"))

    assert "<h1>Clean the filter</h1>" in page
    assert "<strong>filter</strong>" in page
    assert "<script>alert" not in page
    assert f'href="/help/categories/{category.id}">Kitchen</a>' in page
    assert f'datetime="{article.updated_at.isoformat()}"' in page


def test_category_pages_are_paged_by_title(client, agent, category):
    for n in range(21):
        write(agent, f"Tip {n:02d}", "A kitchen tip.", category=category)
    url = f"/help/categories/{category.id}"

    first, second = text_of(client.get(url)), text_of(client.get(f"{url}?page=2"))

    assert "Tip 00" in first and "Tip 19" in first and "Tip 20" not in first
    assert f'href="{url}?page=2"' in first
    assert "Tip 20" in second and "Tip 00" not in second and "Previous page" in second


def test_customers_get_the_portal_layout_and_others_the_plain_one(client, customer, agent, app):
    anonymous = text_of(new_client(app).get("/help/"))
    assert "portal.css" not in anonymous and "help.css" in anonymous

    log_in(client, customer)
    portal = text_of(client.get("/help/"))
    assert "portal.css" in portal and "My tickets" in portal
    assert re.search(r'href="/help/"[^>]*aria-current="page"[^>]*>Help center<', portal)

    staff = new_client(app)
    log_in(staff, agent)
    staff_page = text_of(staff.get("/help/"))
    assert "portal.css" not in staff_page and "Queue" in staff_page


def test_the_portal_nav_links_the_help_center(client, customer):
    log_in(client, customer)
    assert 'href="/help/">Help center</a>' in text_of(client.get("/portal/"))


# -- search ------------------------------------------------------------------------------------


def test_search_finds_a_word_of_the_body_and_highlights_it(client, agent):
    found = write(agent, "Milk frother", "Hold the wand below the surface of the milk.")
    write(agent, "Grinder", "Grind coarse for cold brew.")

    page = text_of(client.get("/help/search?q=wand"))

    assert "Milk frother" in page and "Grinder" not in page
    assert "<mark>wand</mark>" in page
    assert "1 article found." in page
    assert f'href="/help/articles/{found.id}"' in page


def test_search_understands_a_question(client, agent):
    reset = write(agent, "Reset your password", "Choose Forgot password to get a reset link.")
    write(agent, "Two-step login", "Keep your phone at hand.")  # only "your": no match

    page = text_of(client.get("/help/search", query_string={"q": "How do I reset my password?"}))

    assert f'href="/help/articles/{reset.id}"' in page and "Two-step login" not in page
    assert "<mark>password</mark>" in page.lower() and "1 article found." in page


def test_search_in_a_category(client, agent, category):
    write(agent, "Kettle in kitchen", "kettle", category=category)
    write(agent, "Kettle elsewhere", "kettle")

    page = text_of(client.get(f"/help/search?q=kettle&category={category.id}"))

    assert "Kettle in kitchen" in page and "Kettle elsewhere" not in page
    assert "in Kitchen" in page
    topic = text_of(client.get(f"/help/categories/{category.id}"))  # its box searches it
    assert "Search Kitchen</label>" in topic
    assert f'name="category" value="{category.id}"' in topic


def test_snippets_keep_only_the_highlight_markup(client, agent):
    write(agent, "Tray", "The <b>printer</b> tray <script>alert(1)</script> is full.")

    page = text_of(client.get("/help/search?q=printer"))

    assert "<mark>printer</mark>" in page
    assert "<script>alert" not in page and "<b>" not in page


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        ("a <mark>word</mark> &amp; more", "a <mark>word</mark> &amp; more"),
        ("<mark>one</mark> and <mark>two</mark>", "<mark>one</mark> and <mark>two</mark>"),
        ("<mark>open and never closed", "open and never closed"),
        ("</mark>closed first<mark>", "closed first"),
        ("<mark><mark>nested</mark></mark>", "nested"),
        ("<img src=x onerror=alert(1)> <mark>x</mark>", "&lt;img src=x onerror=alert(1)&gt; x"),
        ("&lt;script&gt; <mark>ok</mark>", "&lt;script&gt; <mark>ok</mark>"),
        (None, ""),
    ],
)
def test_safe_snippet_passes_only_escaped_text_and_balanced_marks(snippet, expected):
    assert str(safe_snippet(snippet)) == expected


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ({"q": ""}, "q", "Type a word or two to search for."),
        ({}, "q", "Type a word or two to search for."),
        ({"q": "   "}, "q", "Type a word or two to search for."),
        ({"q": "*** ---"}, "q", "punctuation alone matches nothing"),
        ({"q": "x" * 201}, "q", "under 200 characters"),
        ({"q": "kettle", "category": "abc"}, "category", "no such category"),
        ({"q": "kettle", "category": "999999"}, "category", "no such category"),
    ],
)
def test_bad_searches_get_a_clear_message(client, query, field, message):
    response = client.get("/help/search", query_string=query)

    assert response.status_code == 400
    page = text_of(response)
    assert message in page
    assert f'id="{field}-error"' in page
    if query.get("q", "").strip():
        assert f'value="{html.escape(query["q"][:400])}"' in page  # kept in the box


def test_a_search_without_matches_says_so(client, customer):
    log_in(client, customer)
    page = text_of(client.get("/help/search?q=zeppelin"))
    assert "No articles match your search." in page
    assert 'href="/portal/tickets/new"' in page


@pytest.mark.parametrize("raw", ["abc", "0", "-1", "1.5", "99999999999", "²"])
def test_a_bad_page_number_is_a_clear_400(client, category, raw):
    response = client.get(f"/help/categories/{category.id}", query_string={"page": raw})
    assert response.status_code == 400
    assert "is not a page number" in text_of(response)


def test_a_page_past_the_end_and_an_unknown_category(client, shelf, category):
    beyond = client.get(f"/help/categories/{category.id}?page=5")
    assert beyond.status_code == 200 and "no more articles here" in text_of(beyond)
    assert client.get("/help/categories/999999").status_code == 404
    assert client.get("/help/articles/999999").status_code == 404


# -- votes -------------------------------------------------------------------------------------


def vote(client: FlaskClient, article: Article, csrf: str, answer: str, **kw: Any) -> Any:
    return client.post(
        f"/help/articles/{article.id}/vote", data={"csrf_token": csrf, "helpful": answer}, **kw
    )


def test_a_customer_votes_once_and_can_change_the_answer(client, app, shelf, customer, factory):
    article = shelf["public"]
    csrf = log_in(client, customer)

    response = vote(client, article, csrf, "yes")
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/help/articles/{article.id}#helpful")
    page = text_of(client.get(f"/help/articles/{article.id}"))
    assert "You answered Yes." in page and "1 of 1 reader found this helpful." in page
    assert 'value="yes" class="secondary" aria-pressed="true"' in page

    other = new_client(app)
    vote(other, article, log_in(other, factory.customer()), "yes")
    vote(client, article, csrf, "no")

    page = text_of(client.get(f"/help/articles/{article.id}"))
    assert "You answered No." in page and "1 of 2 readers found this helpful." in page
    summary = votes.vote_summary(customer, article.id)
    assert (summary.helpful_count, summary.not_helpful_count, summary.mine) == (1, 1, False)


def test_voting_from_javascript_answers_json(client, shelf, customer):
    csrf = log_in(client, customer)

    response = vote(client, shelf["public"], csrf, "no", headers={"Accept": "application/json"})

    assert response.status_code == 200
    assert response.json == {
        "article_id": shelf["public"].id, "helpful_count": 0, "not_helpful_count": 1,
        "mine": False,
    }  # fmt: skip


def test_anonymous_readers_are_asked_to_log_in_to_vote(client, shelf):
    article = shelf["public"]
    page = text_of(client.get(f"/help/articles/{article.id}"))
    assert "Log in</a> to tell us whether this article helped." in page
    assert "Nobody has answered yet." in page
    assert 'name="helpful"' not in page

    response = client.post(
        f"/help/articles/{article.id}/vote",
        data={"csrf_token": csrf_token(client), "helpful": "yes"},
    )
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert location.path == "/login"
    assert parse_qs(location.query)["next"] == [f"/help/articles/{article.id}"]


@pytest.mark.parametrize("answer", ["", "maybe", "YES"])
def test_a_bad_vote_is_a_clear_error_next_to_the_buttons(client, shelf, customer, answer):
    csrf = log_in(client, customer)

    response = vote(client, shelf["public"], csrf, answer)

    assert response.status_code == 422
    page = text_of(response)
    assert 'id="helpful-error">Please answer Yes or No.' in page
    assert votes.vote_summary(customer, shelf["public"].id).mine is None


def test_a_vote_without_csrf_token_is_refused(client, shelf, customer):
    log_in(client, customer)
    response = client.post(f"/help/articles/{shelf['public'].id}/vote", data={"helpful": "yes"})
    assert response.status_code == 400
    assert votes.vote_summary(customer, shelf["public"].id).mine is None


# -- suggestions and deflection ----------------------------------------------------------------


def test_suggestions_need_three_characters_and_stop_at_five(client, agent):
    for n in range(7):
        write(agent, f"Blender tip {n}", "blender")

    assert client.get("/help/suggest?q=bl").json["items"] == []
    assert client.get("/help/suggest", query_string={"q": " b  "}).json["items"] == []
    assert len(client.get("/help/suggest?q=blender").json["items"]) == 5


def test_suggestions_match_any_telling_word_of_a_subject(client, agent, category):
    invoice = write(agent, "Download an invoice", "Invoices are in Billing.", category=category)
    write(agent, "Descale", "vinegar")

    items = client.get("/help/suggest?q=Where can I find my invoice").json["items"]

    assert [(i["id"], i["title"], i["category"]) for i in items] == [
        (invoice.id, "Download an invoice", "Kitchen")
    ]
    # Words that say nothing about the topic suggest nothing.
    assert client.get("/help/suggest?q=how do I do this").json["items"] == []


def test_a_strong_suggestion_hides_articles_sharing_only_a_common_word(client, agent):
    crash = write(agent, "The app crashes when exporting", "Export a shorter period.")
    write(agent, "Two-step verification", "Use an authenticator app.")

    items = client.get("/help/suggest?q=The app crashes on export").json["items"]

    assert [item["id"] for item in items] == [crash.id]


def test_suggestions_holding_more_of_the_words_come_first(client, agent):
    title_only = write(agent, "Printer", "The printer, the printer, the printer.")
    both = write(agent, "Paper path", "Clear a printer jam from the back.")

    items = client.get("/help/suggest?q=printer jam").json["items"]

    assert [item["id"] for item in items] == [both.id, title_only.id]


def test_a_too_long_suggestion_query_is_a_400_naming_q(client):
    response = client.get("/help/suggest", query_string={"q": "x" * 201})
    assert response.status_code == 400
    assert "q" in response.json["errors"]


def suggestion_link(client: FlaskClient, q: str, article: Article) -> str:
    response = client.get("/help/suggest", query_string={"q": q})
    assert response.headers["Cache-Control"] == "private, no-store"
    links = [item["url"] for item in response.json["items"] if item["id"] == article.id]
    assert links, response.json
    return links[0]


def events_of(user: User | int) -> list[KbSuggestionEvent]:
    user_id = user if isinstance(user, int) else user.id
    return list(
        db.session.scalars(select(KbSuggestionEvent).where(KbSuggestionEvent.user_id == user_id))
    )


def test_opening_a_suggestion_records_it_once_with_the_query(client, shelf, customer):
    log_in(client, customer)
    article = shelf["customers"]
    link = suggestion_link(client, "  kettle warranty  ", article)
    assert "suggested=" in link

    response = client.get(link)

    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/help/articles/{article.id}")
    [event] = events_of(customer)
    assert (event.article_id, event.query, event.ticket_filed) == (
        article.id, "kettle warranty", None
    )  # fmt: skip
    client.get(f"/help/articles/{article.id}")  # reading it again is no new opening
    assert len(events_of(customer)) == 1


def test_a_suggestion_link_records_nothing_for_anyone_else(app, client, shelf, customer, factory):
    log_in(client, customer)
    article = shelf["public"]
    link = suggestion_link(client, "kettle", article)
    intruder = factory.customer()
    other = new_client(app)
    log_in(other, intruder)

    forged = link.replace("suggested=", "suggested=x")
    for who, url in ((other, link), (new_client(app), link), (client, forged)):
        response = who.get(url)
        assert response.status_code == 303  # still leads to the article
    elsewhere = link.replace(f"/articles/{article.id}", f"/articles/{shelf['customers'].id}")
    assert client.get(elsewhere).status_code == 303

    assert events_of(customer) == [] and events_of(intruder) == []


def test_anonymous_suggestions_are_plain_links(client, shelf):
    [item] = client.get("/help/suggest?q=descale").json["items"]
    assert item["url"] == f"/help/articles/{shelf['public'].id}"


def test_filing_a_ticket_after_opening_a_suggestion_is_not_a_deflection(
    app, client, shelf, customer, factory, db_session
):
    csrf = log_in(client, customer)
    client.get(suggestion_link(client, "kettle", shelf["public"]))
    filed = client.post(
        "/portal/tickets/new",
        data={"csrf_token": csrf, "subject": "Kettle", "description": "Still broken.",
              "priority": "normal"},
    )  # fmt: skip
    assert filed.status_code == 302
    helped = factory.customer()
    other = new_client(app)
    log_in(other, helped)
    other.get(suggestion_link(other, "kettle", shelf["public"]))
    ticket = db_session.get(Ticket, int(filed.headers["Location"].rstrip("/").rsplit("/")[-1]))
    a_day_ago = votes.DEFLECTION_WINDOW + timedelta(minutes=1)
    for event in (*events_of(customer), *events_of(helped)):  # a day has passed
        event.opened_at -= a_day_ago
    ticket.created_at -= a_day_ago  # filed a moment after the suggestion was opened
    db_session.commit()
    filer_id, helped_id = customer.id, helped.id

    # The task runs in an app context of its own, which ends the session's objects.
    assert settle_kb_suggestions() == 2
    assert settle_kb_suggestions() == 0  # a repeat changes nothing

    assert [e.ticket_filed for e in events_of(filer_id)] == [True]
    assert [e.ticket_filed for e in events_of(helped_id)] == [False]  # deflected


def test_the_settle_task_is_on_the_beat_schedule():
    import celeryconfig

    schedule = celeryconfig.settings["beat_schedule"]
    assert any(e["task"] == "workers.tasks.settle_kb_suggestions" for e in schedule.values())


def test_the_new_ticket_page_has_the_suggestion_box_and_works_without_it(client, customer):
    log_in(client, customer)
    page = text_of(client.get("/portal/tickets/new"))

    assert 'data-suggest-url="/help/suggest"' in page
    assert 'id="suggestion-status" role="status" aria-live="polite"' in page
    assert 'href="/help/">help center</a>' in page


# -- demo data ---------------------------------------------------------------------------------


def test_the_demo_knowledge_base_is_seeded_once(client, factory, db_session):
    admin, author = factory.admin(), factory.agent()

    seed.seed_knowledge_base(admin, author)
    counts = (
        db_session.scalar(select(func.count(Article.id))),
        db_session.scalar(select(func.count(KbCategory.id))),
    )
    seed.seed_knowledge_base(admin, author)

    assert counts == (len(seed.DEMO_ARTICLES), len(seed.DEMO_KB_CATEGORIES))
    assert (
        db_session.scalar(select(func.count(Article.id))),
        db_session.scalar(select(func.count(KbCategory.id))),
    ) == counts
    kinds = {a.visibility for a in seed.DEMO_ARTICLES}
    assert kinds == set(ArticleVisibility)
    page = text_of(client.get("/help/search?q=invoice"))
    assert "Download an invoice" not in page  # customers only
    assert "Refunds for duplicate charges" in text_of(client.get("/help/search?q=refund"))
    assert "playbook" not in text_of(client.get("/help/search?q=billing"))
