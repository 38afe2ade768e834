"""Who is logged in to the web pages, and the guards views use."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import g, redirect, request, session, url_for

from autocrm.errors import NotAuthenticated, NotFound
from autocrm.people import sessions
from autocrm.people.models import Role, User
from autocrm.security import password_fingerprint

SESSION_KEY = sessions.COOKIE_KEY


def home_for(user: User) -> str:
    """Where a user lands after logging in: the queue for staff, the portal for customers."""
    return url_for("agent.queue") if user.role.is_staff else url_for("portal.dashboard")


def log_in(user: User, *, via: str | None) -> None:
    """Start a server-side session (ending the one this browser had) and name it in the
    cookie. ``via``: "web" (the password form), "sso", or None for the same person's session
    renewed after their password changed (not a new login)."""
    key = sessions.do_start_session(
        user,
        via=via,
        user_agent=request.user_agent.string,
        address=request.remote_addr or "",
        replacing=session.get(SESSION_KEY),
    )
    session.clear()
    session["user_id"] = user.id
    # Sockets and pages check it: a password change or deactivation ends the session.
    session["auth"] = password_fingerprint(user.password_hash)
    session[SESSION_KEY] = key
    session.permanent = True


def log_out() -> None:
    """End the session on the server too: a copy of the cookie logs no one in afterwards."""
    sessions.do_end_session(session.get(SESSION_KEY))
    session.clear()


def user_of_session() -> User:
    """The user the request's session cookie logs in; NotAuthenticated if none."""
    return sessions.user_for_session(
        session.get("user_id"), session.get("auth"), session.get(SESSION_KEY)
    )


def current_user() -> User | None:
    if "web_user" not in g:
        try:
            g.web_user = user_of_session()
        except NotAuthenticated:
            g.web_user = None
    return g.web_user


def login_required(*, staff: bool | None = None) -> Callable:
    """Views for logged-in users; ``staff`` True: agents and admins, False: customers."""

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            user = current_user()
            if user is None:
                return redirect(url_for("web_auth.login", next=request.full_path))
            if staff is not None and user.role.is_staff != staff:
                return redirect(url_for("web_auth.home"))
            return view(user, *args, **kwargs)

        return guarded

    return decorate


def admin_required(view: Callable) -> Callable:
    """Views of the admin console. Others get a 404 page rather than learn it exists."""

    @wraps(view)
    @login_required(staff=True)
    def guarded(user: User, *args: Any, **kwargs: Any) -> Any:
        if user.role is not Role.ADMIN:
            raise NotFound("No such page.")
        return view(user, *args, **kwargs)

    return guarded
