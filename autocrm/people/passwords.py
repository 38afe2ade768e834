"""A forgotten password: an emailed link sets a new one.

Asking never says whether an account exists (the same answer either way; only an active
account gets an email). The link is signed, expires after ``AUTOCRM_PASSWORD_RESET_TTL``
seconds and works once: it names the password it replaces, so setting the new one ends it.
Setting a password this way ends everything the old one opened: web sessions and tokens from
the token endpoint (they carry its fingerprint), open sockets, and personal API tokens. The
person then logs in as usual (two-factor login included). Both steps are in the audit log.
"""

from __future__ import annotations

import secrets

from flask import current_app
from sqlalchemy import delete, select

from autocrm.audit import services as audit
from autocrm.columns import utcnow
from autocrm.errors import InvalidInput
from autocrm.extensions import db
from autocrm.notifications.emails import queue_email
from autocrm.people import users
from autocrm.people.models import ApiToken, User, UserSession
from autocrm.realtime import publish as realtime
from autocrm.security import (
    hash_password,
    issue_password_reset_token,
    password_fingerprint,
    read_password_reset_token,
)
from autocrm.transaction import rolls_back_on_error

BROKEN_LINK = "This link is broken, has expired or was already used. Ask for a new one."


def reset_link(token: str) -> str:
    base = current_app.config["AUTOCRM_BASE_URL"].rstrip("/")
    return f"{base}/password/reset/{token}"


@rolls_back_on_error
def do_request_password_reset(email: str) -> None:
    """Email a reset link to the active account with this address, if there is one."""
    user = db.session.scalar(select(User).where(User.email == users.normalize_email(email)))
    if user is None or not user.active:
        return
    minutes = current_app.config["AUTOCRM_PASSWORD_RESET_TTL"] // 60
    link = reset_link(issue_password_reset_token(user.id, user.password_hash))
    body = (
        f"Hello {user.name},\n\n"
        "Someone (we hope you) asked to set a new password for your AutoCRM account. "
        f"Open this link within {minutes} minutes to choose one:\n\n{link}\n\n"
        "The link works once. If you did not ask, ignore this email: your password stays "
        "as it is."
    )
    queue_email(
        user.email,
        "Set a new AutoCRM password",
        body,
        dedupe_key=f"password-reset:{user.id}:{secrets.token_hex(8)}",
    )
    audit.record(None, "user.password_reset_requested", user)
    db.session.commit()


def user_for_reset_token(token: str) -> User:
    """The user a reset link is for; InvalidInput (at ``token``) for a link that no longer
    works: forged, expired, already used, or the account deactivated."""
    claims = read_password_reset_token(token)
    user = db.session.get(User, claims[0]) if claims is not None else None
    if (
        claims is None
        or user is None
        or not user.active
        or password_fingerprint(user.password_hash) != claims[1]
    ):
        raise InvalidInput(BROKEN_LINK, {"token": [BROKEN_LINK]})
    return user


@rolls_back_on_error
def do_reset_password(token: str, new_password: str) -> User:
    """Set the password a reset link is for; everything the old password opened ends."""
    user = user_for_reset_token(token)
    users.check_password(new_password, [user.email, user.name])
    user.password_hash = hash_password(new_password)
    if user.email_verified_at is None:  # the emailed link proves the address is theirs
        user.email_verified_at = utcnow()
    db.session.execute(delete(UserSession).where(UserSession.user_id == user.id))
    db.session.execute(delete(ApiToken).where(ApiToken.user_id == user.id))
    realtime.disconnect_user(user.id)
    audit.record(user, "user.password_reset_by_link", user)
    db.session.commit()
    return user
