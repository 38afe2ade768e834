"""A forgotten password, from the login page: ask for a link by email, then choose a new
password on the page the link opens (``autocrm.people.passwords``)."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from autocrm.errors import InvalidInput
from autocrm.people import passwords
from autocrm.ratelimit import login_limits
from web.forms import new_password_errors
from web.session import log_out

bp = Blueprint("web_passwords", __name__)


@bp.route("/password/forgot", methods=["GET", "POST"])
@login_limits
def forgot() -> tuple[str, int]:
    """The same answer whether or not an account uses the address (nothing to learn here)."""
    email = request.form.get("email", "").strip()
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        if "@" not in email or len(email) > 254:
            errors["email"] = ["Enter the email address you log in with."]
        else:
            passwords.do_request_password_reset(email)
    sent = request.method == "POST" and not errors
    minutes = current_app.config["AUTOCRM_PASSWORD_RESET_TTL"] // 60
    page = render_template(
        "password_forgot.html", user=None, email=email, errors=errors, sent=sent, minutes=minutes
    )
    return page, 422 if errors else 200


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
def reset(token: str) -> Response | tuple[str, int]:
    try:
        account = passwords.user_for_reset_token(token)
    except InvalidInput as exc:
        return _reset_page(None, exc.errors, 400)
    if request.method == "GET":
        return _reset_page(account, {}, 200)
    new = request.form.get("new_password", "")
    errors = new_password_errors(new, request.form.get("confirm_password", ""))
    if not errors:
        try:
            passwords.do_reset_password(token, new)
        except InvalidInput as exc:
            errors = dict(exc.errors)
            if "password" in errors:  # check_password names the API's field
                errors["new_password"] = errors.pop("password")
    if errors:
        return _reset_page(account, errors, 400 if "token" in errors else 422)
    log_out()  # whoever was logged in in this browser: the person logs in anew
    flash("Your password is set. Log in with it.", "success")
    return redirect(url_for("web_auth.login"))


def _reset_page(account: object, errors: dict, status: int) -> tuple[str, int]:
    html = render_template("password_reset.html", user=None, account=account, errors=errors)
    return html, status
