"""Personal API tokens: what an integration uses instead of a person's password.

A user makes a token with a name, a scope and an expiry; it is shown once (``acrm_`` and 43
random characters) and only its SHA-256 is kept. Sent as ``Authorization: Bearer``, it logs the
request in as its user, carrying its scope (``User.token_scope``; ``autocrm.policies`` reads
it): a "read" token only reads, a "write" token does what its user may except administration,
an "admin" token (admins only) does everything an admin may. Deactivating the user stops their
tokens; revoking deletes the row. Making and revoking are recorded in the audit log; each use
records the time (at most once a minute, so a busy integration does not write on every request).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import joinedload

from autocrm.audit import services as audit
from autocrm.columns import utcnow
from autocrm.database import writing
from autocrm.errors import InvalidInput, NotAuthenticated, NotFound
from autocrm.extensions import db
from autocrm.people.models import ApiToken, Role, TokenScope, User
from autocrm.transaction import rolls_back_on_error

PREFIX = "acrm_"
SHOWN_CHARS = len(PREFIX) + 6  # how much of a token the list shows
MAX_TOKENS_PER_USER = 50
MAX_EXPIRY_DAYS = 366
LAST_USED_GRANULARITY = timedelta(minutes=1)
# The scopes each role may give its tokens.
SCOPES_FOR = {
    Role.CUSTOMER: (TokenScope.READ, TokenScope.WRITE),
    Role.AGENT: (TokenScope.READ, TokenScope.WRITE),
    Role.ADMIN: (TokenScope.READ, TokenScope.WRITE, TokenScope.ADMIN),
}
INVALID = "Invalid, expired or revoked token."


def is_personal_token(token: str) -> bool:
    return token.startswith(PREFIX)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class NewToken:
    """A token just made: the row, and the token itself, which is never shown again."""

    entry: ApiToken
    token: str


def check_new_token(user: User, name: str, scope: str, expires_in_days: int | None) -> TokenScope:
    errors: dict[str, list[str]] = {}
    if not name.strip():
        errors["name"] = ["Give the token a name that says what uses it."]
    elif len(name) > 120:
        errors["name"] = ["At most 120 characters."]
    allowed = SCOPES_FOR[user.role]
    chosen = next((s for s in TokenScope if s.value == scope), None)
    if chosen not in allowed:
        errors["scope"] = [f"Choose one of: {', '.join(s.value for s in allowed)}."]
    if expires_in_days is not None and not 1 <= expires_in_days <= MAX_EXPIRY_DAYS:
        errors["expires_in_days"] = [f"Between 1 and {MAX_EXPIRY_DAYS} days, or none."]
    if errors:
        raise InvalidInput("Please correct the token's details.", errors)
    assert chosen is not None
    return chosen


@rolls_back_on_error
def do_create_token(user: User, *, name: str, scope: str, expires_in_days: int | None) -> NewToken:
    """Make a token for ``user`` (always one's own); the returned token is shown once."""
    chosen = check_new_token(user, name, scope, expires_in_days)
    held = db.session.scalar(select(func.count()).where(ApiToken.user_id == user.id))
    if (held or 0) >= MAX_TOKENS_PER_USER:
        raise InvalidInput(
            f"You have {MAX_TOKENS_PER_USER} tokens; revoke one you no longer use first.",
            {"name": [f"At most {MAX_TOKENS_PER_USER} tokens per person."]},
        )
    token = PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    entry = ApiToken(
        user_id=user.id,
        name=name.strip(),
        scope=chosen,
        token_hash=_hash(token),
        prefix=token[:SHOWN_CHARS],
        expires_at=now + timedelta(days=expires_in_days) if expires_in_days else None,
        created_at=now,
    )
    db.session.add(entry)
    audit.record(
        user,
        "token.created",
        user,
        {
            "token_name": [None, entry.name],
            "scope": [None, chosen],
            "expires_at": [None, entry.expires_at],
        },
    )
    db.session.commit()
    return NewToken(entry, token)


def list_tokens(user: User) -> list[ApiToken]:
    """One's own tokens, newest first (expired ones too, marked by their date)."""
    return list(
        db.session.scalars(
            select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id.desc())
        )
    )


@rolls_back_on_error
def do_revoke_token(user: User, token_id: int) -> None:
    """Revoke one of one's own tokens: the next request with it is refused."""
    entry = db.session.get(ApiToken, token_id)
    if entry is None or entry.user_id != user.id:
        raise NotFound("No such token.", {"token_id": ["No such token of yours."]})
    audit.record(user, "token.revoked", user, {"token_name": [None, entry.name]})
    db.session.delete(entry)
    db.session.commit()


def user_for_personal_token(token: str) -> User:
    """The user a personal token logs in, carrying the token's scope (``User.token_scope``,
    which the policies read), and the token's use recorded; NotAuthenticated for an unknown,
    expired or revoked token, or a deactivated user."""
    # The token, its user and the user's teams (which the policies read) in one statement.
    stmt = (
        select(ApiToken)
        .where(ApiToken.token_hash == _hash(token))
        .options(joinedload(ApiToken.user).joinedload(User.memberships))
    )
    entry = db.session.scalars(stmt).unique().first()
    now = utcnow()
    if entry is None or (entry.expires_at is not None and entry.expires_at <= now):
        raise NotAuthenticated(INVALID)
    user = entry.user
    if not user.active:
        raise NotAuthenticated(INVALID)
    user.token_scope = entry.scope
    if entry.last_used_at is None or now - entry.last_used_at >= LAST_USED_GRANULARITY:
        _record_use(entry.id, now)
    return user


def _record_use(token_id: int, now: datetime) -> None:
    """Note when a token was used, in a transaction of its own (GET requests write nothing
    else); loaded objects are reloaded afterwards, their request attributes kept."""
    with writing():
        db.session.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=now))
        db.session.commit()
