"""Two-factor login on the web pages (the services are ``autocrm.people.twofactor``).

- The login's second step: after a correct password, a user with two-factor login gets no
  session yet. The signed session cookie holds the pending login (who, the password's
  fingerprint, where to go next, when) for ``PENDING_MAX_AGE`` seconds, and ``/login/verify``
  asks for a code or a recovery code under the same rate limit as the password. Staff who must
  use two-factor login and have not set it up go to ``/login/two-factor`` instead: they set it
  up there before any session starts.
- ``/account/two-factor``: set it up (QR code as inline SVG, the secret as text), see how many
  recovery codes are left, turn it off. Recovery codes are shown once, on the page answering
  the form that enabled it (never in a redirect or a flash message), and not cached.
"""

from __future__ import annotations

import time
from typing import Any

from flask import (
    Blueprint,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from werkzeug.wrappers import Response

from autocrm.errors import DomainError, NotAuthenticated
from autocrm.people import twofactor, users
from autocrm.people.models import User
from autocrm.ratelimit import login_limits
from autocrm.security import password_fingerprint
from web.session import home_for, log_in, log_out, login_required

bp = Blueprint("web_twofactor", __name__)

PENDING = twofactor.PENDING_LOGIN_KEY
# Seconds a pending login lasts: long enough to find the phone, or to set up an app.
PENDING_MAX_AGE = {"verify": 5 * 60, "enrol": 15 * 60}
EXPIRED = "Your login was not finished in time. Log in again."


def _no_store(html: str, status: int = 200) -> Response:
    """A page showing recovery codes or a secret: browsers and proxies must not keep it."""
    response = make_response(html, status)
    response.headers["Cache-Control"] = "no-store"
    return response


def second_step(user: User, next_url: str | None) -> Response | None:
    """After a correct password: the redirect to the second step, or None when the user logs
    in with the password alone."""
    if user.has_two_factor:
        stage = "verify"
    elif twofactor.must_enrol(user):
        stage = "enrol"
        if twofactor.enrolment_of(user) is None:
            twofactor.do_begin_enrolment(user)
    else:
        return None
    log_out()  # a pending login is no login: the session this browser had ends
    session[PENDING] = {
        "uid": user.id,
        "pw": password_fingerprint(user.password_hash),
        "email": user.email,
        "stage": stage,
        "at": int(time.time()),
        "next": next_url or "",
    }
    endpoint = "web_twofactor.verify" if stage == "verify" else "web_twofactor.login_enrol"
    return redirect(url_for(endpoint), code=303)


def _pending(stage: str) -> tuple[User, str] | None:
    """The user of the pending login at ``stage`` and where they go next, if it is still
    good: not expired, same password, account active."""
    data = session.get(PENDING)
    if not isinstance(data, dict) or data.get("stage") != stage:
        return None
    started = data.get("at")
    if not isinstance(started, int) or time.time() - started > PENDING_MAX_AGE[stage]:
        return None
    try:
        user = users.user_for_session(data.get("uid"), data.get("pw"))
    except NotAuthenticated:
        return None
    return user, str(data.get("next") or "")


def _expired() -> Response:
    session.pop(PENDING, None)
    flash(EXPIRED, "error")
    return redirect(url_for("web_auth.login"), code=303)


@bp.route("/login/verify", methods=["GET", "POST"])
@login_limits
def verify() -> Response | tuple[str, int]:
    pending = _pending("verify")
    if pending is None:
        return _expired()
    user, next_url = pending
    error = None
    if request.method == "POST":
        try:
            used = twofactor.do_verify_login(user, request.form.get("otp", ""))
        except NotAuthenticated as exc:
            error = exc.message
        else:
            log_in(user, via="web")
            if used == "recovery":
                left = twofactor.recovery_codes_left(user)
                flash(
                    f"You logged in with a recovery code; {left} left. Each works once: if you "
                    "lost your phone, set up two-factor login again on your account page.",
                    "success",
                )
            return redirect(next_url or home_for(user), code=303)
    html = render_template("login_verify.html", user=None, error=error)
    return html, 401 if error else 200


@bp.route("/login/two-factor", methods=["GET", "POST"])
@login_limits
def login_enrol() -> Response | tuple[str, int]:
    """Staff who must use two-factor login set it up here, before their session starts."""
    pending = _pending("enrol")
    if pending is None:
        return _expired()
    user, next_url = pending
    errors: dict[str, Any] = {}
    if request.method == "POST":
        try:
            codes = twofactor.do_confirm_enrolment(user, request.form.get("otp", ""))
        except DomainError as exc:
            errors = exc.errors or {"otp": [exc.message]}
        else:
            log_in(user, via="web")
            return _codes_page(user, codes, next_url or home_for(user))
    enrolment = twofactor.enrolment_of(user)
    if enrolment is None:  # reset by an admin meanwhile
        return _expired()
    html = render_template(
        "two_factor_setup_login.html",
        user=None,
        shown=user,
        enrolment=enrolment,
        errors=errors,
        action=url_for(".login_enrol"),
    )
    return _no_store(html, 422 if errors else 200)


def _codes_page(
    user: User, codes: list[str], continue_to: str, title: str = "Two-factor login is on"
) -> Response:
    html = render_template(
        "two_factor_codes.html", user=user, codes=codes, continue_to=continue_to, title=title
    )
    return _no_store(html, 201)


# -- the account page ----------------------------------------------------------------------------


def _account_page(user: User, errors: dict[str, Any] | None = None, status: int = 200) -> Response:
    html = render_template(
        "two_factor.html",
        user=user,
        enrolment=twofactor.enrolment_of(user),
        codes_left=twofactor.recovery_codes_left(user) if user.has_two_factor else 0,
        required=user.role.is_staff and twofactor.staff_required(),
        errors=errors or {},
    )
    return _no_store(html, status)


def _refused(user: User, errors: dict[str, Any] | None, exc: DomainError) -> Response:
    return _account_page(user, errors or exc.errors or {"_form": [exc.message]}, exc.status_code)


@bp.get("/account/two-factor")
@login_required()
def account(user: User) -> Response:
    return _account_page(user)


@bp.post("/account/two-factor/start")
@login_required()
def start(user: User) -> Response:
    try:
        twofactor.do_begin_enrolment(user)
    except DomainError as exc:
        return _refused(user, None, exc)
    return redirect(url_for(".account", _anchor="setup"), code=303)


@bp.post("/account/two-factor/confirm")
@login_required()
def confirm(user: User) -> Response:
    try:
        codes = twofactor.do_confirm_enrolment(user, request.form.get("otp", ""))
    except DomainError as exc:
        return _refused(user, None, exc)
    return _codes_page(user, codes, url_for(".account"))


@bp.post("/account/two-factor/disable")
@login_required()
def disable(user: User) -> Response:
    try:
        twofactor.do_disable(
            user, password=request.form.get("password", ""), code=request.form.get("otp", "")
        )
    except DomainError as exc:
        return _refused(user, None, exc)
    flash("Two-factor login is off: your password alone logs you in.", "success")
    return redirect(url_for(".account"), code=303)


@bp.post("/account/two-factor/recovery-codes")
@login_required()
def renew_codes(user: User) -> Response:
    try:
        codes = twofactor.do_renew_recovery_codes(user, request.form.get("otp", ""))
    except DomainError as exc:
        return _refused(user, {"renew_otp": exc.errors.get("otp", [exc.message])}, exc)
    return _codes_page(user, codes, url_for(".account"), "New recovery codes")
