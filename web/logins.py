"""Where a user sees the browsers they are logged in on, ends one, or logs out everywhere
(the records are ``autocrm.people.sessions``). Customers see the same list on their profile."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, session, url_for
from werkzeug.wrappers import Response

from autocrm.people import sessions
from autocrm.people.models import User
from web.session import SESSION_KEY, login_required

bp = Blueprint("web_sessions", __name__)


def session_rows(user: User) -> list[dict[str, object]]:
    """The user's sessions as the list shows them, this browser's marked."""
    key = session.get(SESSION_KEY)
    return [
        {"entry": entry, "current": sessions.is_current(entry, key)}
        for entry in sessions.list_sessions(user)
    ]


def _back(user: User) -> Response:
    return redirect(url_for("web_sessions.index" if user.role.is_staff else "portal.profile"))


@bp.get("/sessions")
@login_required()
def index(user: User) -> str:
    return render_template("sessions.html", user=user, sessions=session_rows(user))


@bp.post("/sessions/<id:session_id>/end")
@login_required()
def end(user: User, session_id: int) -> Response:
    sessions.do_end_own_session(user, session_id)
    flash("That browser is logged out.", "success")
    return _back(user)


@bp.post("/sessions/end-all")
@login_required()
def end_all(user: User) -> Response:
    sessions.do_end_all_sessions(user, user.id)
    session.clear()
    flash("You are logged out everywhere, here too.", "success")
    return redirect(url_for("web_auth.login"))
