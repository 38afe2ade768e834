"""Single sign-on with OpenID Connect against a real provider process (``tests.oidc_provider``):
the whole redirect flow, with the Flask test client as the browser at AutoCRM and ``requests``
as the person at the provider's login form.

What it logs in (found by provider account, linked by verified email, or created with the
configured role), what it refuses (domain, unverified email, deactivated, a customer account,
forged or replayed answers, a provider that is down), the audit log of both, and staff
password login switched off on the web and API doors.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from autocrm.audit.models import AdminAuditEntry
from autocrm.people.models import Role, SsoIdentity, User
from tests import oidc_provider, processes
from tests.factories import PASSWORD, assert_error, csrf_token, web_login

ALERT = re.compile(r'role="alert" id="login-error">([^<]*)<')


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[oidc_provider.Provider]:
    with oidc_provider.running(tmp_path_factory.mktemp("oidc-provider")) as running:
        yield running


@pytest.fixture
def sso_on(
    app: Flask, provider: oidc_provider.Provider, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    """SSO set up against the test provider, for this test (the settings are read per request);
    returns the config to change further."""
    for name, value in {
        "ISSUER": provider.issuer,
        "CLIENT_ID": provider.client_id,
        "CLIENT_SECRET": provider.client_secret,
        "ALLOWED_DOMAINS": "",
        "DEFAULT_ROLE": "agent",
        "BUTTON_LABEL": "Acme ID",
    }.items():
        monkeypatch.setitem(app.config, f"AUTOCRM_OIDC_{name}", value)
    return app.config


def begin(client: FlaskClient, path: str = "/login/sso") -> str:
    """Start a sign-on; returns the provider's authorization URL AutoCRM redirected to."""
    response = client.get(path)
    assert response.status_code == 302, response.get_data(as_text=True)
    return response.location


def back_at(client: FlaskClient, callback_url: str):
    """The browser following the provider's redirect back to AutoCRM."""
    parts = urlsplit(callback_url)
    assert parts.path == "/login/sso/callback"
    return client.get(f"{parts.path}?{parts.query}")


def sso_login(client: FlaskClient, email: str, **at_provider: Any):
    return back_at(client, oidc_provider.log_in_at(begin(client), email, **at_provider))


def error_on_page(response) -> str:
    match = ALERT.search(response.get_data(as_text=True))
    assert match, response.get_data(as_text=True)
    return match.group(1)


def audit_entries(db_session, action: str) -> list[AdminAuditEntry]:
    return list(
        db_session.scalars(
            select(AdminAuditEntry).where(AdminAuditEntry.action == action).order_by("id")
        )
    )


def user_by_email(db_session, email: str) -> User | None:
    return db_session.scalar(select(User).where(User.email == email))


# -- logging in --------------------------------------------------------------------------------


def test_the_authorization_request_uses_pkce_state_and_nonce(client, sso_on, provider):
    url = begin(client)

    assert url.startswith(f"{provider.issuer}/authorize?")
    query = parse_qs(urlsplit(url).query)
    assert query["client_id"] == [provider.client_id]
    assert query["response_type"] == ["code"]
    assert query["code_challenge_method"] == ["S256"]
    assert "openid" in query["scope"][0].split() and "email" in query["scope"][0].split()
    assert len(query["state"][0]) >= 32 and len(query["nonce"][0]) >= 32
    assert query["redirect_uri"] == [f"{sso_on['AUTOCRM_BASE_URL']}/login/sso/callback"]


def test_a_first_sign_on_creates_an_agent_and_logs_them_in(client, sso_on, db_session):
    response = sso_login(client, "Nora.New@Acme.test", name="Nora New")

    assert response.status_code == 302 and response.location == "/agent/"
    assert client.get("/agent/").status_code == 200  # a real, server-side session
    nora = user_by_email(db_session, "nora.new@acme.test")
    assert nora is not None and nora.role is Role.AGENT and nora.name == "Nora New"
    identity = db_session.scalar(select(SsoIdentity).where(SsoIdentity.user_id == nora.id))
    assert identity.issuer == sso_on["AUTOCRM_OIDC_ISSUER"]
    assert identity.subject == "sub-Nora.New@Acme.test"
    (created,) = audit_entries(db_session, "user.sso_created")
    assert created.actor_id == nora.id and created.target_id == nora.id
    assert created.changes["role"] == [None, "agent"]
    assert created.changes["email"] == [None, "nora.new@acme.test"]
    (login,) = audit_entries(db_session, "user.sso_login")
    assert login.target_id == nora.id
    assert login.changes == {"provider": [None, sso_on["AUTOCRM_OIDC_ISSUER"]]}


@pytest.mark.parametrize(("role", "home"), [("admin", "/agent/"), ("customer", "/portal/")])
def test_new_users_get_the_configured_role(client, sso_on, db_session, role, home):
    sso_on["AUTOCRM_OIDC_DEFAULT_ROLE"] = role

    response = sso_login(client, f"new-{role}@acme.test")

    assert response.status_code == 302 and response.location == home
    assert user_by_email(db_session, f"new-{role}@acme.test").role is Role(role)


def test_the_next_sign_on_finds_the_user_by_provider_account_not_email(
    client, app, sso_on, db_session
):
    sso_login(client, "first@acme.test", subject="employee-17")
    first = user_by_email(db_session, "first@acme.test")
    client.post("/logout", data={"csrf_token": csrf_token(client, "/agent/")})

    # The person's address changed at the provider; the account (subject) did not.
    response = sso_login(app.test_client(), "renamed@acme.test", subject="employee-17")

    assert response.status_code == 302
    assert user_by_email(db_session, "renamed@acme.test") is None
    assert len(audit_entries(db_session, "user.sso_login")) == 2
    assert audit_entries(db_session, "user.sso_login")[-1].target_id == first.id
    assert audit_entries(db_session, "user.sso_created")[0].target_id == first.id


def test_an_existing_agent_is_linked_by_verified_email(client, sso_on, factory, db_session):
    agent = factory.agent(email="ana@acme.test", name="Ana")
    agent_id = agent.id

    response = sso_login(client, "ana@acme.test", subject="ana-at-provider")

    assert response.status_code == 302 and response.location == "/agent/"
    identity = db_session.scalar(select(SsoIdentity).where(SsoIdentity.user_id == agent_id))
    assert identity.subject == "ana-at-provider"
    assert audit_entries(db_session, "user.sso_created") == []
    (login,) = audit_entries(db_session, "user.sso_login")
    assert login.actor_id == agent_id
    assert login.changes == {"linked": [None, sso_on["AUTOCRM_OIDC_ISSUER"]]}
    assert len(db_session.scalars(select(User).where(User.email == "ana@acme.test")).all()) == 1


def test_sign_on_returns_to_the_page_asked_for(client, sso_on):
    login_page = client.get("/notifications")
    assert login_page.status_code == 302
    authorize = begin(client, "/login/sso?next=/notifications")

    response = back_at(client, oidc_provider.log_in_at(authorize, "back@acme.test"))

    assert response.status_code == 302 and response.location == "/notifications"


def test_an_outside_next_is_ignored(client, sso_on):
    authorize = begin(client, "/login/sso?next=https://evil.test/")

    response = back_at(client, oidc_provider.log_in_at(authorize, "stay@acme.test"))

    assert response.location == "/agent/"


# -- refusals a verified identity gets (each in the audit log) ---------------------------------


def test_a_domain_not_allowed_is_refused(client, sso_on, db_session):
    sso_on["AUTOCRM_OIDC_ALLOWED_DOMAINS"] = "acme.test, acme-corp.test"

    response = sso_login(client, "mallory@elsewhere.test", name="Mallory")

    assert response.status_code == 403
    assert "elsewhere.test" in error_on_page(response)
    assert user_by_email(db_session, "mallory@elsewhere.test") is None
    assert client.get("/agent/").status_code == 302  # not logged in
    (refused,) = audit_entries(db_session, "user.sso_refused")
    assert refused.actor_id is None and refused.target_id is None
    assert refused.target_label == "Mallory <mallory@elsewhere.test>"
    assert "elsewhere.test" in refused.changes["reason"][1]
    # The allowed domains still get in.
    assert sso_login(client, "ok@acme-corp.test").status_code == 302


def test_narrowing_the_domains_refuses_users_who_signed_on_before(client, app, sso_on, db_session):
    assert sso_login(app.test_client(), "old-timer@old.test").status_code == 302
    old_timer = user_by_email(db_session, "old-timer@old.test")
    sso_on["AUTOCRM_OIDC_ALLOWED_DOMAINS"] = "acme.test"

    response = sso_login(client, "old-timer@old.test")

    assert response.status_code == 403
    assert client.get("/agent/").status_code == 302
    (refused,) = audit_entries(db_session, "user.sso_refused")
    assert refused.target_id == old_timer.id


def test_an_unverified_email_is_refused(client, sso_on, db_session):
    response = sso_login(client, "unverified@acme.test", verified=False)

    assert response.status_code == 403
    assert "not verified" in error_on_page(response)
    assert user_by_email(db_session, "unverified@acme.test") is None
    (refused,) = audit_entries(db_session, "user.sso_refused")
    assert "not verified" in refused.changes["reason"][1]


def test_an_unverified_email_cannot_take_over_an_existing_account(client, sso_on, factory):
    factory.admin(email="boss@acme.test")

    response = sso_login(client, "boss@acme.test", verified=False)

    assert response.status_code == 403
    assert client.get("/agent/").status_code == 302


@pytest.mark.parametrize("linked", [False, True])
def test_a_deactivated_user_is_refused(client, app, sso_on, factory, db_session, linked):
    agent = factory.agent(email="gone@acme.test")
    agent_id = agent.id
    if linked:  # signed on before, then deactivated
        assert sso_login(app.test_client(), "gone@acme.test").status_code == 302
    agent.active = False
    db_session.commit()

    response = sso_login(client, "gone@acme.test")

    assert response.status_code == 403
    assert "deactivated" in error_on_page(response)
    assert client.get("/agent/").status_code == 302
    (refused,) = audit_entries(db_session, "user.sso_refused")
    assert refused.target_id == agent_id and refused.actor_id is None


def test_a_customer_account_does_not_become_staff_by_sign_on(client, sso_on, factory, db_session):
    customer = factory.customer(email="casey@acme.test")

    response = sso_login(client, "casey@acme.test")

    assert response.status_code == 403
    assert "customer account" in error_on_page(response)
    db_session.refresh(customer)
    assert customer.role is Role.CUSTOMER
    assert db_session.scalar(select(SsoIdentity).where(SsoIdentity.user_id == customer.id)) is None
    assert audit_entries(db_session, "user.sso_refused")[0].target_id == customer.id


def test_admins_read_sign_ons_and_refusals_in_the_audit_log(client, app, sso_on, factory):
    sso_on["AUTOCRM_OIDC_ALLOWED_DOMAINS"] = "acme.test"
    sso_login(app.test_client(), "welcome@acme.test", name="Wendy")
    sso_login(app.test_client(), "intruder@elsewhere.test", name="Ivan")
    web_login(client, factory.admin())

    page = client.get("/admin/audit/").get_data(as_text=True)

    assert "Joined through single sign-on" in page
    assert "Logged in with single sign-on" in page
    assert "Refused single sign-on" in page
    assert "Ivan &lt;intruder@elsewhere.test&gt;" in page


# -- answers that are not genuine (refused, logged, not audited: nobody is vouched for) -----------


def test_a_tampered_state_is_refused(client, sso_on, db_session):
    callback = oidc_provider.log_in_at(begin(client), "tamper@acme.test")
    forged = re.sub(r"state=[^&]+", "state=forged-by-an-attacker", callback)

    response = back_at(client, forged)

    assert response.status_code == 400
    assert "does not match" in error_on_page(response)
    assert user_by_email(db_session, "tamper@acme.test") is None
    assert client.get("/agent/").status_code == 302


def test_an_answer_for_another_browser_is_refused(client, app, sso_on, db_session):
    """Login CSRF: an attacker's own callback URL, opened in the victim's browser."""
    attackers_callback = oidc_provider.log_in_at(begin(app.test_client()), "eve@acme.test")

    response = back_at(client, attackers_callback)

    assert response.status_code == 400
    assert client.get("/agent/").status_code == 302
    assert user_by_email(db_session, "eve@acme.test") is None


def test_an_answer_is_used_once(client, sso_on):
    callback = oidc_provider.log_in_at(begin(client), "once@acme.test")
    assert back_at(client, callback).status_code == 302
    client.post("/logout", data={"csrf_token": csrf_token(client, "/agent/")})

    replayed = back_at(client, callback)

    assert replayed.status_code == 400
    assert client.get("/agent/").status_code == 302


def test_an_id_token_not_signed_by_the_provider_is_refused(client, sso_on, db_session):
    response = sso_login(client, "forged@acme.test", forge=True)

    assert response.status_code == 400
    assert "could not be verified" in error_on_page(response)
    assert user_by_email(db_session, "forged@acme.test") is None


@pytest.mark.parametrize(
    "switch",
    [
        {"nonce": "from-another-sign-on"},
        {"audience": "some-other-client"},
        {"expired": True},
    ],
    ids=["nonce", "audience", "expired"],
)
def test_an_id_token_meant_for_something_else_is_refused(client, sso_on, db_session, switch):
    response = sso_login(client, "replayed@acme.test", **switch)

    assert response.status_code == 400
    assert "could not be verified" in error_on_page(response)
    assert user_by_email(db_session, "replayed@acme.test") is None


def test_the_email_may_come_from_userinfo_alone(client, sso_on, db_session):
    response = sso_login(client, "quiet@acme.test", name="Quinn", userinfo_only=True)

    assert response.status_code == 302 and response.location == "/agent/"
    assert user_by_email(db_session, "quiet@acme.test").name == "Quinn"


def test_the_provider_saying_no_is_shown(client, sso_on):
    response = sso_login(client, "no@acme.test", deny=True)

    assert response.status_code == 400
    assert "access_denied" in error_on_page(response)


def test_a_provider_that_is_down_gets_a_clear_page(client, sso_on):
    sso_on["AUTOCRM_OIDC_ISSUER"] = f"http://127.0.0.1:{processes.free_port()}"

    response = client.get("/login/sso")

    assert response.status_code == 502
    assert "not answering" in error_on_page(response)


# -- the login page and staff password login -----------------------------------------------------


def test_the_login_page_offers_sign_on_only_when_set_up(client, app, provider, monkeypatch):
    assert "Log in with" not in client.get("/login").get_data(as_text=True)
    assert client.get("/login/sso").status_code == 404

    monkeypatch.setitem(app.config, "AUTOCRM_OIDC_ISSUER", provider.issuer)
    monkeypatch.setitem(app.config, "AUTOCRM_OIDC_CLIENT_ID", provider.client_id)
    monkeypatch.setitem(app.config, "AUTOCRM_OIDC_CLIENT_SECRET", provider.client_secret)
    page = client.get("/login?next=/notifications").get_data(as_text=True)

    assert 'href="/login/sso?next=/notifications">Log in with single sign-on</a>' in page
    assert 'name="password"' in page  # customers still log in with a password


@pytest.fixture
def staff_password_off(sso_on: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sso_on, "AUTOCRM_STAFF_PASSWORD_LOGIN", "off")


@pytest.mark.usefixtures("fresh_login_limit", "staff_password_off")
def test_staff_password_login_off_refuses_staff_on_the_login_page(client, factory):
    agent = factory.agent()
    page = client.get("/login").get_data(as_text=True)
    assert "Agents and administrators: use Acme ID" in page

    response = client.post(
        "/login",
        data={"email": agent.email, "password": PASSWORD, "csrf_token": csrf_token(client)},
    )

    assert response.status_code == 401
    assert "single sign-on" in error_on_page(response)
    assert client.get("/agent/").status_code == 302


@pytest.mark.usefixtures("fresh_login_limit", "staff_password_off")
def test_staff_password_login_off_refuses_staff_tokens(client, factory):
    admin = factory.admin()

    response = client.post("/api/auth/token", json={"email": admin.email, "password": PASSWORD})

    body = assert_error(response, 401)
    assert "single sign-on" in body["message"]


@pytest.mark.usefixtures("fresh_login_limit", "staff_password_off")
def test_staff_password_login_off_leaves_customers_and_wrong_passwords_alone(client, factory):
    customer, agent = factory.customer(), factory.agent()

    web_login(client, customer)
    token = client.post("/api/auth/token", json={"email": customer.email, "password": PASSWORD})
    assert token.status_code == 200
    # A wrong password does not learn that the account is staff.
    wrong = client.post("/api/auth/token", json={"email": agent.email, "password": "nope-nope"})
    assert assert_error(wrong, 401)["message"] == "Invalid email or password."


@pytest.mark.usefixtures("staff_password_off")
def test_staff_still_log_in_through_sign_on_when_passwords_are_off(client, factory):
    factory.agent(email="desk@acme.test")

    response = sso_login(client, "desk@acme.test")

    assert response.status_code == 302 and response.location == "/agent/"
    assert client.get("/agent/").status_code == 200
