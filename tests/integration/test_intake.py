"""Customers getting in on their own (issue 13): signing up under the site's policy and
confirming the address, and asking without an account from the help center; neither tells a
stranger whether an address has an account."""

from __future__ import annotations

import re
from datetime import timedelta

import time_machine
from flask.testing import FlaskClient
from sqlalchemy import select

from autocrm.columns import utcnow
from autocrm.errors import Forbidden
from autocrm.extensions import db
from autocrm.notifications.models import EmailMessage
from autocrm.people import intake
from autocrm.people.models import Role, User
from autocrm.tickets.models import Ticket
from tests.factories import PASSWORD, Factory, csrf_token, web_login

NEW_PASSWORD = "a sign-up secret 42"
LINK = re.compile(r"http://\S+?(/\S+)")


def emails_to(address: str) -> list[EmailMessage]:
    return list(
        db.session.scalars(
            select(EmailMessage).where(EmailMessage.to_address == address).order_by(EmailMessage.id)
        )
    )


def link_in(email: EmailMessage, path_start: str) -> str:
    paths = [m.group(1) for m in LINK.finditer(email.body)]
    (path,) = [p for p in paths if p.startswith(path_start)]
    return path


def user_by_email(address: str) -> User | None:
    return db.session.scalar(select(User).where(User.email == address))


def can_log_in(client: FlaskClient, email: str, password: str) -> bool:
    response = client.post("/api/auth/token", json={"email": email, "password": password})
    return response.status_code == 200


def sign_up(client: FlaskClient, name: str, email: str, password: str = NEW_PASSWORD):
    token = csrf_token(client, "/signup")
    data = {"name": name, "email": email, "password": password, "csrf_token": token}
    return client.post("/signup", data=data)


def ask(client: FlaskClient, **fields: str):
    """Fill in /help/new as a person does: the page is shown, some seconds pass, it is sent."""
    page = client.get("/help/new").get_data(as_text=True)
    shown = re.search(r'name="shown" value="([^"]+)"', page)
    token = csrf_token(client, "/help/new")
    assert shown
    data = {"csrf_token": token, "shown": shown.group(1), "website": "", **fields}
    with time_machine.travel(utcnow() + timedelta(seconds=5), tick=False):
        return client.post("/help/new", data=data)


# -- signing up ----------------------------------------------------------------------------------


def test_a_sign_up_works_once_its_address_is_confirmed(
    client: FlaskClient, fresh_login_limit: None
) -> None:
    response = sign_up(client, "Sam Signup", "Sam@Example.test")

    assert response.status_code == 200 and "we have emailed" in response.get_data(as_text=True)
    sam = user_by_email("sam@example.test")
    assert sam is not None and sam.role is Role.CUSTOMER and sam.email_verified_at is None
    assert not can_log_in(client, "sam@example.test", NEW_PASSWORD)
    (email,) = emails_to("sam@example.test")
    confirmed = client.get(link_in(email, "/signup/confirm/"))
    assert confirmed.status_code == 302
    assert can_log_in(client, "sam@example.test", NEW_PASSWORD)
    assert client.get("/signup/confirm/forged").status_code == 400


def test_signing_up_with_a_taken_address_answers_the_same_and_emails_its_owner(
    client: FlaskClient, factory: Factory, fresh_login_limit: None
) -> None:
    owner = factory.customer(email="taken@example.test")

    response = sign_up(client, "Impostor", "taken@example.test")

    assert response.status_code == 200 and "we have emailed" in response.get_data(as_text=True)
    (email,) = emails_to("taken@example.test")
    assert "already has an account" in email.body
    assert db.session.get_one(User, owner.id).name == owner.name
    assert can_log_in(client, owner.email, PASSWORD)
    assert not can_log_in(client, owner.email, NEW_PASSWORD)


def test_the_policy_limits_who_may_sign_up_and_bad_input_names_its_field(
    client: FlaskClient, factory: Factory, fresh_login_limit: None
) -> None:
    admin = factory.admin()
    intake.do_set_signup_policy(admin, "domains", "acme.test, @Example.org")

    refused = sign_up(client, "Outsider", "out@elsewhere.test")
    assert refused.status_code == 422
    page = refused.get_data(as_text=True)
    assert 'id="email-error"' in page and "acme.test, example.org" in page
    assert 'value="Outsider"' in page  # what was typed is kept (never the password)
    assert user_by_email("out@elsewhere.test") is None
    assert sign_up(client, "Insider", "in@acme.test").status_code == 200

    weak = sign_up(client, "", "new@acme.test", password="short")
    assert weak.status_code == 422
    page = weak.get_data(as_text=True)
    assert 'id="name-error"' in page and 'id="password-error"' in page

    intake.do_set_signup_policy(admin, "closed")
    assert sign_up(client, "Late", "late@acme.test").status_code == 422


def test_only_admins_set_the_policy_and_a_bad_one_names_its_field(factory: Factory) -> None:
    agent, admin = factory.agent(), factory.admin()
    try:
        intake.do_set_signup_policy(agent, "open")
    except Forbidden:
        pass
    else:
        raise AssertionError("an agent changed the sign-up policy")
    for mode, domains, field in (("domains", "", "domains"), ("sometimes", "", "mode")):
        try:
            intake.do_set_signup_policy(admin, mode, domains)
        except intake.InvalidInput as exc:
            assert field in exc.errors
        else:
            raise AssertionError((mode, domains))
    assert intake.signup_policy().mode == "open"


# -- asking without an account -------------------------------------------------------------------


def test_a_stranger_asks_gets_a_ticket_and_a_link_to_set_a_password(
    client: FlaskClient, fresh_login_limit: None
) -> None:
    response = ask(
        client,
        name="Nina New",
        email="nina@example.test",
        subject="Invoice is wrong",
        description="It charges me twice.",
    )

    assert response.status_code == 200, response.get_data(as_text=True)
    assert "on its way" in response.get_data(as_text=True)
    nina = user_by_email("nina@example.test")
    assert nina is not None and nina.email_verified_at is None and nina.name == "Nina New"
    (ticket,) = db.session.scalars(select(Ticket).where(Ticket.requester_id == nina.id))
    assert ticket.subject == "Invoice is wrong" and ticket.channel == intake.ANONYMOUS_CHANNEL
    (email,) = emails_to("nina@example.test")
    assert f"#{ticket.id}" in email.subject

    path = link_in(email, "/password/reset/")
    token = csrf_token(client, "/login")
    data = {"new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD, "csrf_token": token}
    with time_machine.travel(utcnow() + timedelta(seconds=10), tick=False):  # after asking
        assert client.post(path, data=data).status_code == 302
    assert can_log_in(client, "nina@example.test", NEW_PASSWORD)
    assert db.session.get_one(User, nina.id).email_verified_at is not None


def test_an_existing_customers_request_is_theirs_and_says_nothing_to_the_stranger(
    client: FlaskClient, factory: Factory, fresh_login_limit: None
) -> None:
    casey = factory.customer(email="casey@example.test")

    response = ask(client, name="x", email="casey@example.test", subject="Hi", description="Help")

    assert response.status_code == 200 and "on its way" in response.get_data(as_text=True)
    (ticket,) = db.session.scalars(select(Ticket).where(Ticket.requester_id == casey.id))
    (email,) = emails_to("casey@example.test")
    assert f"/portal/tickets/{ticket.id}" in email.body and "/password/reset/" not in email.body
    assert db.session.get_one(User, casey.id).name == casey.name


def test_bots_and_hurried_or_forged_forms_make_no_ticket(
    client: FlaskClient, fresh_login_limit: None
) -> None:
    fields = {"name": "Bot", "email": "bot@example.test", "subject": "Buy", "description": "now"}
    trapped = ask(client, **{**fields, "website": "http://spam.example"})
    assert trapped.status_code == 200 and "on its way" in trapped.get_data(as_text=True)

    token = csrf_token(client, "/help/new")
    forged = client.post("/help/new", data={**fields, "csrf_token": token, "shown": "x.y.z"})
    assert forged.status_code == 422 and 'id="form-error"' in forged.get_data(as_text=True)
    assert 'value="Buy"' in forged.get_data(as_text=True)

    page = client.get("/help/new").get_data(as_text=True)
    shown = re.search(r'name="shown" value="([^"]+)"', page)
    assert shown
    hurried = client.post("/help/new", data={**fields, "csrf_token": token, "shown": shown[1]})
    assert hurried.status_code == 422

    assert user_by_email("bot@example.test") is None


def test_past_the_daily_cap_requests_are_dropped(
    app, client: FlaskClient, factory: Factory, fresh_login_limit: None
) -> None:
    casey = factory.customer(email="busy@example.test")
    cap = app.config["AUTOCRM_ANONYMOUS_DAILY_CAP"]
    for n in range(cap + 2):
        intake.do_request_without_account("Busy", "busy@example.test", f"Question {n}", "...")
    count = db.session.scalars(select(Ticket.id).where(Ticket.requester_id == casey.id)).all()
    assert len(count) == cap


def test_missing_fields_are_named_and_what_was_typed_is_kept(
    client: FlaskClient, fresh_login_limit: None
) -> None:
    response = ask(client, name="Kim", email="not an address", subject="", description="Text")
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert 'id="email-error"' in page and 'id="subject-error"' in page
    assert "Text</textarea>" in page and 'value="Kim"' in page


def test_an_admin_sets_the_policy_on_the_users_page(client: FlaskClient, factory: Factory) -> None:
    admin = factory.admin()
    web_login(client, admin)
    token = csrf_token(client, "/admin/users")

    bad = client.post(
        "/admin/users/signup-policy", data={"mode": "domains", "domains": "", "csrf_token": token}
    )
    assert bad.status_code == 303
    assert "was not changed" in client.get("/admin/users").get_data(as_text=True)
    saved = client.post(
        "/admin/users/signup-policy",
        data={"mode": "domains", "domains": "acme.test", "csrf_token": token},
    )
    assert saved.status_code == 303
    page = client.get("/admin/users").get_data(as_text=True)
    assert 'value="acme.test"' in page and 'value="domains" checked' in page
    assert intake.signup_policy() == intake.SignupPolicy("domains", ("acme.test",))


def test_admins_see_who_has_not_confirmed_their_address(
    client: FlaskClient, factory: Factory, fresh_login_limit: None
) -> None:
    web_login(client, factory.admin())
    intake.do_request_without_account("Una", "una@example.test", "Hello", "A question")

    page = client.get("/admin/users?q=una").get_data(as_text=True)

    assert "Unconfirmed" in page
