"""Login, logout and the security every page shares: CSRF, CSP, no third-party requests, and the
"Reconnecting" banner of the socket connection."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect
from sqlalchemy import select

from autocrm.extensions import db
from autocrm.tickets.models import Ticket
from tests import processes
from tests.browser.conftest import (
    ContextFactory,
    DemoUsers,
    LiveServer,
    Login,
    Screenshot,
    csp_problem,
)


def test_agent_logs_in_to_the_queue(page: Page, login: Login, demo: DemoUsers) -> None:
    login(page, demo.agent.email, demo.agent.password)

    expect(page).to_have_url(re.compile(r"/agent/$"))
    expect(page.get_by_role("button", name=re.compile("Log out"))).to_be_visible()


def test_customer_logs_in_to_the_portal(page: Page, login: Login, demo: DemoUsers) -> None:
    login(page, demo.customer.email, demo.customer.password)

    expect(page).to_have_url(re.compile(r"/portal/$"))


def test_login_returns_to_the_page_asked_for(page: Page, login: Login, demo: DemoUsers) -> None:
    page.goto("/notifications")
    expect(page).to_have_url(re.compile(r"/login\?next="))

    page.get_by_label("Email", exact=True).fill(demo.agent.email)
    page.get_by_label("Password", exact=True).fill(demo.agent.password)
    page.get_by_role("button", name="Log in").click()

    expect(page).to_have_url(re.compile(r"/notifications$"))


def test_wrong_password_shows_the_error_and_keeps_the_email(page: Page, demo: DemoUsers) -> None:
    page.goto("/login")
    page.get_by_label("Email", exact=True).fill(demo.agent.email)
    page.get_by_label("Password", exact=True).fill("not-the-password")
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.get_by_role("button", name="Log in").click()

    assert answer.value.status == 401
    expect(page.get_by_role("alert")).to_be_visible()
    expect(page.get_by_role("alert")).not_to_be_empty()
    expect(page.get_by_label("Email", exact=True)).to_have_value(demo.agent.email)
    expect(page.get_by_label("Password", exact=True)).to_have_value("")
    expect(page).to_have_url(re.compile(r"/login$"))


def test_a_form_posted_without_its_csrf_token_is_refused(
    page: Page, login: Login, demo: DemoUsers, live_server: LiveServer
) -> None:
    page.goto("/login")
    refused = page.request.post(
        f"{live_server.url}/login",
        form={"email": demo.agent.email, "password": demo.agent.password},
        max_redirects=0,
    )
    assert refused.status == 400
    assert "CSRF" in refused.text()

    login(page, demo.agent.email, demo.agent.password)
    # A script of the page itself, skipping the token: logging out must not happen.
    status = page.evaluate(
        "async () => (await fetch('/logout', {method: 'POST', redirect: 'manual'})).status"
    )
    assert status == 400
    page.goto("/agent/")
    expect(page).to_have_url(re.compile(r"/agent/$"))


def _demo_ticket_id(live_server: LiveServer) -> int:
    """A seeded ticket of the demo customer in the demo agent's team."""
    with live_server.data():
        return processes.snapshot(
            lambda: db.session.scalar(
                select(Ticket.id).where(Ticket.subject == "Cannot log in to my account")
            )
        )


def test_every_page_sends_a_strict_csp_and_calls_no_other_host(
    new_context: ContextFactory, login: Login, demo: DemoUsers, live_server: LiveServer
) -> None:
    ticket_id = _demo_ticket_id(live_server)
    staff_pages = ["/agent/", f"/agent/tickets/{ticket_id}", "/notifications", "/agent/tickets/0"]
    customer_pages = ["/portal/", f"/portal/tickets/{ticket_id}", "/notifications"]
    visited: list[str] = []
    for who, pages in ((demo.agent, staff_pages), (demo.customer, customer_pages)):
        context = new_context()
        page = context.new_page()
        page.goto("/login")
        login(page, who.email, who.password)
        for path in pages:
            response = page.goto(path)
            assert response is not None
            assert response.status in (200, 404), f"{path}: {response.status}"
            problem = csp_problem(response.headers.get("content-security-policy"))
            assert problem is None, f"{path}: {problem}"
            page.wait_for_load_state("networkidle")
        watch = new_context.watch_of(context)
        visited += [url for url, _, _ in watch.documents]
        assert watch.requests, "no request was recorded"
        assert watch.foreign_requests() == []
        assert watch.problems == []
    # Every page load above went through the watch's CSP check too (login included).
    assert any(url.endswith("/login") for url in visited)
    assert len(visited) >= len(staff_pages) + len(customer_pages)


def test_logout_ends_the_session(page: Page, login: Login, demo: DemoUsers) -> None:
    login(page, demo.agent.email, demo.agent.password)

    page.get_by_role("button", name=re.compile("Log out")).click()

    expect(page).to_have_url(re.compile(r"/login$"))
    page.goto("/agent/")
    expect(page).to_have_url(re.compile(r"/login\?next="))


def test_a_lost_connection_shows_the_reconnecting_banner_until_it_is_back(
    page: Page, login: Login, demo: DemoUsers
) -> None:
    login(page, demo.agent.email, demo.agent.password)
    banner = page.locator("#connection-banner")
    page.wait_for_function("() => window.AutoCRM && window.AutoCRM.socket.connected")
    expect(banner).to_be_hidden()

    page.context.set_offline(True)
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("Reconnecting")

    page.context.set_offline(False)
    expect(banner).to_be_hidden(timeout=20_000)
    assert page.evaluate("() => window.AutoCRM.socket.connected")


def test_login_page_fits_phone_and_desktop(
    new_context: ContextFactory, screenshot: Screenshot
) -> None:
    for width, height in ((375, 812), (1280, 800)):
        page = new_context(width, height).new_page()
        page.goto("/login")
        expect(page.get_by_role("button", name="Log in")).to_be_visible()
        scroll_width = page.evaluate("() => document.documentElement.scrollWidth")
        assert scroll_width <= width, f"{width}px wide: the page is {scroll_width}px wide"
        path = screenshot(page, f"login-{width}")
        assert path.stat().st_size > 0
