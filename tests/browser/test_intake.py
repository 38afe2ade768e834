"""Getting in without an admin (issue 13), in Chromium against the live server, whose worker
sends real email to a local SMTP server: a stranger asks from the help center, follows the
emailed link, sets a password and sees the ticket and the agent's answer live; sign-up under
a domain allow-list; a forgotten password reset that ends the old session."""

from __future__ import annotations

import re
import uuid

from playwright.sync_api import Page, expect

from autocrm.people import intake
from autocrm.tickets import conversation
from tests.browser.conftest import ContextFactory, DemoUsers, LiveServer, Screenshot
from tests.browser.test_flows import EVENT_MS, WORKER_S, _user, open_followed
from tests.conftest import wait_until
from tests.smtp_server import SmtpServer

LINK = re.compile(r"https?://\S+?(/\S+)")
PASSWORD = "a long enough secret"
HUMAN_PAUSE_MS = 2_500  # the anonymous form refuses what is sent within 2 s of being shown


def emailed_link(mailbox: SmtpServer, address: str, path_start: str) -> str:
    """The link starting with ``path_start`` in an email to ``address``, waiting until the
    worker has sent one (an earlier email to the address, without such a link, does not count)."""

    def links() -> list[str]:
        return [
            m.group(1)
            for message in mailbox.to(address)
            for m in LINK.finditer(message.get_body(preferencelist=("plain",)).get_content())
            if m.group(1).startswith(path_start)
        ]

    assert wait_until(links, timeout=WORKER_S), f"no email to {address} with {path_start}"
    return links()[-1]


def set_password(page: Page, path: str) -> None:
    page.goto(path)
    page.get_by_label("New password", exact=True).fill(PASSWORD)
    page.get_by_label("Repeat the new password").fill(PASSWORD)
    page.get_by_role("button", name="Set the new password").click()
    expect(page.get_by_text("Your password is set. Log in with it.")).to_be_visible()


def log_in(page: Page, email: str, password: str = PASSWORD) -> None:
    page.goto("/login")
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Log in").click()


def test_a_stranger_asks_sets_a_password_from_the_email_and_follows_the_ticket_live(
    new_context: ContextFactory,
    demo: DemoUsers,
    live_server: LiveServer,
    mailbox: SmtpServer,
    screenshot: Screenshot,
) -> None:
    address = f"stranger-{uuid.uuid4().hex[:8]}@example.test"
    page = new_context(375, 900).new_page()
    page.goto("/help/")
    page.get_by_role("link", name="ask a question without an account").click()
    page.get_by_label("Your name").fill("Sally Stranger")
    page.get_by_label("Email").fill(address)
    page.get_by_label("Subject").fill("My parcel never came")
    page.get_by_label("What happened, or what do you need?").fill("Ordered on Monday.")
    screenshot(page, "help-new-375")
    page.wait_for_timeout(HUMAN_PAUSE_MS)  # a person's pace, which the form checks
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_text("your request is on its way")).to_be_visible()

    set_password(page, emailed_link(mailbox, address, "/password/reset/"))
    log_in(page, address)
    page.get_by_role("link", name="My parcel never came").click()
    ticket_id = int(page.url.rsplit("/", 1)[-1])
    open_followed(page, f"/portal/tickets/{ticket_id}")

    answer = f"Agent answer {uuid.uuid4().hex[:6]}"
    with live_server.data():
        conversation.do_add_message(_user(demo.agent.email), ticket_id, answer)
    expect(page.locator("#message-list").get_by_text(answer)).to_be_visible(timeout=EVENT_MS)
    screenshot(page, "help-new-followed-375")


def test_sign_up_follows_the_domain_allow_list_and_works_once_confirmed(
    new_context: ContextFactory, demo: DemoUsers, live_server: LiveServer, mailbox: SmtpServer
) -> None:
    token = uuid.uuid4().hex[:8]
    with live_server.data():
        intake.do_set_signup_policy(_user(demo.admin.email), "domains", "allowed.test")
    try:
        page = new_context(1280, 900).new_page()
        page.goto("/login")
        page.get_by_role("link", name="Create an account").click()
        page.get_by_label("Your name").fill("Olly Outsider")
        page.get_by_label("Email").fill(f"olly-{token}@elsewhere.test")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign up").click()
        expect(page.locator("#email-error")).to_contain_text("allowed.test")
        expect(page.get_by_label("Your name")).to_have_value("Olly Outsider")

        address = f"ivy-{token}@allowed.test"
        page.get_by_label("Email").fill(address)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign up").click()
        expect(page.get_by_text("Open it to confirm your address")).to_be_visible()
        log_in(page, address)
        expect(page.get_by_text("Confirm your email address first")).to_be_visible()

        page.goto(emailed_link(mailbox, address, "/signup/confirm/"))
        expect(page.get_by_text("Your address is confirmed")).to_be_visible()
        log_in(page, address)
        expect(page).to_have_url(re.compile(r"/portal/"))
    finally:
        with live_server.data():
            intake.do_set_signup_policy(_user(demo.admin.email), "open")


def test_a_forgotten_password_is_reset_by_email_and_the_old_session_ends(
    new_context: ContextFactory, demo: DemoUsers, live_server: LiveServer, mailbox: SmtpServer
) -> None:
    address = f"forgetful-{uuid.uuid4().hex[:8]}@example.test"
    with live_server.data():
        intake.do_sign_up("Fran Forgetful", address, "the old password")
    page = new_context(1280, 900).new_page()
    page.goto(emailed_link(mailbox, address, "/signup/confirm/"))
    old_session = new_context(1280, 900).new_page()
    log_in(old_session, address, "the old password")
    expect(old_session).to_have_url(re.compile(r"/portal/"))

    page.goto("/login")
    page.get_by_role("link", name="Forgot your password?").click()
    page.get_by_label("Email").fill(address)
    page.get_by_role("button", name="Email me a link").click()
    expect(page.locator("#reset-sent")).to_be_visible()
    set_password(page, emailed_link(mailbox, address, "/password/reset/"))

    old_session.reload()
    expect(old_session).to_have_url(re.compile(r"/login"))
    log_in(page, address)
    expect(page).to_have_url(re.compile(r"/portal/"))
