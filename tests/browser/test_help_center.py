"""The help center in a browser: a customer finds an article by a word of its body, reads it and
votes, then gets it suggested while typing a new ticket's subject, and opening the suggestion
is recorded; anonymous readers see public articles only; the pages at phone and desktop widths.

The browser database is shared by all browser tests and never rolled back: what a test writes
carries a unique token.
"""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from autocrm.extensions import db
from autocrm.kb import articles, categories
from autocrm.kb.models import ArticleVote, KbSuggestionEvent
from autocrm.people.models import User
from tests import processes
from tests.browser.conftest import PAGE_MS, ContextFactory, DemoUsers, LiveServer, Screenshot
from tests.conftest import wait_until


def _user_id(email: str) -> int:
    user_id = db.session.scalar(select(User.id).where(User.email == email))
    assert user_id is not None, email
    return user_id


def write_article(live_server: LiveServer, demo: DemoUsers, token: str) -> tuple[int, str, str]:
    """A published customers-only article in a category of its own whose body (not its title)
    holds a word nobody else uses: (id, title, that word)."""
    word = f"limescale{token}"
    title = f"Keep the coffee machine clean ({token[:4]})"
    with live_server.data():
        admin = db.session.get(User, _user_id(demo.admin.email))
        agent = db.session.get(User, _user_id(demo.agent.email))
        category = categories.do_create_category(admin, name=f"Coffee {token}", position=9)
        article = articles.do_create_article(
            agent,
            title=title,
            body=f"Descale it every month: {word} builds up in the pipes.\n\n"
            "1. Fill the tank with descaler.\n2. Run two empty cups.",
            category_id=category.id,
            visibility="customers",
            status="published",
        )
        return article.id, title, word


def test_a_customer_finds_reads_votes_and_gets_the_article_suggested(
    new_context: ContextFactory, demo: DemoUsers, live_server: LiveServer, screenshot: Screenshot
) -> None:
    token = uuid.uuid4().hex[:10]
    article_id, title, word = write_article(live_server, demo, token)
    page = new_context.logged_in(demo.customer.email, demo.customer.password)

    # Search the help center for a word of the body.
    page.get_by_role("link", name="Help center").first.click()
    expect(page.get_by_role("heading", name="How can we help?")).to_be_visible()
    page.get_by_label("Search the help center").fill(word.upper())
    page.get_by_role("button", name="Search").click()
    result = page.locator(".help-results li").filter(has_text=title)
    expect(result).to_have_count(1)
    expect(result.locator("mark")).to_have_text(word)
    screenshot(page, "help-flow-search")

    # Read it and vote.
    result.get_by_role("link", name=title).click()
    expect(page.get_by_role("heading", name=title, level=1)).to_be_visible()
    expect(page.locator(".help-body ol li")).to_have_count(2)  # Markdown rendered
    expect(page.locator(".help-article .help-meta")).to_contain_text(f"In Coffee {token}")
    expect(page.locator("#vote-tally")).to_have_text("Nobody has answered yet.")
    page.get_by_role("button", name="Yes").click()
    expect(page.locator("#vote-status")).to_have_text("You answered Yes. Thank you!")
    expect(page.locator("#vote-tally")).to_have_text("1 of 1 reader found this helpful.")
    expect(page.get_by_role("button", name="Yes")).to_have_attribute("aria-pressed", "true")
    page.get_by_role("button", name="No").click()  # changing one's mind replaces the vote
    expect(page.locator("#vote-tally")).to_have_text("0 of 1 reader found this helpful.")
    page.reload()
    expect(page.locator("#vote-status")).to_have_text(re.compile("You answered No"))
    with live_server.data():
        votes = processes.snapshot(
            lambda: db.session.scalars(
                select(ArticleVote.helpful).where(ArticleVote.article_id == article_id)
            ).all()
        )
    assert votes == [False]
    screenshot(page, "help-flow-article-voted")

    # While typing a new ticket's subject, the article is suggested.
    page.get_by_role("link", name="New ticket").first.click()
    subject = page.get_by_label("Subject")
    subject.press_sequentially(f"Coffee machine full of {word}", delay=15)
    suggestion = page.locator("#suggestion-list a").filter(has_text=title)
    expect(suggestion).to_have_count(1)
    expect(page.locator("#suggestion-status")).to_contain_text("might answer your question")
    screenshot(page, "help-flow-new-ticket")

    # Opening it (a new tab; the ticket stays) records the suggestion as opened.
    with page.context.expect_page() as opened:
        suggestion.click()
    article_tab = opened.value
    expect(article_tab.get_by_role("heading", name=title, level=1)).to_be_visible()
    assert article_tab.url.endswith(f"/help/articles/{article_id}")  # the plain address
    expect(subject).to_have_value(f"Coffee machine full of {word}")

    customer_id = 0

    def recorded() -> list[tuple[str, bool | None]]:
        nonlocal customer_id
        customer_id = customer_id or _user_id(demo.customer.email)
        rows = db.session.execute(
            select(KbSuggestionEvent.query, KbSuggestionEvent.ticket_filed).where(
                KbSuggestionEvent.article_id == article_id,
                KbSuggestionEvent.user_id == customer_id,
            )
        ).all()
        return [tuple(row) for row in rows]

    with live_server.data():
        assert wait_until(lambda: processes.snapshot(recorded), timeout=10)
        assert processes.snapshot(recorded) == [(f"Coffee machine full of {word}", None)]


def test_anonymous_readers_see_public_articles_only(
    new_context: ContextFactory, demo: DemoUsers, live_server: LiveServer, screenshot: Screenshot
) -> None:
    token = uuid.uuid4().hex[:10]
    article_id, _, word = write_article(live_server, demo, token)  # customers only
    page = new_context(1280, 800).new_page()
    page.set_default_timeout(PAGE_MS)

    page.goto("/help/")
    topics = page.locator(".help-categories")
    expect(topics.get_by_role("link", name="Refunds for duplicate charges")).to_be_visible()
    expect(topics.get_by_role("link", name="Download an invoice")).to_have_count(0)  # customers
    expect(page.get_by_text("Escalating a billing dispute")).to_have_count(0)  # internal
    page.get_by_label("Search the help center").fill(word)
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_text("No articles match your search.")).to_be_visible()
    assert page.goto(f"/help/articles/{article_id}").status == 404

    page.goto("/help/")
    topics.get_by_role("link", name="Refunds for duplicate charges").click()
    expect(page.get_by_text("to tell us whether this article helped")).to_be_visible()
    screenshot(page, "help-article-anonymous")
    page.get_by_role("link", name="Log in").last.click()
    expect(page).to_have_url(re.compile(r"/login\?next=(/|%2F)help(/|%2F)articles(/|%2F)\d+$"))
    page.get_by_label("Email", exact=True).fill(demo.customer.email)
    page.get_by_label("Password", exact=True).fill(demo.customer.password)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/help/articles/\d+$"))  # back to the article
    expect(page.get_by_role("button", name="Yes")).to_be_visible()

    page.goto("/help/search?q=")
    expect(page.locator("#q-error")).to_have_text("Type a word or two to search for.")
    expect(page.get_by_label("Search the help center")).to_have_attribute("aria-invalid", "true")
    screenshot(page, "help-search-empty")


@pytest.mark.parametrize("width", [375, 1280])
def test_help_pages_fit_phone_and_desktop(
    width: int, new_context: ContextFactory, demo: DemoUsers, screenshot: Screenshot
) -> None:
    overflowing: list[str] = []

    def check(page: Page, name: str) -> None:
        page.wait_for_load_state("networkidle")
        fits = page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth + 1")
        if not fits:
            overflowing.append(name)
        screenshot(page, f"{name}-{width}")

    anonymous = new_context(width, 800).new_page()
    anonymous.goto("/help/")
    check(anonymous, "help-home-anonymous")

    page = new_context.logged_in(demo.customer.email, demo.customer.password, width)
    page.goto("/help/")
    expect(page.locator(".help-category").first).to_be_visible()
    check(page, "help-home")
    page.locator(".help-category h3 a").filter(has_text="Billing and plans").click()
    expect(page.get_by_role("heading", name="Billing and plans", level=1)).to_be_visible()
    check(page, "help-category")
    page.get_by_label("Search Billing and plans").fill("invoice")  # in this topic
    page.get_by_role("button", name="Search").click()
    expect(page.locator(".help-results mark").first).to_be_visible()
    check(page, "help-search")
    page.locator(".help-results a").first.click()
    expect(page.locator("#helpful")).to_be_visible()
    check(page, "help-article")

    page.goto("/portal/tickets/new")
    page.get_by_label("Subject").press_sequentially("The app crashes on export", delay=15)
    expect(page.locator("#suggestion-list li").first).to_be_visible()
    check(page, "new-ticket-suggestions")

    assert overflowing == [], f"pages wider than {width}px: {overflowing}"
