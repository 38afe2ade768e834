"""A forgotten password (issue 13): ask from the login page, follow the emailed link once,
choose a new password; everything the old one opened ends."""

from __future__ import annotations

import re
from datetime import timedelta

import time_machine
from flask.testing import FlaskClient
from sqlalchemy import select

from autocrm.audit.models import AdminAuditEntry
from autocrm.columns import utcnow
from autocrm.extensions import db
from autocrm.notifications.models import EmailMessage
from autocrm.people.models import ApiToken, User
from autocrm.people.tokens import do_create_token
from tests.factories import PASSWORD, Factory, csrf_token, web_login

NEW_PASSWORD = "a brand new secret"
LINK = re.compile(r"http://\S+/password/reset/(\S+)")
SENT = "we have emailed it a link"


def ask(client: FlaskClient, email: str) -> str:
    token = csrf_token(client, "/password/forgot")
    response = client.post("/password/forgot", data={"email": email, "csrf_token": token})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_data(as_text=True)


def emails_to(address: str) -> list[EmailMessage]:
    return list(db.session.scalars(select(EmailMessage).where(EmailMessage.to_address == address)))


def link_path(address: str) -> str:
    (email,) = emails_to(address)
    match = LINK.search(email.body)
    assert match, email.body
    return f"/password/reset/{match.group(1)}"


def set_password(client: FlaskClient, path: str, new: str, confirm: str | None = None):
    token = csrf_token(client, "/login")
    data = {"new_password": new, "confirm_password": new if confirm is None else confirm}
    return client.post(path, data={**data, "csrf_token": token})


def can_log_in(client: FlaskClient, email: str, password: str) -> bool:
    response = client.post("/api/auth/token", json={"email": email, "password": password})
    return response.status_code == 200


def test_the_emailed_link_sets_a_new_password_once_and_ends_the_old_ones_sessions_and_tokens(
    app, client: FlaskClient, factory: Factory, fresh_login_limit: None
) -> None:
    customer = factory.customer(email="casey@example.test")
    elsewhere = app.test_client()
    web_login(elsewhere, customer)
    do_create_token(customer, name="script", scope="read", expires_in_days=None)

    assert SENT in ask(client, "  Casey@Example.test ")
    path = link_path("casey@example.test")
    page = client.get(path)
    assert page.status_code == 200 and "casey@example.test" in page.get_data(as_text=True)

    done = set_password(client, path, NEW_PASSWORD)

    assert done.status_code == 302 and done.headers["Location"].endswith("/login")
    assert can_log_in(client, customer.email, NEW_PASSWORD)
    assert not can_log_in(client, customer.email, PASSWORD)
    assert elsewhere.get("/portal/").status_code == 302  # the other browser is logged out
    assert db.session.scalars(select(ApiToken).where(ApiToken.user_id == customer.id)).all() == []
    again = set_password(client, path, "yet another secret")
    assert again.status_code == 400 and "Ask for a new one" in again.get_data(as_text=True)
    assert client.get(path).status_code == 400
    actions = db.session.scalars(
        select(AdminAuditEntry.action).where(AdminAuditEntry.target_id == customer.id)
    ).all()
    assert "user.password_reset_requested" in actions and "user.password_reset_by_link" in actions


def test_asking_says_the_same_for_unknown_and_deactivated_accounts_and_sends_nothing(
    client: FlaskClient, factory: Factory, fresh_login_limit: None
) -> None:
    gone = factory.agent(email="gone@example.test")
    gone.active = False
    db.session.commit()

    for address in ("nobody@example.test", "gone@example.test"):
        assert SENT in ask(client, address)
        assert emails_to(address) == []


def test_a_link_expires(client: FlaskClient, factory: Factory, app, fresh_login_limit) -> None:
    factory.customer(email="late@example.test")
    ask(client, "late@example.test")
    path = link_path("late@example.test")
    ttl = app.config["AUTOCRM_PASSWORD_RESET_TTL"]

    with time_machine.travel(utcnow() + timedelta(seconds=ttl + 5), tick=False):
        response = set_password(client, path, NEW_PASSWORD)

    assert response.status_code == 400
    assert not can_log_in(client, "late@example.test", NEW_PASSWORD)


def test_a_forged_link_is_refused(client: FlaskClient, factory: Factory) -> None:
    customer = factory.customer()
    response = set_password(client, "/password/reset/not-a-real-token", NEW_PASSWORD)
    assert response.status_code == 400
    assert db.session.get_one(User, customer.id).password_hash == customer.password_hash


def test_bad_new_passwords_are_named_at_their_field_and_the_link_keeps_working(
    client: FlaskClient, factory: Factory, fresh_login_limit: None
) -> None:
    factory.customer(email="short@example.test")
    ask(client, "short@example.test")
    path = link_path("short@example.test")

    short = set_password(client, path, "short")
    assert short.status_code == 422
    assert 'id="new_password-error"' in short.get_data(as_text=True)
    mismatch = set_password(client, path, NEW_PASSWORD, "something else")
    assert mismatch.status_code == 422
    assert 'id="confirm_password-error"' in mismatch.get_data(as_text=True)

    assert set_password(client, path, NEW_PASSWORD).status_code == 302


def test_asking_without_an_address_is_answered_at_the_field(client: FlaskClient) -> None:
    token = csrf_token(client, "/password/forgot")
    response = client.post("/password/forgot", data={"email": "", "csrf_token": token})
    assert response.status_code == 422
    assert 'id="email-error"' in response.get_data(as_text=True)


def test_the_login_page_links_to_it(client: FlaskClient) -> None:
    assert 'href="/password/forgot"' in client.get("/login").get_data(as_text=True)
