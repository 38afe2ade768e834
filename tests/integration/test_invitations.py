"""Staff invite customers (issue 13's invite-only sign-up): an emailed link to choose a first
password, valid for a week and once; through the customer pages and the API."""

from __future__ import annotations

from datetime import timedelta

import time_machine
from flask.testing import FlaskClient
from sqlalchemy import select

from autocrm.audit.models import AdminAuditEntry
from autocrm.columns import utcnow
from autocrm.extensions import db
from autocrm.people import intake
from autocrm.people.models import User
from tests.factories import ApiClient, Factory, assert_error, csrf_token, web_login
from tests.integration.test_intake import (
    NEW_PASSWORD,
    can_log_in,
    emails_to,
    link_in,
    user_by_email,
)


def choose_password(client: FlaskClient, path: str) -> int:
    token = csrf_token(client, "/login")
    data = {"new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD, "csrf_token": token}
    return client.post(path, data=data).status_code


def test_an_agent_invites_a_customer_who_chooses_a_password_days_later(
    client: FlaskClient, factory: Factory, fresh_login_limit: None
) -> None:
    agent = factory.agent(name="Alex Agent")
    web_login(client, agent)
    data = {"email": "Ines@Example.test", "name": "Ines Invited", "csrf_token": csrf_token(client)}

    response = client.post("/agent/customers/invite", data=data)

    ines = user_by_email("ines@example.test")
    assert ines is not None and ines.email_verified_at is None and ines.name == "Ines Invited"
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/agent/customers/{ines.id}")
    assert "Invitation sent to ines@example.test" in client.get(
        response.headers["Location"]
    ).get_data(as_text=True)
    (email,) = emails_to("ines@example.test")
    assert "Alex Agent invited you" in email.subject
    path = link_in(email, "/password/reset/")
    assert not can_log_in(client, "ines@example.test", NEW_PASSWORD)

    client.post("/logout", data={"csrf_token": csrf_token(client, "/agent/")})
    with time_machine.travel(utcnow() + timedelta(days=3), tick=False):  # past a reset's hour
        assert choose_password(client, path) == 302
        assert choose_password(client, path) == 400  # once
    assert can_log_in(client, "ines@example.test", NEW_PASSWORD)
    assert db.session.get_one(User, ines.id).email_verified_at is not None
    invited = select(AdminAuditEntry).where(AdminAuditEntry.action == "user.invited")
    entry = db.session.scalar(invited)
    assert entry is not None and entry.actor_id == agent.id and entry.target_id == ines.id


def test_an_invitation_expires_after_its_week(
    client: FlaskClient, factory: Factory, fresh_login_limit: None
) -> None:
    intake.do_invite_customer(factory.agent(), "late@example.test", "Lou Late")
    path = link_in(emails_to("late@example.test")[0], "/password/reset/")

    with time_machine.travel(utcnow() + timedelta(days=7, minutes=1), tick=False):
        assert choose_password(client, path) == 400
    assert not can_log_in(client, "late@example.test", NEW_PASSWORD)


def test_a_reset_link_still_expires_after_its_hour(
    client: FlaskClient, factory: Factory, fresh_login_limit: None
) -> None:
    customer = factory.customer(email="hour@example.test")
    client.post(
        "/password/forgot",
        data={"email": customer.email, "csrf_token": csrf_token(client, "/password/forgot")},
    )
    path = link_in(emails_to("hour@example.test")[-1], "/password/reset/")

    with time_machine.travel(utcnow() + timedelta(hours=1, minutes=1), tick=False):
        assert choose_password(client, path) == 400


def test_a_customer_who_asked_without_an_account_can_be_invited(factory: Factory) -> None:
    asked = intake.find_or_create_customer("asker@example.test", "Ann Asker", "help center form")
    db.session.commit()

    invited = intake.do_invite_customer(factory.admin(), "asker@example.test", "")

    assert invited.id == asked.id and invited.name == "Ann Asker"
    assert len(emails_to("asker@example.test")) == 1


def test_the_api_invites_for_staff_and_names_the_field_it_refuses(
    client: FlaskClient, factory: Factory
) -> None:
    agent = ApiClient(client, factory.agent())
    existing = factory.customer(email="known@example.test")
    factory.agent(email="colleague@example.test")

    made = agent.post("/api/users/invitations", json={"email": "api@example.test", "name": "Api"})
    assert made.status_code == 201, made.get_data(as_text=True)
    assert made.get_json()["email"] == "api@example.test"
    assert len(emails_to("api@example.test")) == 1

    for email, words in [
        (existing.email, "already has an account"),
        ("colleague@example.test", "staff"),
    ]:
        body = assert_error(agent.post("/api/users/invitations", json={"email": email}), 422)
        assert words in " ".join(body["errors"]["email"])
    body = assert_error(agent.post("/api/users/invitations", json={"email": "not-an-address"}), 422)
    assert "email" in body["errors"]["json"]
    as_customer = ApiClient(client, existing)
    assert_error(as_customer.post("/api/users/invitations", json={"email": "x@example.test"}), 403)
    assert user_by_email("x@example.test") is None


def test_the_invite_page_keeps_what_was_typed_and_marks_the_field(
    client: FlaskClient, factory: Factory
) -> None:
    factory.customer(email="known@example.test")
    web_login(client, factory.agent())
    data = {"email": "known@example.test", "name": "Kim Known", "csrf_token": csrf_token(client)}

    response = client.post("/agent/customers/invite", data=data)

    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert 'value="known@example.test"' in page and 'value="Kim Known"' in page
    assert 'id="invite-email-error"' in page and "already has an account" in page
