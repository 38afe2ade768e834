"""Knowledge-base authoring pages (/agent/kb) and the workspace's knowledge-base search,
through the Flask test client with a real login (session cookie and CSRF tokens)."""

from __future__ import annotations

import html
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select, update

from autocrm.errors import Forbidden, InvalidInput
from autocrm.kb import articles, categories
from autocrm.kb import search as kb_search
from autocrm.kb.models import Article, ArticleRevision, ArticleStatus, ArticleVisibility, KbCategory
from autocrm.tickets import conversation
from tests.factories import Factory, csrf_token, web_login


@pytest.fixture(autouse=True)
def _fresh_login_limit(fresh_login_limit: None) -> None:
    """Every test logs in; the login rate limit must not carry over between them."""


def log_in(client: FlaskClient, user: Any) -> str:
    """Log in through the login form; returns the session's CSRF token."""
    web_login(client, user)
    return csrf_token(client, "/notifications")


def text_of(response: Any) -> str:
    return html.unescape(response.get_data(as_text=True))


@pytest.fixture
def people(factory: Factory) -> dict[str, Any]:
    support = factory.team("Support")
    agent = factory.agent(support, name="Alex Agent")
    customer = factory.customer(name="Casey Customer")
    return {
        "support": support,
        "agent": agent,
        "colleague": factory.agent(support, name="Bea Colleague"),
        "admin": factory.admin(name="Ada Admin"),
        "customer": customer,
        "ticket": factory.ticket(customer, team=support, subject="Cannot export"),
    }


def article(author: Any, **fields: Any) -> Article:
    values = {
        "title": "Exporting reports",
        "body": "Open the report and press the export button.",
        "status": ArticleStatus.PUBLISHED,
        **fields,
    }
    return articles.do_create_article(author, **values)


def form(token: str, **fields: str) -> dict[str, str]:
    return {
        "csrf_token": token,
        "title": "Resetting your password",
        "body": "Open **Settings** and choose *Password*.",
        "category_id": "",
        "visibility": "public",
        "tags": "account, password",
        "action": "draft",
        **fields,
    }


def field_error(page: str, field_id: str) -> str:
    """The error shown at a field (the element its id names), or fail."""
    match = re.search(rf'<small class="kb-field-error" id="{field_id}-error">([^<]*)</small>', page)
    assert match, f"no error at {field_id}"
    return match.group(1)


# -- who may use the pages ---------------------------------------------------------------------

STAFF_GETS = [
    "/agent/kb/",
    "/agent/kb/new",
    "/agent/kb/{id}/edit",
    "/agent/kb/{id}/history",
    "/agent/kb/{id}/delete",
    "/agent/kb/categories",
    "/agent/tickets/{t}/articles.json?q=x",
]


def test_customers_are_sent_away_from_every_authoring_page_and_json_endpoint(client, people):
    item = article(people["agent"])
    token = log_in(client, people["customer"])
    for url in STAFF_GETS:
        response = client.get(url.format(id=item.id, t=people["ticket"].id))
        assert response.status_code == 302, url
        assert "/agent/" not in response.headers["Location"], url
    posts = {
        "/agent/kb/new": form(token),
        f"/agent/kb/{item.id}/edit": form(token, base_revision="1"),
        f"/agent/kb/{item.id}/delete": {"csrf_token": token},
        "/agent/kb/categories": {"csrf_token": token, "name": "Mine"},
    }
    for url, data in posts.items():
        assert client.post(url, data=data).status_code == 302, url
    response = client.post(
        "/agent/kb/preview", json={"body": "*hi*"}, headers={"X-CSRFToken": token}
    )
    assert response.status_code == 302
    assert articles.access_article_by_id(people["agent"], item.id).title == "Exporting reports"


def test_logged_out_visitors_go_to_the_login_page(client, people):
    for url in (
        "/agent/kb/",
        "/agent/kb/new",
        f"/agent/tickets/{people['ticket'].id}/articles.json",
    ):
        response = client.get(url)
        assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_categories_are_for_admins_only(client, people, db_session):
    token = log_in(client, people["agent"])
    assert client.get("/agent/kb/categories").status_code == 404
    response = client.post("/agent/kb/categories", data={"csrf_token": token, "name": "Billing"})
    assert response.status_code == 404
    assert categories.list_categories() == []
    assert "/agent/kb/categories" not in text_of(client.get("/agent/kb/"))  # no link either


# -- the list ----------------------------------------------------------------------------------


def test_the_list_searches_and_filters(client, people):
    agent = people["agent"]
    billing = categories.do_create_category(people["admin"], name="Billing")
    invoices = article(
        agent, title="Invoices", body="Download an invoice as PDF.", category_id=billing.id
    )
    draft = article(agent, title="Refund policy", body="Refunds within 30 days.", status="draft")
    internal = article(agent, title="Escalations", body="Call the lead.", visibility="internal")
    log_in(client, agent)

    page = text_of(client.get("/agent/kb/"))
    order = [int(i) for i in re.findall(r'id="article-(\d+)"', page)]
    assert order == [internal.id, draft.id, invoices.id]  # newest updated first
    assert "Draft" in page and "Internal" in page and "Billing" in page

    page = text_of(client.get("/agent/kb/?q=PDF"))
    assert re.findall(r'id="article-(\d+)"', page) == [str(invoices.id)]
    assert "<mark>PDF</mark>" in page

    def listed(query: str) -> list[int]:
        response = client.get(f"/agent/kb/?{query}")
        assert response.status_code == 200
        return [int(i) for i in re.findall(r'id="article-(\d+)"', response.get_data(as_text=True))]

    assert listed("status=draft") == [draft.id]
    assert listed("visibility=internal") == [internal.id]
    assert listed(f"category={billing.id}") == [invoices.id]
    assert listed("status=published&q=refunds") == []


def walk_pages(client: FlaskClient, url: str) -> tuple[list[int], list[str]]:
    """Follow "Next page" from ``url`` to the end: the article ids in the order listed, and the
    URL of every page."""
    listed: list[int] = []
    urls: list[str] = []
    while url:
        response = client.get(url)
        assert response.status_code == 200, url
        page = response.get_data(as_text=True)
        listed += [int(i) for i in re.findall(r'id="article-(\d+)"', page)]
        urls.append(url)
        assert len(urls) < 10, "the pages never end"
        following = re.search(r'<a href="([^"]*)" rel="next">Next page</a>', page)
        url = html.unescape(following.group(1)) if following else ""
    return listed, urls


def query_of(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def test_the_list_pages_through_every_article_with_the_filters_kept(client, people, db_session):
    agent = people["agent"]
    billing = categories.do_create_category(people["admin"], name="Billing").id
    drafts = [
        article(agent, title=f"Billing draft {n}", category_id=billing, status="draft").id
        for n in range(110)
    ]
    for n in range(12):  # filtered out: published, or in no category
        article(agent, title=f"Billing answer {n}", category_id=billing)
        article(agent, title=f"Loose draft {n}", status="draft")
    # Saved in the same instant across the pages' boundaries: the cursor must tell them apart.
    same_time = db_session.get(Article, drafts[0]).updated_at
    db_session.execute(
        update(Article).where(Article.id.in_(drafts[30:80])).values(updated_at=same_time)
    )
    newest_first = list(
        db_session.scalars(
            select(Article.id)
            .where(Article.id.in_(drafts))
            .order_by(Article.updated_at.desc(), Article.id.desc())
        )
    )
    log_in(client, agent)

    listed, urls = walk_pages(client, f"/agent/kb/?status=draft&category={billing}")

    assert listed == newest_first  # each once, none missing, in order
    assert len(urls) == 3
    for url in urls[1:]:
        assert query_of(url)["status"] == ["draft"]
        assert query_of(url)["category"] == [str(billing)]
    last = text_of(client.get(urls[-1]))
    assert "10 articles on this page, most recently updated first." in last
    assert f'href="/agent/kb/?status=draft&category={billing}">First page</a>' in last


def test_search_results_page_by_relevance_with_the_filters_kept(client, people):
    agent = people["agent"]
    matching = [
        article(
            agent,
            title=f"Note {n}",
            body="refund " * (n % 4 + 1) + "and some other words to weigh against",
            visibility="internal",
        ).id
        for n in range(64)
    ]
    best = article(agent, title="Refund rules", body="Every refund.", visibility="internal").id
    article(agent, title="Public refunds", body="A refund, for customers.")
    article(agent, title="Internal other", body="Nothing here.", visibility="internal")
    log_in(client, agent)

    listed, urls = walk_pages(client, "/agent/kb/?q=refund&visibility=internal")

    assert sorted(listed) == sorted([*matching, best])  # each once, none missing
    assert len(urls) == 2
    assert query_of(urls[1])["q"] == ["refund"]
    assert query_of(urls[1])["visibility"] == ["internal"]
    # In the order the search ranks them, best first: the first page is its top 50.
    ranked = kb_search.search(agent, "refund", 50, visibility=ArticleVisibility.INTERNAL)
    assert listed[:50] == [r.article.id for r in ranked]
    assert listed[0] == best


def test_a_broken_or_foreign_cursor_is_reported_with_a_way_back(client, people):
    agent = people["agent"]
    for n in range(51):
        article(agent, title=f"Refund note {n}", body=f"refund {n}")
    log_in(client, agent)
    page = client.get("/agent/kb/?q=refund").get_data(as_text=True)
    search_cursor = query_of(html.unescape(re.search(r'href="([^"]*)" rel="next"', page)[1]))

    for cursor in ("nonsense", search_cursor["cursor"][0]):  # the search's, without its query
        response = client.get(f"/agent/kb/?status=published&cursor={cursor}")
        assert response.status_code == 422
        page = text_of(response)
        assert "Invalid cursor." in page
        assert 'href="/agent/kb/?status=published">start from the first page</a>' in page


def test_an_unknown_filter_is_reported_at_that_filter(client, people):
    log_in(client, people["agent"])
    response = client.get("/agent/kb/?status=archived&category=abc")
    assert response.status_code == 422
    page = text_of(response)
    assert field_error(page, "kb-f-status") == "Choose a status from the list."
    assert field_error(page, "kb-f-category") == "Choose a category from the list."


# -- writing -----------------------------------------------------------------------------------


def test_an_agent_writes_a_draft_then_publishes_it(client, people, db_session):
    token = log_in(client, people["agent"])
    response = client.post("/agent/kb/new", data=form(token))
    assert response.status_code == 302
    created = db_session.scalar(select(Article).where(Article.title == "Resetting your password"))
    assert created.status is ArticleStatus.DRAFT
    assert list(created.tags) == ["account", "password"]
    assert response.headers["Location"].endswith(f"/agent/kb/{created.id}/edit")
    assert "Draft saved." in text_of(client.get(response.headers["Location"]))

    response = client.post(
        f"/agent/kb/{created.id}/edit", data=form(token, action="publish", base_revision="1")
    )
    assert response.status_code == 302
    db_session.refresh(created)
    assert created.status is ArticleStatus.PUBLISHED
    # Publishing without touching the text keeps one revision.
    assert articles.latest_revision_number(created.id) == 1


def test_field_errors_are_shown_at_the_field_with_the_input_kept(client, people, db_session):
    token = log_in(client, people["agent"])
    data = form(
        token,
        title="   ",
        body="My **carefully** written text",
        tags="ok, bad tag!",
        category_id="nope",
        visibility="secret",
    )
    response = client.post("/agent/kb/new", data=data)
    assert response.status_code == 422
    page = text_of(response)
    assert field_error(page, "kb-title") == "Must not be blank."
    assert "'bad'" not in field_error(page, "kb-tags") and "'tag!'" in field_error(page, "kb-tags")
    assert field_error(page, "kb-category_id") == "Choose a category from the list."
    assert field_error(page, "kb-visibility").startswith("One of public")
    assert "My **carefully** written text</textarea>" in page
    assert 'value="ok, bad tag!"' in page
    assert db_session.scalar(select(func.count()).select_from(Article)) == 0


def test_preview_without_script_renders_and_saves_nothing(client, people, db_session):
    token = log_in(client, people["agent"])
    body = "# Steps\n\n1. Open **Settings**\n\n<script>alert(1)</script>"
    response = client.post("/agent/kb/new", data=form(token, title="", body=body, action="preview"))
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "<h1>Steps</h1>" in page and "<strong>Settings</strong>" in page
    assert "<script>alert" not in page  # escaped in the textarea, dropped from the preview
    assert db_session.scalar(select(func.count()).select_from(Article)) == 0


def test_the_preview_endpoint_renders_sanitized_markdown(client, people):
    token = log_in(client, people["agent"])
    headers = {"X-CSRFToken": token}
    response = client.post(
        "/agent/kb/preview",
        json={"body": "**bold** [x](javascript:alert(1)) <img src=x onerror=alert(1)>"},
        headers=headers,
    )
    assert response.status_code == 200
    rendered = response.get_json()["html"]
    assert "<strong>bold</strong>" in rendered
    assert 'href="javascript' not in rendered and "<img" not in rendered
    too_long = {"body": "x" * (articles.MAX_BODY + 1)}
    assert client.post("/agent/kb/preview", json=too_long, headers=headers).status_code == 422
    assert client.post("/agent/kb/preview", json={"body": "x"}).status_code == 400  # no CSRF


def test_every_edit_is_a_revision_shown_in_the_history_with_a_diff(client, people):
    item = article(people["colleague"], body="Step one.\nStep two.\nStep three.")
    token = log_in(client, people["agent"])
    data = form(
        token,
        title="Exporting reports (new UI)",
        body="Step one.\r\nStep 2, now faster.\r\nStep three.",
        action="publish",
        base_revision="1",
    )
    assert client.post(f"/agent/kb/{item.id}/edit", data=data).status_code == 302

    page = text_of(client.get(f"/agent/kb/{item.id}/history"))
    assert page.index("Revision 2") < page.index("Revision 1")  # newest first
    assert "Alex Agent" in page and "Bea Colleague" in page  # who
    assert (
        "<del>Exporting reports</del>" in page and "<ins>Exporting reports (new UI)</ins>" in page
    )
    assert "<del>- Step two.</del>" in page and "<ins>+ Step 2, now faster.</ins>" in page
    # The earlier revision's text, and a way to load it back into the editor.
    assert "Step one.\nStep two.\nStep three.</pre>" in page
    assert f"/agent/kb/{item.id}/edit?revision=1" in page
    editor = text_of(client.get(f"/agent/kb/{item.id}/edit?revision=1"))
    assert "Step one.\nStep two.\nStep three.</textarea>" in editor
    assert client.get(f"/agent/kb/{item.id}/edit?revision=9").status_code == 404


def revision_entry(page: str, number: int) -> str:
    """The history's entry for revision ``number``."""
    match = re.search(rf'<li class="kb-revision" id="revision-{number}">(.*?)</li>', page, re.S)
    assert match, f"no revision {number}"
    return " ".join(match.group(1).split())


def moved_article(client: FlaskClient, people: dict[str, Any]) -> tuple[Article, dict[str, int]]:
    """An article written in Billing, public, tagged old and refund-policy; then moved by the
    agent through the editor to Accounts, internal, tagged refund and refund-policy (same text)."""
    category_ids = {
        name: categories.do_create_category(people["admin"], name=name).id
        for name in ("Billing", "Accounts")
    }
    item = article(
        people["colleague"],
        category_id=category_ids["Billing"],
        tags=["old", "refund-policy"],
    )
    token = log_in(client, people["agent"])
    data = form(
        token,
        title=item.title,
        body=item.body,
        category_id=str(category_ids["Accounts"]),
        visibility="internal",
        tags="refund-policy, refund",
        action="publish",
        base_revision="1",
    )
    assert client.post(f"/agent/kb/{item.id}/edit", data=data).status_code == 302
    return item, category_ids


def test_the_history_shows_category_visibility_and_tag_changes(client, people, db_session):
    item, category_ids = moved_article(client, people)

    page = text_of(client.get(f"/agent/kb/{item.id}/history"))
    newest = revision_entry(page, 2)
    assert "Category: <del>Billing</del> → <ins>Accounts</ins>" in newest
    assert "Visibility: <del>Public</del> → <ins>Internal</ins>" in newest
    assert "+refund</ins>" in newest and "\u2212old</del>" in newest  # a minus sign
    assert "refund-policy" not in newest.split("Tags:")[1].split("</p>")[0]  # kept: no change
    assert "Text unchanged." in newest and "kb-diff" not in newest
    first = revision_entry(page, 1)
    assert "Category: Billing. Visibility: Public. Tags: old, refund-policy." in first

    # The names at the time: a rename or a deletion later leaves the history as it was.
    categories.do_update_category(people["admin"], category_ids["Accounts"], {"name": "Sign-in"})
    db_session.delete(db_session.get(KbCategory, category_ids["Billing"]))
    db_session.flush()
    page = text_of(client.get(f"/agent/kb/{item.id}/history"))
    assert "Category: <del>Billing</del> → <ins>Accounts</ins>" in revision_entry(page, 2)
    assert "Category: Billing." in revision_entry(page, 1)


def test_a_change_of_category_alone_is_shown_without_a_diff(client, people):
    billing = categories.do_create_category(people["admin"], name="Billing")
    item = article(people["agent"])
    articles.do_update_article(people["agent"], item.id, {"category_id": billing.id})
    articles.do_update_article(people["agent"], item.id, {"category_id": None})
    articles.do_update_article(people["agent"], item.id, {"body": item.body})  # saved, no change
    log_in(client, people["agent"])
    page = text_of(client.get(f"/agent/kb/{item.id}/history"))
    assert "Category: <del>No category</del> → <ins>Billing</ins>" in revision_entry(page, 2)
    assert "Category: <del>Billing</del> → <ins>No category</ins>" in revision_entry(page, 3)
    assert "Title and text unchanged." in revision_entry(page, 4)
    assert "Category:" not in revision_entry(page, 4).split("<details")[0]


def selected_category(page: str) -> str:
    match = re.search(r'<option value="(\d*)" selected>', page)
    return match.group(1) if match else ""


def checked_visibility(page: str) -> str:
    match = re.search(r'name="visibility" value="(\w+)" checked', page)
    assert match
    return match.group(1)


def tags_field(page: str) -> str:
    match = re.search(r'id="kb-tags" name="tags" value="([^"]*)"', page)
    assert match
    return match.group(1)


def test_loading_a_revision_restores_its_category_visibility_and_tags(client, people):
    item, category_ids = moved_article(client, people)

    editor = text_of(client.get(f"/agent/kb/{item.id}/edit?revision=1"))
    assert "title, text, category, visibility and tags are loaded" in editor
    assert selected_category(editor) == str(category_ids["Billing"])
    assert checked_visibility(editor) == "public"
    assert tags_field(editor) == "old, refund-policy"
    assert 'name="base_revision" value="2"' in editor

    # Saving the loaded form makes revision 1's state the article's again, as revision 3.
    token = csrf_token(client, f"/agent/kb/{item.id}/edit")
    data = form(
        token,
        title=item.title,
        body=item.body,
        category_id=selected_category(editor),
        visibility=checked_visibility(editor),
        tags=tags_field(editor),
        action="publish",
        base_revision="2",
    )
    assert client.post(f"/agent/kb/{item.id}/edit", data=data).status_code == 302
    restored = articles.access_article_by_id(people["agent"], item.id)
    assert restored.category_id == category_ids["Billing"]
    assert restored.visibility is ArticleVisibility.PUBLIC
    assert list(restored.tags) == ["old", "refund-policy"]
    newest = articles.list_revisions(people["agent"], item.id)[-1]
    assert newest.number == 3
    assert (newest.category_name, newest.visibility, newest.tags) == (
        "Billing",
        ArticleVisibility.PUBLIC,
        ["old", "refund-policy"],
    )


def test_loading_a_revision_whose_category_was_deleted_says_so(client, people, db_session):
    item, category_ids = moved_article(client, people)
    db_session.delete(db_session.get(KbCategory, category_ids["Billing"]))
    db_session.flush()

    editor = text_of(client.get(f"/agent/kb/{item.id}/edit?revision=1"))
    assert "Its category “Billing” no longer exists" in editor
    assert selected_category(editor) == ""  # "No category" until the user picks one
    assert checked_visibility(editor) == "public"
    assert tags_field(editor) == "old, refund-policy"


def test_saving_over_someone_elses_newer_text_is_refused_with_the_input_kept(client, people):
    item = article(people["agent"])
    articles.do_update_article(people["colleague"], item.id, {"body": "The colleague's text."})
    token = log_in(client, people["agent"])
    data = form(token, body="My text, started from revision 1.", base_revision="1")
    response = client.post(f"/agent/kb/{item.id}/edit", data=data)
    assert response.status_code == 409
    page = text_of(response)
    assert "Someone else saved this article" in page
    assert "My text, started from revision 1.</textarea>" in page
    assert 'name="base_revision" value="2"' in page  # saving again is a conscious choice
    assert articles.access_article_by_id(people["agent"], item.id).body == "The colleague's text."

    data["base_revision"] = "2"
    assert client.post(f"/agent/kb/{item.id}/edit", data=data).status_code == 302
    assert articles.latest_revision_number(item.id) == 3


def test_an_edit_without_changes_adds_no_revision(client, people):
    item = article(people["agent"], tags=["export"])
    token = log_in(client, people["agent"])
    data = form(
        token,
        title=item.title,
        body=item.body,
        tags="export",
        action="publish",
        base_revision="1",
    )
    response = client.post(f"/agent/kb/{item.id}/edit", data=data)
    assert response.status_code == 302
    assert "Nothing to change." in text_of(client.get(response.headers["Location"]))
    assert articles.latest_revision_number(item.id) == 1


def test_unpublishing_makes_it_a_draft_again(client, people):
    item = article(people["agent"])
    token = log_in(client, people["agent"])
    data = form(token, title=item.title, body=item.body, tags="", base_revision="1")
    client.post(f"/agent/kb/{item.id}/edit", data=data)
    assert articles.access_article_by_id(people["agent"], item.id).status is ArticleStatus.DRAFT


def test_delete_asks_first_then_deletes(client, people, db_session):
    item = article(people["agent"], title="Old article")
    token = log_in(client, people["agent"])
    confirm = text_of(client.get(f"/agent/kb/{item.id}/delete"))
    assert "Delete this article?" in confirm and "Old article" in confirm
    assert articles.access_article_by_id(people["agent"], item.id)  # still there

    response = client.post(f"/agent/kb/{item.id}/delete", data={"csrf_token": token})
    assert response.status_code == 302
    assert "Deleted “Old article”." in text_of(client.get(response.headers["Location"]))
    assert db_session.get(Article, item.id) is None
    assert client.get(f"/agent/kb/{item.id}/edit").status_code == 404
    revisions = select(func.count()).where(ArticleRevision.article_id == item.id)
    assert db_session.scalar(revisions) == 0


def test_admins_create_rename_and_reorder_categories(client, people):
    token = log_in(client, people["admin"])
    for name in ("Billing", "Accounts", "Shipping"):
        response = client.post("/agent/kb/categories", data={"csrf_token": token, "name": name})
        assert response.status_code == 302
    ids = {c.name: c.id for c in categories.list_categories()}
    assert list(ids) == ["Billing", "Accounts", "Shipping"]  # in the order they were added

    response = client.post(
        f"/agent/kb/categories/{ids['Shipping']}/move",
        data={"csrf_token": token, "direction": "up"},
    )
    assert response.status_code == 302
    assert [c.name for c in categories.list_categories()] == ["Billing", "Shipping", "Accounts"]

    response = client.post(
        f"/agent/kb/categories/{ids['Billing']}",
        data={"csrf_token": token, "name": "Invoices"},
    )
    assert response.status_code == 302
    assert categories.list_categories()[0].name == "Invoices"

    response = client.post(
        f"/agent/kb/categories/{ids['Accounts']}",
        data={"csrf_token": token, "name": "invoices"},
    )
    assert response.status_code == 422
    page = text_of(response)
    assert field_error(page, f"kb-cat-{ids['Accounts']}") == "A category with this name exists."
    assert f'id="kb-cat-{ids["Accounts"]}" name="name" value="invoices"' in page

    response = client.post("/agent/kb/categories", data={"csrf_token": token, "name": " "})
    assert response.status_code == 422
    assert "1 to 100 characters." in field_error(text_of(response), "kb-cat-new")


# -- the workspace's knowledge-base search -----------------------------------------------------


def kb_json(client: FlaskClient, ticket: Any, q: str, reply: str = "public") -> dict[str, Any]:
    response = client.get(
        f"/agent/tickets/{ticket.id}/articles.json", query_string={"q": q, "reply": reply}
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    return {item["title"]: item for item in response.get_json()["items"]}


def test_workspace_search_offers_article_links_with_snippets(client, people, app):
    item = article(people["agent"], title="Exporting [CSV] reports")
    log_in(client, people["agent"])
    found = kb_json(client, people["ticket"], "export button")["Exporting [CSV] reports"]
    url = f"{app.config['AUTOCRM_BASE_URL'].rstrip('/')}/help/articles/{item.id}"
    assert found["url"] == url
    assert found["insert"] == f"[Exporting \\[CSV\\] reports]({url})"
    assert found["warning"] is None
    assert "<mark>export</mark>" in found["snippet"].lower()
    assert kb_json(client, people["ticket"], "   ") == {}


def test_internal_articles_are_not_offered_for_public_replies(client, people):
    article(people["agent"], title="Escalation phone list", visibility="internal")
    article(people["agent"], title="Escalation for customers", status="draft")
    log_in(client, people["agent"])
    ticket = people["ticket"]

    public = kb_json(client, ticket, "escalation")
    assert public["Escalation phone list"]["insert"] is None
    assert "customers cannot open it" in public["Escalation phone list"]["warning"]
    assert public["Escalation for customers"]["insert"]  # a draft: offered, with a warning
    assert "until it is published" in public["Escalation for customers"]["warning"]

    internal = kb_json(client, ticket, "escalation", reply="internal")
    assert internal["Escalation phone list"]["insert"].startswith("[Escalation phone list](")
    assert "only staff" in internal["Escalation phone list"]["warning"]

    response = client.get(f"/agent/tickets/{ticket.id}/articles.json?q=x&reply=secret")
    assert response.status_code == 422


def test_workspace_search_and_insert_work_without_script(client, people):
    public = article(people["agent"], title="Exporting reports")
    internal = article(
        people["agent"], title="Export internals", visibility=ArticleVisibility.INTERNAL
    )
    log_in(client, people["agent"])
    base = f"/agent/tickets/{people['ticket'].id}"

    page = text_of(client.get(f"{base}?kb_q=export"))
    assert 'id="ws-kb-results"' in page and "Exporting reports" in page
    assert f"kb_insert={public.id}&visibility=public" in page
    assert f"kb_insert={internal.id}&visibility=internal" in page
    assert f"kb_insert={internal.id}&visibility=public" not in page

    page = text_of(client.get(f"{base}?kb_insert={public.id}&visibility=public"))
    assert (
        f"[Exporting reports](http://127.0.0.1:5000/help/articles/{public.id})</textarea>" in page
    )

    # Asking for an internal article in a public reply anyway: refused, with the reason.
    page = text_of(client.get(f"{base}?kb_insert={internal.id}&visibility=public"))
    assert "customers cannot open it" in page
    assert f"/help/articles/{internal.id})" not in page

    page = text_of(client.get(f"{base}?kb_insert={internal.id}&visibility=internal"))
    assert f"[Export internals](http://127.0.0.1:5000/help/articles/{internal.id})" in page
    assert 'value="internal" checked' in page


def test_a_public_reply_may_link_only_articles_customers_can_open(client, people, db_session):
    """Typed or pasted by hand, a link to an internal, draft or missing article would reach
    the customer as a dead link: the reply is refused with the reason, and the text kept."""
    internal = article(people["agent"], title="Escalation phone list", visibility="internal")
    draft = article(people["agent"], title="Coming soon", status="draft")
    public = article(people["agent"], title="Exporting reports")
    token = log_in(client, people["agent"])
    ticket = people["ticket"]
    url = f"/agent/tickets/{ticket.id}/messages"

    def send(body: str, visibility: str = "public") -> Any:
        return client.post(url, data={"csrf_token": token, "body": body, "visibility": visibility})

    def bodies() -> list[str]:
        return [m.body for m in conversation.list_messages(people["agent"], ticket.id)[0]]

    typed = f"Call them: [list](http://127.0.0.1:5000/help/articles/{internal.id})."
    refused = send(typed)
    assert refused.status_code == 422
    page = text_of(refused)
    assert f"article {internal.id} is internal" in page
    assert f"{typed}</textarea>" in page  # nothing typed is lost

    several = f"See /help/articles/{draft.id} and /help/articles/99999."
    page = text_of(send(several))
    assert f"article {draft.id} is not published" in page
    assert "article 99999 does not exist" in page
    assert bodies() == []

    assert send(typed, visibility="internal").status_code == 302  # a note may link it
    fine = f"Here: [Exporting reports](http://127.0.0.1:5000/help/articles/{public.id})"
    assert send(fine).status_code == 302
    assert bodies() == [typed, fine]


def test_workspace_search_needs_access_to_the_ticket(client, people, factory):
    billing_ticket = factory.ticket(people["customer"], team=factory.team("Billing"))
    log_in(client, people["agent"])
    response = client.get(f"/agent/tickets/{billing_ticket.id}/articles.json?q=export")
    assert response.status_code == 404
    assert response.get_json()["ok"] is False


def test_a_reorder_must_name_every_category_once(people):
    first = categories.do_create_category(people["admin"], name="First")
    categories.do_create_category(people["admin"], name="Second")
    with pytest.raises(InvalidInput):
        categories.do_reorder_categories(people["admin"], [first.id])
    with pytest.raises(Forbidden):
        categories.do_reorder_categories(
            people["agent"], [c.id for c in categories.list_categories()]
        )
