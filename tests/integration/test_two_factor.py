"""Two-factor login (``autocrm.people.twofactor``): setting it up with an authenticator app,
the code step of the web login and of the token endpoint, codes that work once, recovery codes
that work once, an admin's reset, the staff requirement, and the audit log of each.

Codes are computed here with pyotp from the secret the set-up shows, as an app would. A code
is good for its 30-second step and the ones either side; tests that need a second fresh code
take the next step's (``code_of(secret, 1)``), which stays good across a step boundary."""

from __future__ import annotations

import re
import time
from itertools import count

import pyotp
import pytest
import time_machine
from limits import parse as parse_limit
from sqlalchemy import select

from autocrm.audit.models import AdminAuditEntry
from autocrm.errors import Forbidden, InvalidInput, NotAuthenticated
from autocrm.people import twofactor
from autocrm.people.models import User
from autocrm.site import settings
from tests.factories import PASSWORD, ApiClient, assert_error, csrf_token, web_login

TOKEN_URL = "/api/auth/token"
_addresses = count(1)


def code_of(secret: str, steps_ahead: int = 0) -> str:
    """The code an authenticator app shows now (or ``steps_ahead`` 30-second steps later)."""
    totp = pyotp.TOTP(secret)
    return totp.generate_otp(int(time.time()) // twofactor.STEP_SECONDS + steps_ahead)


def enrol(user: User) -> tuple[str, list[str]]:
    """Turn two-factor login on for ``user`` through the services; the secret and the
    recovery codes. (The current step's code is spent on the confirmation.)"""
    twofactor.do_begin_enrolment(user)
    enrolment = twofactor.enrolment_of(user)
    assert enrolment is not None
    codes = twofactor.do_confirm_enrolment(user, code_of(enrolment.secret))
    return enrolment.secret, codes


def actions_about(db_session, user: User) -> list[str]:
    return list(
        db_session.scalars(
            select(AdminAuditEntry.action)
            .where(AdminAuditEntry.target_type == "user", AdminAuditEntry.target_id == user.id)
            .order_by(AdminAuditEntry.id)
        )
    )


def password_step(client, user: User, password: str = PASSWORD, **kw):
    return client.post(
        "/login",
        data={"email": user.email, "password": password, "csrf_token": csrf_token(client)},
        **kw,
    )


def code_step(client, code: str, page_with_form: str = "/login/verify", **kw):
    return client.post(
        "/login/verify", data={"otp": code, "csrf_token": csrf_token(client, page_with_form)}, **kw
    )


def two_step_login(client, user: User, secret: str) -> None:
    """Log in with the password and the next step's code (the current one was spent)."""
    assert password_step(client, user).status_code == 303
    assert code_step(client, code_of(secret, 1)).status_code == 303


def opens(client, path: str) -> bool:
    response = client.get(path)
    assert response.status_code in (200, 302), response.status_code
    return response.status_code == 200


@pytest.fixture
def agent(factory) -> User:
    return factory.agent(name="Tess Totp")


# -- setting it up -------------------------------------------------------------------------------


def test_set_up_needs_a_current_code_then_gives_ten_recovery_codes(db_session, agent):
    twofactor.do_begin_enrolment(agent)
    enrolment = twofactor.enrolment_of(agent)
    assert enrolment is not None
    assert enrolment.uri.startswith("otpauth://totp/AutoCRM:")
    assert "<svg" in enrolment.qr_svg and "http" not in enrolment.qr_svg.replace(
        "http://www.w3.org", ""
    )
    # Stored encrypted: the database does not hold the secret in clear.
    assert agent.totp_secret and enrolment.secret not in agent.totp_secret

    with pytest.raises(InvalidInput) as wrong:
        twofactor.do_confirm_enrolment(
            agent, "000000" if code_of(enrolment.secret) != "000000" else "111111"
        )
    assert "otp" in wrong.value.errors
    assert not agent.has_two_factor

    codes = twofactor.do_confirm_enrolment(agent, code_of(enrolment.secret))

    assert agent.has_two_factor
    assert len(codes) == 10 and len(set(codes)) == 10
    assert all(re.fullmatch(r"[a-z2-9]{5}-[a-z2-9]{5}", c) for c in codes)
    assert twofactor.recovery_codes_left(agent) == 10
    assert twofactor.enrolment_of(agent) is None  # the secret is not shown again
    assert actions_about(db_session, agent) == ["user.2fa_enabled"]


def test_the_account_page_shows_the_qr_code_and_the_codes_once(client, agent, fresh_login_limit):
    web_login(client, agent)
    assert "Set up two-factor login" in client.get("/sessions").get_data(as_text=True)

    started = client.post(
        "/account/two-factor/start", data={"csrf_token": csrf_token(client, "/account/two-factor")}
    )
    assert started.status_code == 303
    page = client.get("/account/two-factor")
    html = page.get_data(as_text=True)
    assert page.headers["Cache-Control"] == "no-store"
    assert '<svg role="img"' in html and "<title>QR code" in html
    secret = re.search(r'data-secret="([A-Z2-7]+)"', html).group(1)

    confirmed = client.post(
        "/account/two-factor/confirm",
        data={"otp": code_of(secret), "csrf_token": csrf_token(client, "/account/two-factor")},
    )

    assert confirmed.status_code == 201
    assert confirmed.headers["Cache-Control"] == "no-store"
    codes = re.findall(r"<code>([a-z2-9]{5}-[a-z2-9]{5})</code>", confirmed.get_data(as_text=True))
    assert len(codes) == 10
    again = client.get("/account/two-factor").get_data(as_text=True)
    assert "10 recovery codes left" in again
    assert not any(code in again for code in codes)
    assert secret not in again


# -- the web login -------------------------------------------------------------------------------


def test_login_asks_for_the_code_before_the_session_starts(
    client, db_session, agent, fresh_login_limit
):
    secret, _ = enrol(agent)

    response = password_step(client, agent, query_string={"next": "/notifications"})

    assert response.status_code == 303 and response.location.endswith("/login/verify")
    assert not opens(client, "/agent/")  # a correct password alone is no login
    done = code_step(client, code_of(secret, 1))
    assert done.status_code == 303 and done.location.endswith("/notifications")
    assert opens(client, "/agent/")


def test_a_wrong_code_is_refused_and_audited(client, db_session, agent, fresh_login_limit):
    secret, _ = enrol(agent)
    password_step(client, agent)
    wrong = "123456" if code_of(secret, 1) != "123456" else "654321"

    refused = code_step(client, wrong)

    assert refused.status_code == 401
    assert "not right" in refused.get_data(as_text=True)
    assert not opens(client, "/agent/")
    assert actions_about(db_session, agent)[-1] == "user.2fa_failed"
    assert code_step(client, code_of(secret, 1)).status_code == 303  # the login goes on


def test_a_code_logs_in_only_once(client, app, db_session, agent, fresh_login_limit):
    secret, _ = enrol(agent)
    code = code_of(secret, 1)
    password_step(client, agent)
    assert code_step(client, code).status_code == 303

    other = app.test_client()
    password_step(other, agent)
    replayed = code_step(other, code)

    assert replayed.status_code == 401
    assert not opens(other, "/agent/")
    # An older code of the window is refused too once a later one was used.
    assert code_step(other, code_of(secret, 0)).status_code == 401


def test_a_recovery_code_logs_in_once(client, app, db_session, agent, fresh_login_limit):
    _, codes = enrol(agent)
    password_step(client, agent)

    used = code_step(client, codes[3].upper().replace("-", " "))  # typed loosely

    assert used.status_code == 303
    queue = client.get("/agent/")
    assert queue.status_code == 200
    assert "You logged in with a recovery code; 9 left." in queue.get_data(as_text=True)
    assert twofactor.recovery_codes_left(agent) == 9
    assert actions_about(db_session, agent)[-2:] == ["user.recovery_code_used", "user.logged_in"]
    other = app.test_client()
    password_step(other, agent)
    assert code_step(other, codes[3]).status_code == 401
    assert code_step(other, codes[4]).status_code == 303


def test_the_pending_login_expires(client, agent, fresh_login_limit):
    secret, _ = enrol(agent)
    password_step(client, agent)
    with client.session_transaction() as cookie:
        pending = cookie[twofactor.PENDING_LOGIN_KEY]
        cookie[twofactor.PENDING_LOGIN_KEY] = {**pending, "at": pending["at"] - 6 * 60}

    expired = client.get("/login/verify")

    assert expired.status_code == 303 and expired.location.endswith("/login")
    late = code_step(client, code_of(secret, 1), page_with_form="/login")
    assert late.status_code == 303 and late.location.endswith("/login")
    assert not opens(client, "/agent/")


def test_the_code_step_spends_the_accounts_login_budget(app, client, agent, fresh_login_limit):
    secret, _ = enrol(agent)
    allowed = parse_limit(app.config["AUTOCRM_LOGIN_RATE_LIMIT"]).amount
    password_step(client, agent, environ_base={"REMOTE_ADDR": "198.51.100.7"})
    wrong = "123456" if code_of(secret, 1) != "123456" else "654321"
    for attempt in range(allowed - 1):  # the password step spent one
        address = f"203.0.113.{next(_addresses)}"  # a new address each time: the account's budget
        assert code_step(client, wrong, environ_base={"REMOTE_ADDR": address}).status_code == 401, (
            attempt
        )

    limited = code_step(client, code_of(secret, 1), environ_base={"REMOTE_ADDR": "203.0.113.250"})

    assert limited.status_code == 429


def test_a_password_change_ends_the_pending_login(client, agent, fresh_login_limit):
    from autocrm.people import users

    secret, _ = enrol(agent)
    password_step(client, agent)
    users.do_change_own_password(agent, PASSWORD, "a brand new password")

    assert code_step(client, code_of(secret, 1), page_with_form="/login").location.endswith(
        "/login"
    )
    assert not opens(client, "/agent/")


# -- turning it off, resetting it ---------------------------------------------------------------


def test_turning_it_off_needs_the_password_or_a_code(client, db_session, agent, fresh_login_limit):
    enrol(agent)
    with pytest.raises(InvalidInput):
        twofactor.do_disable(agent, password="not my password")
    assert agent.has_two_factor

    twofactor.do_disable(agent, password=PASSWORD)

    assert not agent.has_two_factor and agent.totp_secret is None
    assert twofactor.recovery_codes_left(agent) == 0
    assert actions_about(db_session, agent)[-1] == "user.2fa_disabled"
    web_login(client, agent)  # the password alone logs in again


def test_an_admin_resets_a_users_two_factor_login(client, db_session, factory, agent):
    admin = factory.admin()
    enrol(agent)
    with pytest.raises(Forbidden):
        twofactor.do_reset(factory.agent(), agent.id)

    twofactor.do_reset(admin, agent.id)

    assert not agent.has_two_factor
    entry = db_session.scalars(
        select(AdminAuditEntry).where(AdminAuditEntry.action == "user.2fa_reset")
    ).one()
    assert (entry.actor_id, entry.target_id) == (admin.id, agent.id)


def test_the_admin_page_resets_it(client, db_session, factory, agent, fresh_login_limit):
    admin = factory.admin()
    enrol(agent)
    web_login(client, admin)
    page = f"/admin/users/{agent.id}"
    assert "Reset two-factor login of Tess Totp" in client.get(page).get_data(as_text=True)

    response = client.post(
        f"{page}/two-factor/reset", data={"csrf_token": csrf_token(client, page)}
    )

    assert response.status_code == 302
    db_session.refresh(agent)
    assert not agent.has_two_factor


# -- required for staff --------------------------------------------------------------------------


def test_an_admin_without_it_cannot_require_it(db_session, factory):
    admin = factory.admin()
    with pytest.raises(InvalidInput) as refused:
        twofactor.do_set_staff_required(admin, True)
    assert "required" in refused.value.errors
    assert settings.value(settings.STAFF_TWO_FACTOR_REQUIRED) is False


def test_requiring_it_logs_staff_out_and_makes_them_set_it_up(
    client, app, db_session, factory, agent, fresh_login_limit
):
    admin = factory.admin()
    customer = factory.customer()
    enrol(admin)
    web_login(client, agent)
    customer_browser = app.test_client()
    web_login(customer_browser, customer)

    assert twofactor.do_set_staff_required(admin, True) == 1

    entry = db_session.scalars(
        select(AdminAuditEntry).where(AdminAuditEntry.action == "settings.staff_2fa_required")
    ).one()
    assert (entry.actor_id, entry.target_type, entry.changes) == (
        admin.id,
        "setting",
        {"required": [False, True]},
    )
    assert not opens(client, "/agent/")  # logged out
    assert opens(customer_browser, "/portal/")  # customers are not concerned
    # The next login sets it up before any page opens.
    response = password_step(client, agent)
    assert response.status_code == 303 and response.location.endswith("/login/two-factor")
    assert not opens(client, "/agent/")
    setup = client.get("/login/two-factor").get_data(as_text=True)
    secret = re.search(r'data-secret="([A-Z2-7]+)"', setup).group(1)
    done = client.post(
        "/login/two-factor",
        data={"otp": code_of(secret), "csrf_token": csrf_token(client, "/login/two-factor")},
    )
    assert done.status_code == 201
    assert (
        len(re.findall(r"<code>[a-z2-9]{5}-[a-z2-9]{5}</code>", done.get_data(as_text=True))) == 10
    )
    assert opens(client, "/agent/")
    # While required, staff cannot turn it off themselves.
    with pytest.raises(InvalidInput):
        twofactor.do_disable(agent, password=PASSWORD)


def test_the_users_page_switches_the_requirement(client, db_session, factory, fresh_login_limit):
    admin = factory.admin()
    two_step_login(client, admin, enrol(admin)[0])
    page = "/admin/users"

    response = client.post(
        f"{page}/two-factor-policy", data={"required": "on", "csrf_token": csrf_token(client, page)}
    )

    assert response.status_code == 303
    assert twofactor.staff_required()
    assert 'id="policy-required" name="required" checked' in client.get(page).get_data(as_text=True)
    client.post(f"{page}/two-factor-policy", data={"csrf_token": csrf_token(client, page)})
    assert not twofactor.staff_required()


# -- the API's token endpoint --------------------------------------------------------------------


def token(client, user: User, **extra: str):
    return client.post(TOKEN_URL, json={"email": user.email, "password": PASSWORD, **extra})


def test_the_token_endpoint_wants_the_code_of_a_user_with_two_factor(
    client, db_session, agent, fresh_login_limit
):
    secret, codes = enrol(agent)

    missing = assert_error(token(client, agent), 401)
    assert "otp" in missing["errors"]
    wrong = "123456" if code_of(secret, 1) != "123456" else "654321"
    assert "otp" in assert_error(token(client, agent, otp=wrong), 401)["errors"]
    assert actions_about(db_session, agent)[-1] == "user.2fa_failed"

    granted = token(client, agent, otp=code_of(secret, 1))
    assert granted.status_code == 200, granted.json
    assert "otp" in assert_error(token(client, agent, otp=code_of(secret, 1)), 401)["errors"]
    assert token(client, agent, otp=codes[0]).status_code == 200
    assert token(client, agent, otp=codes[0]).status_code == 401


def test_the_token_endpoint_refuses_staff_who_must_set_it_up(
    client, db_session, factory, agent, fresh_login_limit
):
    admin = factory.admin()
    enrol(admin)
    twofactor.do_set_staff_required(admin, True)

    refused = assert_error(token(client, agent), 401)

    assert "otp" in refused["errors"]
    assert token(client, factory.customer()).status_code == 200
    # A token from before the requirement stops working too, until it is set up.
    assert "otp" in assert_error(ApiClient(client, agent).get("/api/users/me"), 401)["errors"]
    assert ApiClient(client, admin).get("/api/users/me").status_code == 200


def test_the_openapi_spec_documents_otp(client):
    spec = client.get("/api/openapi.json").json
    schema = spec["components"]["schemas"]["TokenRequest"]
    assert "otp" in schema["properties"] and "otp" not in schema.get("required", [])


def test_bearer_tokens_need_no_code_per_request(client, agent):
    enrol(agent)
    assert ApiClient(client, agent).get("/api/users/me").status_code == 200


def test_a_secret_under_another_secret_key_does_not_verify(app, agent):
    """Changing SECRET_KEY makes stored secrets unreadable: app codes fail (recovery codes,
    only hashed, still work)."""
    secret, codes = enrol(agent)
    original = app.config["SECRET_KEY"]
    app.config["SECRET_KEY"] = "another-secret"
    try:
        with pytest.raises(NotAuthenticated):
            twofactor.do_verify_login(agent, code_of(secret, 1))
        assert twofactor.do_verify_login(agent, codes[0]) == "recovery"
    finally:
        app.config["SECRET_KEY"] = original


def test_new_recovery_codes_replace_the_old_ones(client, db_session, agent, fresh_login_limit):
    secret, old_codes = enrol(agent)
    two_step_login(client, agent, secret)
    page = "/account/two-factor"

    refused = client.post(
        f"{page}/recovery-codes", data={"otp": "12", "csrf_token": csrf_token(client, page)}
    )
    assert refused.status_code == 422 and 'id="renew-error"' in refused.get_data(as_text=True)
    # A minute later, the app shows a code not used yet (logging in spent the ones until now).
    with time_machine.travel(time.time() + 2 * twofactor.STEP_SECONDS, tick=True):
        renewed = client.post(
            f"{page}/recovery-codes",
            data={"otp": code_of(secret), "csrf_token": csrf_token(client, page)},
        )

    assert renewed.status_code == 201
    new_codes = re.findall(
        r"<code>([a-z2-9]{5}-[a-z2-9]{5})</code>", renewed.get_data(as_text=True)
    )
    assert len(new_codes) == 10 and not set(new_codes) & set(old_codes)
    assert actions_about(db_session, agent)[-1] == "user.recovery_codes_renewed"
    with pytest.raises(NotAuthenticated):
        twofactor.do_verify_login(agent, old_codes[0])
    assert twofactor.do_verify_login(agent, new_codes[0]) == "recovery"


def test_a_reset_while_required_logs_the_user_out(
    client, db_session, factory, agent, fresh_login_limit
):
    admin = factory.admin()
    enrol(admin)
    secret, _ = enrol(agent)
    twofactor.do_set_staff_required(admin, True)
    two_step_login(client, agent, secret)
    assert opens(client, "/agent/")

    twofactor.do_reset(admin, agent.id)

    assert not opens(client, "/agent/")
    assert password_step(client, agent).location.endswith("/login/two-factor")


def test_the_users_page_says_why_the_requirement_was_refused(client, factory, fresh_login_limit):
    admin = factory.admin()
    web_login(client, admin)
    page = "/admin/users"

    client.post(
        f"{page}/two-factor-policy", data={"required": "on", "csrf_token": csrf_token(client, page)}
    )

    assert not twofactor.staff_required()
    assert "Set it up for your own account first" in client.get(page).get_data(as_text=True)


@pytest.mark.parametrize(
    ("otp", "status"),
    [
        ("\ud800", 422),
        ("1234\x005", 422),
        ("\uff11\uff12\uff13\uff14\uff15\uff16", 401),
        ("²³⁴⁵⁶⁷", 401),
        ("x" * 64, 401),
    ],
)
def test_a_hostile_otp_is_refused_not_a_500(client, agent, fresh_login_limit, otp, status):
    enrol(agent)

    refused = assert_error(token(client, agent, otp=otp), status)

    assert "otp" in (refused["errors"].get("json") or refused["errors"])
    # The web form's code step: werkzeug decodes the form; the service keeps what codes hold.
    with pytest.raises(NotAuthenticated):
        twofactor.do_verify_login(agent, otp)
