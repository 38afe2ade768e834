"""Single sign-on in the browser: Chromium follows "Log in with Test ID" to the tests' own
OpenID Connect provider (``sso_provider``), signs in there, and comes back logged in."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from autocrm.audit.models import AdminAuditEntry
from autocrm.extensions import db
from autocrm.people.models import SsoIdentity, User
from tests import processes
from tests.browser.conftest import SSO_BUTTON_LABEL, ContextFactory, LiveServer, Screenshot


def sign_in_at_provider(page: Page, email: str, name: str, *, verified: bool = True) -> None:
    page.goto("/login")
    page.get_by_role("link", name=f"Log in with {SSO_BUTTON_LABEL}").click()
    expect(page.get_by_role("heading", name="Test identity provider")).to_be_visible()
    page.get_by_label("Email at the provider").fill(email)
    page.get_by_label("Full name").fill(name)
    page.get_by_label("Email verified").set_checked(verified)
    page.get_by_role("button", name="Sign in at the provider").click()


def test_an_sso_login_against_the_local_provider_creates_the_agent(
    page: Page, live_server: LiveServer
) -> None:
    email = f"sso-{uuid.uuid4().hex[:8]}@example.test"

    sign_in_at_provider(page, email, "Sam Single")

    expect(page).to_have_url(re.compile(r"/agent/$"))
    expect(page.get_by_role("button", name="Log out Sam Single")).to_be_visible()

    def created() -> tuple[str, str, int, list[str]]:
        user = db.session.scalars(select(User).where(User.email == email)).one()
        identities = db.session.scalars(
            select(SsoIdentity).where(SsoIdentity.user_id == user.id)
        ).all()
        actions = db.session.scalars(
            select(AdminAuditEntry.action)
            .where(AdminAuditEntry.target_type == "user", AdminAuditEntry.target_id == user.id)
            .order_by(AdminAuditEntry.id)
        ).all()
        return user.role.value, user.name, len(identities), list(actions)

    with live_server.data():
        assert processes.snapshot(created) == (
            "agent",
            "Sam Single",
            1,
            ["user.sso_created", "user.sso_login"],
        )


def test_a_refused_sign_on_is_explained_on_the_login_page(page: Page) -> None:
    sign_in_at_provider(
        page, f"unverified-{uuid.uuid4().hex[:8]}@example.test", "Una", verified=False
    )

    expect(page).to_have_url(re.compile(r"/login/sso/callback\?"))
    expect(page.get_by_role("alert")).to_contain_text("not verified")
    expect(page.get_by_role("link", name=f"Log in with {SSO_BUTTON_LABEL}")).to_be_visible()


@pytest.mark.parametrize("width", [375, 1280])
def test_the_login_page_offers_single_sign_on(
    new_context: ContextFactory, screenshot: Screenshot, width: int
) -> None:
    page = new_context(width=width, height=800).new_page()
    page.goto("/login")

    button = page.get_by_role("link", name=f"Log in with {SSO_BUTTON_LABEL}")
    expect(button).to_be_visible()
    expect(page.get_by_role("button", name="Log in")).to_be_visible()  # customers' passwords
    box = button.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width
    screenshot(page, f"login-sso-{width}")
