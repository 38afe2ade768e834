"""Two-factor login in the browser: an agent sets it up from their account (scanning is done
here with pyotp from the key the page shows, as an app would), logs out, logs in with a code,
then with a recovery code; an admin requires it for staff, and an agent without it is logged
out and sets it up at the next login. The pages are checked at phone and desktop width: no
sideways scrolling, no serious axe violations.

The users are made for each test (the demo logins stay without two-factor login for the other
browser tests), and the staff requirement is switched off again however the test ends."""

from __future__ import annotations

import re
import time
import uuid

import pyotp
import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from autocrm.extensions import db
from autocrm.people import twofactor, users
from autocrm.people.models import Role, User
from tests.browser.conftest import PAGE_MS, ContextFactory, DemoUsers, LiveServer, Screenshot
from tests.browser.test_accessibility import axe_violations, describe

PASSWORD = "two factors are better"
WIDTHS = (375, 1280)
SERIOUS = {"serious", "critical"}


def new_user(live_server: LiveServer, demo: DemoUsers, role: Role, name: str) -> str:
    """A new user with PASSWORD, made by the demo admin; returns the email."""
    email = f"totp-{uuid.uuid4().hex[:10]}@example.test"
    with live_server.data():
        admin = db.session.scalar(select(User).where(User.email == demo.admin.email))
        users.do_create_user(admin, email=email, password=PASSWORD, role=role, name=name)
    return email


def code_for(secret: str, steps_ahead: int = 0) -> str:
    """What the app shows now (or ``steps_ahead`` 30-second steps later: the current step's
    code is spent once it was used, e.g. to confirm the set-up)."""
    return pyotp.TOTP(secret).at(int(time.time()) + steps_ahead * twofactor.STEP_SECONDS)


def check_page(page: Page, name: str, width: int, screenshot: Screenshot) -> None:
    """The page fits the window and has no serious accessibility violation."""
    page.wait_for_load_state("networkidle")
    fits = page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth + 1")
    screenshot(page, f"{name}-{width}")
    assert fits, f"{name} is wider than the {width}px window"
    serious = [v for v in axe_violations(page) if v["impact"] in SERIOUS]
    assert not serious, f"{name} at {width}px:\n{describe(serious)}"


def scan_and_confirm(page: Page, name: str, width: int, screenshot: Screenshot) -> list[str]:
    """On a set-up page: read the key, enter the current code; the recovery codes shown."""
    expect(page.get_by_role("img", name="QR code for your authenticator app")).to_be_visible()
    secret = re.sub(r"\s+", "", page.locator("#totp-secret").inner_text())
    check_page(page, f"{name}-setup", width, screenshot)
    page.get_by_label("Enter the 6-digit code the app shows").fill(code_for(secret))
    page.get_by_role("button", name="Turn on two-factor login").click()
    expect(page.get_by_role("heading", name="Two-factor login is on")).to_be_visible()
    codes = page.locator("#recovery-codes code").all_inner_texts()
    assert len(codes) == 10
    check_page(page, f"{name}-recovery-codes", width, screenshot)
    page.get_by_role("button", name="I saved them, continue").click()
    return [secret, *codes]


def password_step(page: Page, email: str) -> None:
    page.goto("/login")
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


# app.css folds the navigation behind its Menu button up to this width.
PHONE_MAX_PX = 600


def log_out(page: Page, name: str) -> None:
    viewport = page.viewport_size
    if viewport and viewport["width"] <= PHONE_MAX_PX:  # the navigation, with Log out, is folded
        # The button shows once nav.js has run: wait for it (asking is_visible() at once lost
        # that race on a loaded machine, and then Log out stayed folded away).
        page.get_by_role("navigation", name="Main").get_by_role("button", name="Menu").click()
    page.get_by_role("button", name=f"Log out {name}").click()
    expect(page).to_have_url(re.compile(r"/login$"))


@pytest.mark.parametrize("width", WIDTHS, ids=lambda w: f"{w}px")
def test_an_agent_sets_up_two_factor_and_logs_in_with_a_code_then_a_recovery_code(
    width: int,
    new_context: ContextFactory,
    live_server: LiveServer,
    demo: DemoUsers,
    screenshot: Screenshot,
) -> None:
    name = f"Olga Otp {width}"
    email = new_user(live_server, demo, Role.AGENT, name)
    page = new_context.logged_in(email, PASSWORD, width)

    page.goto("/sessions")
    page.get_by_role("link", name="Set up two-factor login").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Two-factor login")
    page.get_by_role("button", name="Set up two-factor login").click()
    secret, *codes = scan_and_confirm(page, "two-factor-account", width, screenshot)
    expect(page.locator("#two-factor-status")).to_have_text("On")
    expect(page.locator("#codes-left")).to_contain_text("10 recovery codes left")
    check_page(page, "two-factor-account-on", width, screenshot)
    log_out(page, name)

    password_step(page, email)
    expect(page).to_have_url(re.compile(r"/login/verify$"))
    check_page(page, "two-factor-login-code", width, screenshot)
    page.get_by_label("Code", exact=True).fill(code_for(secret, 1))
    page.get_by_role("button", name="Verify").click()
    expect(page).to_have_url(re.compile(r"/agent/$"))
    log_out(page, name)

    password_step(page, email)
    page.get_by_label("Code", exact=True).fill(codes[0])
    page.get_by_role("button", name="Verify").click()
    expect(page).to_have_url(re.compile(r"/agent/$"))
    expect(page.get_by_role("status").filter(has_text="recovery code")).to_contain_text("9 left")
    log_out(page, name)

    password_step(page, email)  # a recovery code works once
    page.get_by_label("Code", exact=True).fill(codes[0])
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("alert")).to_contain_text("not right")
    expect(page).to_have_url(re.compile(r"/login/verify$"))


def test_an_admin_requires_two_factor_for_staff(
    new_context: ContextFactory, live_server: LiveServer, demo: DemoUsers, screenshot: Screenshot
) -> None:
    admin_email = new_user(live_server, demo, Role.ADMIN, "Ada Admin Otp")
    agent_name = "Arno Agent Otp"
    agent_email = new_user(live_server, demo, Role.AGENT, agent_name)
    with live_server.data():  # the admin has set up two-factor login already
        admin = db.session.scalar(select(User).where(User.email == admin_email))
        twofactor.do_begin_enrolment(admin)
        enrolment = twofactor.enrolment_of(admin)
        assert enrolment is not None
        admin_secret = enrolment.secret
        twofactor.do_confirm_enrolment(admin, code_for(admin_secret))
    agent_page = new_context.logged_in(agent_email, PASSWORD)
    admin_page = new_context().new_page()
    admin_page.set_default_timeout(PAGE_MS)
    try:
        password_step_as(admin_page, admin_email)
        admin_page.get_by_label("Code", exact=True).fill(code_for(admin_secret, 1))
        admin_page.get_by_role("button", name="Verify").click()
        expect(admin_page).to_have_url(re.compile(r"/agent/$"))

        admin_page.goto("/admin/users")
        admin_page.get_by_label("Require two-factor login for staff").check()
        policy = admin_page.get_by_role("region", name="Two-factor login")
        policy.get_by_role("button", name="Save").click()
        expect(admin_page.get_by_role("status").first).to_contain_text(
            "Staff now need two-factor login"
        )
        admin_page.goto("/admin/audit/")
        expect(admin_page.locator("main")).to_contain_text(
            "Changed whether staff need two-factor login settings.staff_2fa_required"
        )

        agent_page.goto("/agent/")  # the agent without it was logged out
        expect(agent_page).to_have_url(re.compile(r"/login\?next="))
        password_step(agent_page, agent_email)
        expect(agent_page).to_have_url(re.compile(r"/login/two-factor$"))
        agent_page.goto("/agent/")  # nothing else opens until it is set up
        expect(agent_page).to_have_url(re.compile(r"/login\?next="))
        password_step(agent_page, agent_email)
        scan_and_confirm(agent_page, "two-factor-required", 1280, screenshot)
        expect(agent_page).to_have_url(re.compile(r"/agent/$"))
    finally:
        with live_server.data():
            admin = db.session.scalar(select(User).where(User.email == admin_email))
            twofactor.do_set_staff_required(admin, False)


def password_step_as(page: Page, email: str) -> None:
    password_step(page, email)
    expect(page).to_have_url(re.compile(r"/login/verify$"))
