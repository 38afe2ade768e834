"""Web sessions, server-side: a login starts one, logging out ends it, and a user (everywhere)
or an admin (for a user) can end them all.

The signed cookie alone could not be taken back: a copy made before logging out kept working
for its whole lifetime. Now the cookie carries a random key besides the user id and password
fingerprint; only a ``UserSession`` row holding the key's SHA-256 makes it a login, so deleting
the row ends the session for every copy of the cookie. Rows older than the session lifetime
(Flask's ``PERMANENT_SESSION_LIFETIME``) log no one in and are pruned at the user's next login.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from flask import current_app
from sqlalchemy import delete, select
from sqlalchemy.orm import joinedload, with_expression

from autocrm import policies
from autocrm.audit import services as audit
from autocrm.columns import utcnow
from autocrm.errors import NotAuthenticated, NotFound
from autocrm.extensions import db
from autocrm.people import users
from autocrm.people.models import User, UserSession
from autocrm.realtime import publish as realtime
from autocrm.transaction import rolls_back_on_error

# Where the Flask session (the signed cookie) keeps the key of its server-side record.
COOKIE_KEY = "key"


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _oldest_live() -> Any:
    return utcnow() - current_app.permanent_session_lifetime


@rolls_back_on_error
def do_start_session(
    user: User, *, via: str | None, user_agent: str, address: str, replacing: str | None = None
) -> str:
    """Record a login (``via``: how, see ``users.record_login``; None: a session renewed
    after a password change, not a new login); returns the key the cookie carries.
    ``replacing``: the key of the session this login replaces (a fresh login in the same
    browser), which ends."""
    if replacing:
        db.session.execute(delete(UserSession).where(UserSession.key_hash == _hash(replacing)))
    db.session.execute(
        delete(UserSession).where(
            UserSession.user_id == user.id, UserSession.created_at < _oldest_live()
        )
    )
    key = secrets.token_urlsafe(32)
    if via is not None:
        users.record_login(user, via)
    db.session.add(
        UserSession(
            user_id=user.id,
            key_hash=_hash(key),
            user_agent=user_agent[:300],
            address=address[:64],
        )
    )
    db.session.commit()
    return key


def live_session(user_id: Any, fingerprint: Any, key: Any) -> UserSession:
    """The session a cookie names, if it logs its user in: a live session row, an active
    user, and the password it was issued under (see ``users.session_user_checked``)."""
    return _logged_in(user_id, fingerprint, key)[1]


def user_for_session(user_id: Any, fingerprint: Any, key: Any) -> User:
    """The user a session cookie logs in (``live_session``)."""
    return _logged_in(user_id, fingerprint, key)[0]


def _logged_in(user_id: Any, fingerprint: Any, key: Any) -> tuple[User, UserSession]:
    # One statement for what every page asks of its login: the session row, its user, the
    # user's teams (policies) and whether they lead one (the navigation). The user is kept,
    # not read again: the session's identity map holds it only weakly.
    found = None
    if isinstance(key, str) and isinstance(user_id, int):
        stmt = (
            select(User, UserSession)
            .join(UserSession, UserSession.user_id == User.id)
            .where(
                User.id == user_id,
                UserSession.key_hash == _hash(key),
                UserSession.created_at >= _oldest_live(),
            )
            .options(
                joinedload(User.memberships),
                with_expression(User.leads_a_team, policies.leads_a_team()),
            )
        )
        found = db.session.execute(stmt).unique().first()
    if found is None:
        raise NotAuthenticated("Not logged in.")
    user, entry = found
    return users.session_user_checked(user, fingerprint), entry


@rolls_back_on_error
def do_end_session(key: Any) -> None:
    """Log out: the session a cookie names ends (nothing happens for an unknown key)."""
    if not isinstance(key, str):
        return
    entry = db.session.scalar(select(UserSession).where(UserSession.key_hash == _hash(key)))
    if entry is not None:
        _end(entry)
        db.session.commit()


def _end(entry: UserSession) -> None:
    realtime.disconnect_session(entry.id)  # its sockets, wherever they are
    db.session.delete(entry)


def list_sessions(user: User) -> list[UserSession]:
    """The user's live sessions, newest first."""
    return list(
        db.session.scalars(
            select(UserSession)
            .where(UserSession.user_id == user.id, UserSession.created_at >= _oldest_live())
            .order_by(UserSession.id.desc())
        )
    )


def is_current(entry: UserSession, key: Any) -> bool:
    return isinstance(key, str) and entry.key_hash == _hash(key)


@rolls_back_on_error
def do_end_own_session(user: User, session_id: int) -> None:
    """End one of one's own sessions (another browser) from the session list."""
    entry = db.session.get(UserSession, session_id)
    if entry is None or entry.user_id != user.id:
        raise NotFound("That session has already ended.", {"session_id": ["No such session."]})
    audit.record(user, "user.session_ended", user, {"browser": [None, entry.user_agent]})
    _end(entry)
    db.session.commit()


@rolls_back_on_error
def do_end_all_sessions(actor: User, user_id: int) -> int:
    """Log a user out everywhere: every web session ends and every socket closes. Yourself,
    or (admins) anyone; recorded in the audit log either way. Returns how many sessions ended."""
    if actor.id != user_id:
        users.require_admin(actor)
    user = users.access_user_by_id(actor, user_id)
    ended = db.session.execute(delete(UserSession).where(UserSession.user_id == user.id))
    audit.record(actor, "user.sessions_ended", user)
    realtime.disconnect_user(user.id)
    db.session.commit()
    return int(getattr(ended, "rowcount", 0) or 0)
