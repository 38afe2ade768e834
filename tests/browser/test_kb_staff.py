"""Knowledge-base authoring and the workspace's knowledge-base search, in the browser: an agent
writes an article as a draft, previews it, publishes and edits it (the history shows the
revision), then links it from a ticket's reply; internal articles are kept out of public
replies; the pages at phone and desktop widths.

Everything created carries a unique token (the browser database is shared and kept).
"""

from __future__ import annotations

import re
import uuid

from playwright.sync_api import Page, expect
from sqlalchemy import select

from autocrm.extensions import db
from autocrm.kb import articles, categories
from autocrm.people.models import User
from tests.browser.conftest import SCREENSHOTS, ContextFactory, DemoUsers, LiveServer, Screenshot
from tests.browser.test_flows import (
    EVENT_MS,
    LIVE_MS,
    assert_not_reloaded,
    create_ticket,
    mark_no_reload,
    open_followed,
)


def _token() -> str:
    return uuid.uuid4().hex[:10]


def write_article(live_server: LiveServer, author_email: str, **fields: object) -> int:
    with live_server.data():
        author = db.session.scalar(select(User).where(User.email == author_email))
        return articles.do_create_article(author, **fields).id


def article_id_of(page: Page) -> int:
    match = re.search(r"/agent/kb/(\d+)/edit", page.url)
    assert match, page.url
    return int(match.group(1))


def test_an_agent_writes_publishes_and_edits_an_article_then_links_it_in_a_reply(
    new_context: ContextFactory, demo: DemoUsers, live_server: LiveServer
) -> None:
    token = _token()
    title = f"Exporting reports {token}"
    page = new_context.logged_in(demo.agent.email, demo.agent.password)

    # A new article, previewed in place (no page load), then saved as a draft.
    page.goto("/agent/kb/")
    page.get_by_role("button", name="New article").click()
    page.get_by_label("Title").fill(title)
    page.get_by_label("Tags").fill("export, reports")
    page.get_by_label("Text").fill(f"# Export\n\nOpen the report and press **Export** ({token}).")
    mark_no_reload(page)
    page.get_by_role("button", name="Preview").click()
    preview = page.locator("#kb-preview-body")
    expect(preview.locator("h1")).to_have_text("Export")
    expect(preview.locator("strong")).to_have_text("Export")
    assert_not_reloaded(page)
    page.get_by_role("button", name="Save draft").click()
    expect(page.get_by_text("Draft saved.")).to_be_visible()
    expect(page.locator(".kb-title-row .kb-status-draft")).to_have_text("Draft")
    article_id = article_id_of(page)

    # Published, then edited: the edit is a revision in the history, with what changed.
    page.get_by_role("button", name="Publish").click()
    expect(page.get_by_text("Article saved and published.")).to_be_visible()
    expect(page.locator(".kb-title-row .kb-status-published")).to_have_text("Published")
    page.get_by_label("Text").fill(f"# Export\n\nOpen the report and press **Download** ({token}).")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text("Article saved and published.")).to_be_visible()
    page.get_by_role("link", name="Revision history").click()
    newest = page.locator(".kb-revision").first
    expect(newest.get_by_role("heading")).to_contain_text("Revision 2")
    expect(newest).to_contain_text(demo.agent.name)
    expect(newest.locator(".kb-diff del")).to_contain_text("**Export**")
    expect(newest.locator(".kb-diff ins")).to_contain_text("**Download**")
    older = page.locator("#revision-1")
    older.get_by_text("Text of revision 1").click()
    expect(older.locator(".kb-source")).to_contain_text("press **Export**")

    # In a ticket's workspace: search, insert the link at the cursor, send.
    ticket_id = create_ticket(live_server, demo, f"Export question {token}")
    open_followed(page, f"/agent/tickets/{ticket_id}")
    page.get_by_role("radio", name="Public reply").check()
    page.locator("#ws-body").fill("This should help: ")
    page.get_by_label("Knowledge base", exact=True).fill(f"download {token}")
    result = page.locator("#ws-kb-results li").filter(has_text=title)
    expect(result).to_be_visible()
    expect(result.locator(".ws-kb-snippet mark").first).to_be_visible()
    result.get_by_role("button", name=re.compile("Insert link")).click()
    url = f"{live_server.url}/help/articles/{article_id}"
    expect(page.locator("#ws-body")).to_have_value(f"This should help: [{title}]({url})")
    page.get_by_role("button", name="Send reply").click()
    expect(page.locator("#ws-send-state")).to_have_text("Reply sent.")
    link = page.locator("#ws-messages li").get_by_role("link", name=title)
    expect(link).to_have_attribute("href", url, timeout=LIVE_MS)
    assert_not_reloaded(page)
    page.reload()
    expect(page.locator("#ws-messages").get_by_role("link", name=title)).to_be_visible()


def test_internal_articles_are_offered_for_internal_notes_only(
    new_context: ContextFactory, demo: DemoUsers, live_server: LiveServer
) -> None:
    token = _token()
    title = f"Escalation phone list {token}"
    write_article(
        live_server, demo.agent.email, title=title, body=f"Call the lead ({token}).",
        visibility="internal", status="published",
    )  # fmt: skip
    ticket_id = create_ticket(live_server, demo, f"Escalate me {token}")
    page = new_context.logged_in(demo.agent.email, demo.agent.password)
    open_followed(page, f"/agent/tickets/{ticket_id}")

    page.get_by_role("radio", name="Public reply").check()
    page.get_by_label("Knowledge base", exact=True).fill(token)
    result = page.locator("#ws-kb-results li").filter(has_text=title)
    expect(result.locator(".ws-kb-internal")).to_have_text("Internal")
    expect(result.locator(".ws-kb-warning")).to_contain_text("customers cannot open it")
    expect(result.get_by_role("button")).to_have_count(0)

    page.get_by_role("radio", name=re.compile("Internal note")).check()
    expect(result.locator(".ws-kb-warning")).to_contain_text("only staff can open it")
    result.get_by_role("button", name=re.compile("Insert link")).click()
    expect(page.locator("#ws-body")).to_have_value(re.compile(re.escape(f"[{title}](")))


def test_pages_at_phone_and_desktop_widths(
    new_context: ContextFactory, demo: DemoUsers, live_server: LiveServer, screenshot: Screenshot
) -> None:
    token = _token()
    with live_server.data():
        admin = db.session.scalar(select(User).where(User.email == demo.admin.email))
        billing = categories.do_create_category(admin, name=f"Billing {token}", position=0).id
        accounts = categories.do_create_category(
            admin, name=f"Accounts and sign-in {token}", position=1
        ).id
    article_id = write_article(
        live_server, demo.agent.email, title=f"Changing the invoice address {token}",
        category_id=billing,
        body=f"Open **Billing**, then *Address*.\n\nNew invoices use the new address ({token}).",
        tags=["billing"], status="published",
    )  # fmt: skip
    with live_server.data():
        agent = db.session.scalar(select(User).where(User.email == demo.agent.email))
        # Every kind of change, so the history shows each at both widths.
        articles.do_update_article(
            agent, article_id, {"body": f"Open **Billing** ({token}).", "tags": ["invoices"]}
        )
        articles.do_update_article(
            agent, article_id, {"category_id": accounts, "visibility": "customers"}
        )
    write_article(
        live_server, demo.agent.email, title=f"Invoice disputes (internal) {token}",
        body=f"Escalate invoice disputes to finance ({token}).", visibility="internal",
    )  # fmt: skip
    ticket_id = create_ticket(live_server, demo, f"Invoice address {token}")

    for width in (1280, 375):
        page = new_context.logged_in(demo.admin.email, demo.admin.password, width)
        pages = {
            "kb-list": "/agent/kb/",
            "kb-history": f"/agent/kb/{article_id}/history",
            "kb-categories": "/agent/kb/categories",
        }
        for name, path in pages.items():
            page.goto(path)
            fits(page, width)
            screenshot(page, f"{name}-{width}")
        page.goto(f"/agent/kb/{article_id}/history")
        newest = page.locator(".kb-revision").first
        expect(newest.locator(".kb-change").filter(has_text="Visibility")).to_contain_text(
            "Public → Customers only"
        )
        expect(page.locator("#revision-2 .kb-change ins")).to_have_text("added +invoices")
        page.goto(f"/agent/kb/{article_id}/edit")
        page.get_by_role("button", name="Preview").click()
        expect(page.locator("#kb-preview-body strong")).to_have_text("Billing")
        fits(page, width)
        screenshot(page, f"kb-editor-{width}")

        open_followed(page, f"/agent/tickets/{ticket_id}")
        page.get_by_label("Knowledge base", exact=True).fill(f"invoice {token}")
        expect(page.locator("#ws-kb-results li")).to_have_count(2, timeout=EVENT_MS)
        fits(page, width)
        screenshot(page, f"workspace-kb-{width}")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)  # the panel alone, at full size
        page.locator(".ws-compose").screenshot(path=SCREENSHOTS / f"workspace-kb-panel-{width}.png")


def fits(page: Page, width: int) -> None:
    """Nothing on the page is wider than the window (no sideways scrolling)."""
    scroll_width = page.evaluate("() => document.documentElement.scrollWidth")
    assert scroll_width <= width, f"{page.url} is {scroll_width}px wide at {width}px"


def test_without_javascript_preview_search_and_insert_still_work(
    new_context: ContextFactory, demo: DemoUsers, live_server: LiveServer
) -> None:
    token = _token()
    title = f"Printer drivers {token}"
    page = new_context.logged_in(demo.agent.email, demo.agent.password, java_script_enabled=False)

    page.goto("/agent/kb/new")
    page.get_by_label("Title").fill(title)
    page.get_by_label("Text").fill(f"Install the **driver** first ({token}).")
    page.get_by_role("button", name="Preview").click()  # a form submit: nothing saved
    expect(page.locator("#kb-preview-body strong")).to_have_text("driver")
    expect(page.get_by_label("Title")).to_have_value(title)
    page.get_by_role("button", name="Publish").click()
    expect(page.get_by_text("Article published.")).to_be_visible()
    article_id = article_id_of(page)

    ticket_id = create_ticket(live_server, demo, f"Printer {token}")
    page.goto(f"/agent/tickets/{ticket_id}")
    page.get_by_label("Knowledge base", exact=True).fill(f"driver {token}")
    page.get_by_role("button", name="Search", exact=True).click()
    result = page.locator("#ws-kb-results li").filter(has_text=title)
    result.get_by_role("button", name=re.compile("Insert link")).click()
    url = f"{live_server.url}/help/articles/{article_id}"
    expect(page.locator("#ws-body")).to_have_value(f"[{title}]({url})")
    page.get_by_role("button", name="Send reply").click()
    expect(page.get_by_text("Reply sent.")).to_be_visible()
    expect(page.locator("#ws-messages").get_by_role("link", name=title)).to_have_attribute(
        "href", url
    )
