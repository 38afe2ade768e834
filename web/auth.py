"""Login, logout, the home redirect, and the notification page every logged-in user has."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import (
    Blueprint,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from werkzeug.wrappers import Response

from autocrm.errors import InvalidInput, NotAuthenticated
from autocrm.notifications import inbox
from autocrm.notifications import preferences as notification_settings
from autocrm.people import sso, users
from autocrm.people.models import User
from autocrm.ratelimit import login_limits
from web import twofactor as twofactor_pages
from web.session import current_user, home_for, log_in, log_out, login_required

bp = Blueprint("web_auth", __name__)


def safe_next(target: str | None) -> str | None:
    """Only same-site paths: never redirect to another host after login."""
    if not target:
        return None
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc and target.startswith("/") else None


@bp.get("/")
def home() -> Response:
    user = current_user()
    return redirect(home_for(user) if user else url_for("web_auth.login"))


@bp.get("/favicon.ico")
def favicon() -> Response:
    """Browsers ask for this path whatever the page says; the icon is an SVG."""
    return redirect(url_for("static", filename="favicon.svg"), code=301)


@bp.route("/login", methods=["GET", "POST"])
@login_limits
def login() -> Response | str:
    error = None
    email = request.form.get("email", "")
    if request.method == "POST":
        try:
            user, _ = users.authenticate(email, request.form.get("password", ""))
        except NotAuthenticated as exc:
            error = exc.message
        else:
            next_url = safe_next(request.args.get("next"))
            second_step = twofactor_pages.second_step(user, next_url)
            if second_step is not None:  # a code (or setting one up) before the session starts
                return second_step
            log_in(user, via="web")
            return redirect(next_url or home_for(user))
    return render_login(error=error, email=email), 401 if error else 200


def render_login(*, error: str | None = None, email: str = "") -> str:
    """The login page: the password form, and the single sign-on button when it is set up."""
    return render_template(
        "login.html",
        error=error,
        email=email,
        user=None,
        sso=sso.sso_settings(),
        staff_password_login=users.staff_password_login_from(current_app.config),
        next_url=safe_next(request.args.get("next")),
    )


@bp.post("/logout")
def logout() -> Response:
    log_out()
    return redirect(url_for("web_auth.login"))


@bp.get("/notifications")
@login_required()
def notifications(user: User) -> str:
    """The user's notifications, one entry per ticket, a page at a time ("Older" carries the
    cursor)."""
    cursor = request.args.get("cursor") or None
    page = inbox.list_inbox(user, cursor)
    return render_template("notifications.html", user=user, page=page, cursor=cursor)


@bp.errorhandler(InvalidInput)
def _bad_inbox_input(exc: InvalidInput) -> tuple[str, int]:
    """A page cursor edited by hand or a form from an outdated page: the newest notifications,
    with what went wrong, as a 422. (Only the notification views here raise InvalidInput.)"""
    user = current_user()
    if user is None:  # not reached: the views check the login first
        raise exc
    message = BAD_CURSOR if "cursor" in exc.errors else exc.message
    page = inbox.list_inbox(user)
    return render_template("notifications.html", user=user, page=page, error=message), 422


BAD_CURSOR = "That page link is broken or out of date; here are your newest notifications."


def _back_to_inbox(anchor: str | None = None) -> Response:
    """The page the form was on (its cursor), at the entry acted on."""
    cursor = request.form.get("cursor") or None
    return redirect(url_for("web_auth.notifications", cursor=cursor, _anchor=anchor), code=303)


@bp.get("/notifications/unread")
@login_required()
def unread(user: User) -> Response:
    return jsonify({"unread": notification_settings.unread_count(user)})


@bp.post("/notifications/read-all")
@login_required()
def read_all(user: User) -> Response:
    """Mark read what the page counted (``up_to``), not what arrived since."""
    up_to = inbox.check_up_to(request.form.get("up_to"))
    flash(_marked_text(notification_settings.do_mark_all_read(user, up_to)), "success")
    return _back_to_inbox()


@bp.post("/notifications/tickets/<id:ticket_id>/read")
@login_required()
def read_ticket(user: User, ticket_id: int) -> Response:
    up_to = inbox.check_up_to(request.form.get("up_to"))
    flash(_marked_text(inbox.do_mark_ticket_read(user, ticket_id, up_to)), "success")
    return _back_to_inbox(f"entry-ticket-{ticket_id}")


@bp.post("/notifications/tickets/<id:ticket_id>/open")
@login_required()
def open_ticket(user: User, ticket_id: int) -> Response:
    """Follow an entry to its ticket, marking what the entry showed read on the way. A POST
    (a button styled as a link) because GET requests never write."""
    up_to = inbox.check_up_to(request.form.get("up_to"))
    message_id = inbox.message_of(user, ticket_id, up_to)  # a mention opens at its note
    inbox.do_mark_ticket_read(user, ticket_id, up_to)
    anchor = f"message-{message_id}" if message_id else None
    return redirect(_ticket_url(user, ticket_id, anchor), code=303)


@bp.post("/notifications/<id:notification_id>/read")
@login_required()
def read_one(user: User, notification_id: int) -> Response:
    """A notification about no ticket is an entry of its own, marked read by its id."""
    notification_settings.do_mark_read(user, notification_id)
    flash("Marked read.", "success")
    return _back_to_inbox(f"entry-note-{notification_id}")


def _marked_text(marked: int) -> str:
    if marked == 0:
        return "Nothing was unread."
    return "Marked 1 notification read." if marked == 1 else f"Marked {marked} notifications read."


def _ticket_url(user: User, ticket_id: int, anchor: str | None = None) -> str:
    endpoint = "workspace.ticket" if user.role.is_staff else "portal.ticket"
    return url_for(endpoint, ticket_id=ticket_id, _anchor=anchor)


@bp.get("/tickets/<int:ticket_id>")
@login_required()
def ticket(user: User, ticket_id: int) -> Response:
    """A ticket's page for whoever follows a link: the workspace or the portal view."""
    return redirect(_ticket_url(user, ticket_id))
