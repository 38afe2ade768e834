"""Login, logout and the home redirect of the web pages."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, current_app, jsonify, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from autocrm.errors import NotAuthenticated
from autocrm.extensions import limiter
from autocrm.models import User
from autocrm.services import notification_settings, users
from web.session import current_user, log_in, log_out, login_required

bp = Blueprint("web_auth", __name__)


def _home_for(user: object) -> str:
    return url_for("agent.queue") if user.role.is_staff else url_for("portal.dashboard")


def _safe_next(target: str | None) -> str | None:
    """Only same-site paths: never redirect to another host after login."""
    if not target:
        return None
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc and target.startswith("/") else None


@bp.get("/")
def home() -> Response:
    user = current_user()
    return redirect(_home_for(user) if user else url_for("web_auth.login"))


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["AUTOCRM_LOGIN_RATE_LIMIT"], methods=["POST"])
def login() -> Response | str:
    error = None
    email = request.form.get("email", "")
    if request.method == "POST":
        try:
            user, _ = users.authenticate(email, request.form.get("password", ""))
        except NotAuthenticated as exc:
            error = exc.message
        else:
            log_in(user)
            return redirect(_safe_next(request.args.get("next")) or _home_for(user))
    status = 401 if error else 200
    return render_template("login.html", error=error, email=email, user=None), status


@bp.post("/logout")
def logout() -> Response:
    log_out()
    return redirect(url_for("web_auth.login"))


@bp.get("/notifications")
@login_required()
def notifications(user: User) -> str:
    items, more = notification_settings.list_notifications(user, limit=100)
    return render_template("notifications.html", user=user, items=items, more=more)


@bp.get("/notifications/unread")
@login_required()
def unread(user: User) -> Response:
    return jsonify({"unread": notification_settings.unread_count(user)})


@bp.post("/notifications/read-all")
@login_required()
def read_all(user: User) -> Response:
    notification_settings.do_mark_all_read(user)
    return redirect(url_for("web_auth.notifications"))


@bp.get("/tickets/<int:ticket_id>")
@login_required()
def ticket(user: User, ticket_id: int) -> Response:
    """A ticket's page for whoever follows a link: the workspace or the portal view."""
    endpoint = "workspace.ticket" if user.role.is_staff else "portal.ticket"
    return redirect(url_for(endpoint, ticket_id=ticket_id))
