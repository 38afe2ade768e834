"""The front door for people without an account: sign up (and confirm the address), and ask a
question from the help center without one (``autocrm.people.intake``).

The anonymous form keeps bots out without a third-party service: a field people never see
(a bot that fills it is answered as if it had worked), a signed time the form was shown (too
fast or too old, and it is shown again, with what was typed), the login budgets per client
address and per address typed, and the daily cap per address in the service.

With request forms defined, the page first offers them (``?form=<key>``) and then asks the
chosen form's customer-editable fields (``web.custom_fields``).
"""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from itsdangerous import BadSignature, TimestampSigner
from werkzeug.wrappers import Response

from autocrm.columns import utcnow
from autocrm.errors import InvalidInput
from autocrm.fields import forms
from autocrm.fields.models import TicketField
from autocrm.people import intake
from autocrm.ratelimit import login_limits
from web import custom_fields
from web.session import current_user, home_for

bp = Blueprint("web_intake", __name__)

MIN_FORM_SECONDS = 2  # a person takes longer than this to fill in the form
MAX_FORM_SECONDS = 60 * 60 * 24
HONEYPOT = "website"  # hidden from people (CSS and aria-hidden); bots fill it
SIGNUP_FIELDS = ("name", "email")
REQUEST_FIELDS = ("name", "email", "subject", "description")


def _signer() -> TimestampSigner:
    return TimestampSigner(current_app.config["SECRET_KEY"], salt="autocrm.form-shown")


# -- sign-up -----------------------------------------------------------------------------------


@bp.route("/signup", methods=["GET", "POST"])
@login_limits
def signup() -> Response | tuple[str, int]:
    user = current_user()
    if user is not None:
        return redirect(home_for(user))
    form = {k: request.form.get(k, "") for k in SIGNUP_FIELDS}
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        try:
            intake.do_sign_up(form["name"], form["email"], request.form.get("password", ""))
        except InvalidInput as exc:
            errors = dict(exc.errors)
        else:
            return _page("signup.html", 200, form=form, sent=True)
    return _page("signup.html", 422 if errors else 200, form=form, errors=errors)


@bp.get("/signup/confirm/<token>")
def confirm(token: str) -> Response | tuple[str, int]:
    try:
        intake.do_confirm_email(token)
    except InvalidInput as exc:
        return _page("signup.html", 400, form={}, errors=exc.errors)
    flash("Your address is confirmed. Log in to start.", "success")
    return redirect(url_for("web_auth.login"))


# -- asking without an account -----------------------------------------------------------------


@bp.route("/help/new", methods=["GET", "POST"])
@login_limits
def ask() -> Response | tuple[str, int]:
    user = current_user()
    if user is not None:  # logged in: the portal's form has more (priority, their tickets)
        return redirect(url_for("portal.new_ticket") if not user.role.is_staff else home_for(user))
    form = {k: request.form.get(k, "") for k in REQUEST_FIELDS}
    choice = custom_fields.choose_form(None)
    asked = forms.customer_asked_fields(choice.chosen) if choice.chosen else []
    if request.method == "GET":
        return _ask_page(form, {}, choice=choice, asked=asked)
    errors = _form_problems() or ({"form": [choice.error]} if choice.error else {})
    if request.form.get(HONEYPOT):
        return _page("help_new.html", 200, form=form, sent=True)  # a bot: tell it nothing
    if not errors:
        try:
            intake.do_request_without_account(
                form["name"],
                form["email"],
                form["subject"],
                form["description"],
                form=choice.chosen,
                fields=custom_fields.asked_form_values(asked),
            )
        except InvalidInput as exc:
            errors = dict(exc.errors)
        else:
            return _page("help_new.html", 200, form=form, sent=True)
    return _ask_page(form, errors, 422, choice=choice, asked=asked)


def _form_problems() -> dict[str, list[str]]:
    """The form must come from our page, shown a human's time ago: not seconds, not days."""
    try:
        _, shown_at = _signer().unsign(
            request.form.get("shown", ""), max_age=MAX_FORM_SECONDS, return_timestamp=True
        )
    except BadSignature:  # forged, missing, or shown too long ago (SignatureExpired)
        return {"form": ["Please check what you typed and send it again."]}
    if (utcnow() - shown_at).total_seconds() < MIN_FORM_SECONDS:
        return {"form": ["That was quick: please check what you typed and send it again."]}
    return {}


def _ask_page(
    form: dict[str, str],
    errors: dict,
    status: int = 200,
    *,
    choice: custom_fields.FormChoice,
    asked: list[tuple[TicketField, bool]],
) -> tuple[str, int]:
    """The form (or, while request forms exist and none is chosen, the picking step)."""
    shown = _signer().sign(b"help-new").decode()
    return _page(
        "help_new.html",
        status,
        form=form,
        errors=errors,
        shown=shown,
        choice=choice,
        picking=request.method == "GET" and (choice.must_pick or bool(choice.error)),
        cf_rows=custom_fields.asked_rows(asked),
    )


def _page(template: str, status: int, **context: object) -> tuple[str, int]:
    context.setdefault("errors", {})
    context.setdefault("sent", False)
    return render_template(template, user=None, honeypot=HONEYPOT, **context), status
