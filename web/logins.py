"""A user's security page: the browsers they are logged in on (end one, or log out everywhere;
the records are ``autocrm.people.sessions``) and their personal API tokens (make one, shown
once; revoke one; ``autocrm.people.tokens``). Customers see the session list on their profile
too, and reach this page from there."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

from autocrm.columns import utcnow
from autocrm.errors import InvalidInput
from autocrm.people import sessions, tokens
from autocrm.people.models import User
from web.forms import parse_id
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


SCOPE_LABELS = {
    "read": "Read: look, change nothing",
    "write": "Write: work tickets and articles, no administration",
    "admin": "Admin: everything an admin may do",
}


def _page(user: User, status: int = 200, **context: Any) -> tuple[str, int, dict[str, str]]:
    context.setdefault("token_errors", {})
    context.setdefault("token_form", {})
    html = render_template(
        "sessions.html",
        user=user,
        sessions=session_rows(user),
        tokens=tokens.list_tokens(user),
        token_scopes=[(s.value, SCOPE_LABELS[s.value]) for s in tokens.SCOPES_FOR[user.role]],
        now=utcnow(),
        **context,
    )
    # A page showing a new token must not be kept by the browser's or a proxy's cache.
    return html, status, {"Cache-Control": "no-store"}


@bp.get("/sessions")
@login_required()
def index(user: User) -> tuple[str, int, dict[str, str]]:
    return _page(user)


@bp.post("/tokens")
@login_required()
def create_token(user: User) -> tuple[str, int, dict[str, str]]:
    """Make a token and show it on the page, once (never through a redirect or the cookie)."""
    form = {k: request.form.get(k, "") for k in ("name", "scope", "expires_in_days")}
    days = parse_id(form["expires_in_days"])
    try:
        if form["expires_in_days"] and days is None:
            raise InvalidInput("", {"expires_in_days": ["Choose how long the token works."]})
        made = tokens.do_create_token(
            user, name=form["name"], scope=form["scope"], expires_in_days=days
        )
    except InvalidInput as exc:
        return _page(user, 422, token_errors=exc.errors, token_form=form)
    return _page(user, 201, new_token=made)


@bp.post("/tokens/<id:token_id>/revoke")
@login_required()
def revoke_token(user: User, token_id: int) -> Response:
    tokens.do_revoke_token(user, token_id)
    flash("The token is revoked: it no longer works.", "success")
    return redirect(url_for("web_sessions.index", _anchor="tokens"))


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
