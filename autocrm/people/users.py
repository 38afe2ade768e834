"""Users and authentication.

Admins create users, change their role, reset their password and deactivate or reactivate
them; each change is recorded in the admin audit log (``autocrm.audit``) in the same
transaction. A deactivated user keeps their tickets but can no longer log in, and every token,
web session and socket of theirs stops working at once.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from flask import current_app
from marshmallow import ValidationError, validate
from sqlalchemy import select, update
from sqlalchemy.orm import joinedload, selectinload
from zxcvbn import zxcvbn

from autocrm import policies
from autocrm.audit import services as audit
from autocrm.automation import assignment
from autocrm.config import on_off
from autocrm.errors import Forbidden, InvalidInput, NotAuthenticated, NotFound
from autocrm.extensions import db
from autocrm.listing import Page, PageRequest, contains, keyset_page
from autocrm.people import organizations, tokens
from autocrm.people.models import Role, Team, TeamMembership, User
from autocrm.realtime import publish as realtime
from autocrm.security import (
    hash_password,
    issue_token,
    password_fingerprint,
    read_token,
    verify_password,
)
from autocrm.transaction import duplicates_refused, rolls_back_on_error

MIN_PASSWORD_LENGTH = 8
# zxcvbn's score: 0-1 fall to an online attack within hours; 2 ("somewhat guessable") is the
# floor most sites use, with the length rule beside it.
MIN_PASSWORD_SCORE = 2
PASSWORD_ESTIMATE_CHARS = 100
MAX_NAME_LENGTH = 120
MAX_EMAIL_LENGTH = 254
GENERATED_PASSWORD_BYTES = 12  # 16 URL-safe characters


def normalize_email(email: str) -> str:
    return email.strip().lower()


def staff_password_login_from(config: Mapping[str, Any]) -> bool:
    """``AUTOCRM_STAFF_PASSWORD_LOGIN``: off, agents and admins log in only through single
    sign-on (``autocrm.people.sso``); customers always may use their password."""
    return on_off("STAFF_PASSWORD_LOGIN", config.get("AUTOCRM_STAFF_PASSWORD_LOGIN", "on"))


STAFF_USE_SSO = (
    "Agents and administrators log in with single sign-on, not a password: use the "
    "single sign-on button on the login page."
)


UNCONFIRMED = (
    "Confirm your email address first: open the link we emailed you (or use 'Forgot your "
    "password?' to get a new one)."
)


# How a person logged in, as the audit log says it.
LOGIN_CHANNELS = ("web", "api", "sso")


def authenticate(email: str, password: str, *, via: str = "web") -> tuple[User, str]:
    """The user and a fresh token for valid credentials of an active account. A refusal is
    recorded in the audit log (committed before NotAuthenticated is raised); a success is
    recorded where the login completes (``record_login``)."""
    email = normalize_email(email)
    user = db.session.scalar(select(User).where(User.email == email))
    if not verify_password(user.password_hash if user else None, password) or user is None:
        _record_refused_login(user, email, via, "wrong email or password")
        raise NotAuthenticated("Invalid email or password.")
    if not user.active:
        _record_refused_login(user, email, via, "account deactivated")
        raise NotAuthenticated("This account is deactivated.")
    if user.email_verified_at is None:
        _record_refused_login(user, email, via, "email address not confirmed")
        raise NotAuthenticated(UNCONFIRMED)
    # Only after the password matched: the refusal must not tell strangers who is staff.
    if user.role.is_staff and not staff_password_login_from(current_app.config):
        _record_refused_login(user, email, via, "staff log in with single sign-on")
        raise NotAuthenticated(STAFF_USE_SSO)
    return user, issue_token(user.id, user.password_hash)


def _record_refused_login(user: User | None, email: str, via: str, reason: str) -> None:
    target = user if user is not None else audit.Target("user", None, email[:MAX_EMAIL_LENGTH])
    audit.record(None, "user.login_failed", target, {"via": [None, via], "reason": [None, reason]})
    db.session.commit()


def record_login(user: User, via: str) -> None:
    """A completed login, in the audit log (in the caller's transaction). A single sign-on is
    recorded by ``sso.do_sso_login`` as ``user.sso_login`` with its provider, so not here."""
    if via not in LOGIN_CHANNELS:
        raise ValueError(f"unknown login channel {via!r}")
    if via != "sso":
        audit.record(user, "user.logged_in", user, {"via": [None, via]})


@rolls_back_on_error
def do_log_in_api(user: User) -> None:
    """The token endpoint handed ``user`` a token: recorded as a login."""
    record_login(user, "api")
    db.session.commit()


def user_for_token(token: str) -> User:
    """The user a bearer token logs in: a personal API token (``autocrm.people.tokens``) or
    one from the token endpoint (signed, tied to the password)."""
    if tokens.is_personal_token(token):
        return tokens.user_for_personal_token(token)
    claims = read_token(token)
    if claims is None:
        raise NotAuthenticated("Invalid or expired token.")
    user_id, fingerprint = claims
    # With the user's teams, which the policies read: one statement, not two.
    user = db.session.get(User, user_id, options=[joinedload(User.memberships)])
    if user is None or not user.active or password_fingerprint(user.password_hash) != fingerprint:
        raise NotAuthenticated("Invalid or expired token.")
    user.token_scope = None  # the password's token: all the role allows
    return user


def user_for_session(user_id: Any, fingerprint: Any) -> User:
    """The user of a web session: it names the user and the password fingerprint at login, so
    a password change or a deactivation ends every session."""
    user = db.session.get(User, user_id) if isinstance(user_id, int) else None
    return session_user_checked(user, fingerprint)


def session_user_checked(user: User | None, fingerprint: Any) -> User:
    """``user``, if a web session naming them and ``fingerprint`` still logs them in: they
    are active and have the password the session was issued under."""
    if user is None or not user.active or password_fingerprint(user.password_hash) != fingerprint:
        raise NotAuthenticated("Not logged in.")
    user.token_scope = None  # a web session: all the role allows
    return user


def access_user_by_id(actor: User, user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None or not policies.can_view_user(actor, user):
        raise NotFound(f"User {user_id} not found.")
    return user


def require_admin(actor: User) -> None:
    if not policies.can_manage_users_and_teams(actor):
        raise Forbidden("Only administrators may manage users and teams.")


def check_password(password: str, related: Iterable[str] = ()) -> None:
    """Long enough, and not easy to guess: zxcvbn's estimate (common passwords, names, keyboard
    patterns, dates, and the person's own ``related`` email and name) must reach
    ``MIN_PASSWORD_SCORE``; its advice says what to change."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(
            "Password too short.",
            {"password": [f"Use at least {MIN_PASSWORD_LENGTH} characters."]},
        )
    own = _own_words(related)
    if _mostly(password, own):
        raise InvalidInput(
            "Password too easy to guess.",
            {"password": ["Do not build it from your name or email address."]},
        )
    # The estimate's cost grows with the length; the first characters decide it anyway.
    estimate = zxcvbn(password[:PASSWORD_ESTIMATE_CHARS], user_inputs=sorted(own))
    if estimate["score"] < MIN_PASSWORD_SCORE:
        feedback = estimate["feedback"]
        advice = " ".join([feedback["warning"] or "", *feedback["suggestions"]]).strip()
        raise InvalidInput(
            "Password too easy to guess.",
            {"password": [advice or "This password is easy to guess: add a word or two."]},
        )


def _letters(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


def _own_words(related: Iterable[str]) -> set[str]:
    """A person's name and email as words: the whole, the email's local part, and each piece."""
    words: set[str] = set()
    for text in related:
        local = text.split("@")[0]
        words |= {_letters(text), _letters(local)}
        words |= {_letters(piece) for piece in re.split(r"[\W_]+", local)}
    return {word for word in words if len(word) >= 3}


def _mostly(password: str, own: set[str]) -> bool:
    """Whether the password is one of the person's own words with little around it."""
    letters = _letters(password)
    return any(len(word) >= 4 and word in letters and len(letters) - len(word) < 6 for word in own)


def generate_password() -> str:
    """A random password for an admin to hand over (shown once, never stored in clear)."""
    return secrets.token_urlsafe(GENERATED_PASSWORD_BYTES)


def check_email(email: str) -> None:
    try:
        validate.Email()(email)
        validate.Length(max=MAX_EMAIL_LENGTH)(email)
    except ValidationError:
        raise InvalidInput(
            "Invalid email address.", {"email": ["Enter an address like name@example.com."]}
        ) from None


def check_email_free(email: str, *, except_id: int | None = None) -> None:
    existing = db.session.scalar(select(User.id).where(User.email == email))
    if existing is not None and existing != except_id:
        raise _email_in_use()


def _email_in_use() -> InvalidInput:
    return InvalidInput("Email already in use.", {"email": ["A user with this email exists."]})


def check_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise InvalidInput("Name is blank.", {"name": ["Must not be blank."]})
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidInput(
            "Name too long.", {"name": [f"Use at most {MAX_NAME_LENGTH} characters."]}
        )
    return name


def create_user(email: str, password: str, role: Role, name: str | None = None) -> User:
    """Add a user to the session without committing: the one path every user is made by (the
    admin pages and API, the CLI, sign-up and ``intake.find_or_create_customer``). A customer
    joins the auto-join organization of their address's domain here."""
    email = normalize_email(email)
    check_email(email)
    check_email_free(email)
    check_password(password, [email, name or ""])
    user = User(
        email=email,
        name=(name or email.split("@")[0]).strip(),
        role=role,
        password_hash=hash_password(password),
    )
    db.session.add(user)
    with duplicates_refused(User.email, _email_in_use):
        db.session.flush()
    if role is Role.CUSTOMER:
        organizations.join_by_domain(user)
    return user


def _teams_by_id(team_ids: Sequence[int], role: Role) -> list[Team]:
    if team_ids and not role.is_staff:
        raise InvalidInput("Customers cannot join teams.", {"team_ids": ["Only for staff."]})
    found = []
    for team_id in dict.fromkeys(team_ids):
        team = db.session.get(Team, team_id)
        if team is None:
            raise InvalidInput("Unknown team.", {"team_ids": [f"No team {team_id}."]})
        found.append(team)
    return found


@rolls_back_on_error
def do_create_user(
    actor: User,
    *,
    email: str,
    password: str,
    role: Role,
    name: str | None = None,
    team_ids: Sequence[int] = (),
) -> User:
    """A new user (and, for staff, their teams), recorded in the audit log."""
    require_admin(actor)
    if name is not None:
        name = check_name(name)
    teams = _teams_by_id(team_ids, role)
    user = create_user(email, password, role, name)
    for team in teams:
        user.memberships.append(TeamMembership(team=team))
    created = {
        "name": user.name,
        "email": user.email,
        "role": user.role,
        "teams": [t.name for t in teams] or None,
    }
    audit.record(actor, "user.created", user, audit.diff({}, created))
    for team in teams:
        audit.record(actor, "team.member_added", team, {"member": [None, user.name]})
    db.session.commit()
    return user


@rolls_back_on_error
def do_update_user(actor: User, user_id: int, changes: dict[str, Any]) -> User:
    """Change a user's name, email, role, password or active flag. A new password, a
    deactivation or a new role ends the user's sockets (tokens and web sessions end by
    themselves: they carry the password's fingerprint, and inactive users are refused). An
    agent deactivated or made a customer releases their open tickets to their team queues."""
    require_admin(actor)
    user = access_user_by_id(actor, user_id)
    changes = dict(changes)
    if "name" in changes:
        changes["name"] = check_name(changes["name"])
    if "email" in changes:
        changes["email"] = normalize_email(changes["email"])
        check_email(changes["email"])
        check_email_free(changes["email"], except_id=user.id)
    # Sockets were authorized for who the user was: these changes end them.
    access_changed = (
        "password" in changes
        or changes.get("active") is False
        or ("role" in changes and changes["role"] is not user.role)
    )
    if user.id == actor.id and (
        changes.get("active") is False or changes.get("role", Role.ADMIN) is not Role.ADMIN
    ):
        raise InvalidInput(
            "You cannot demote or deactivate yourself.",
            {"role" if "role" in changes else "active": ["Not on your own account."]},
        )
    password_reset = "password" in changes
    if password_reset:
        password = changes.pop("password")
        check_password(password, [user.email, user.name])
        user.password_hash = hash_password(password)
    before = {field: getattr(user, field) for field in changes}
    teams_before = sorted(m.team.name for m in user.memberships)
    if changes.get("role") is Role.CUSTOMER and user.role.is_staff:
        # Customers belong to no team: leave every team and stop leading any.
        user.memberships.clear()
        db.session.execute(update(Team).where(Team.lead_id == user.id).values(lead_id=None))
    if changes.get("role", Role.CUSTOMER) is not Role.CUSTOMER and user.organization:
        # Organizations are of customers: staff belong to none (and manage none).
        audit.record(
            actor, "organization.member_removed", user.organization, {"member": [user.name, None]}
        )
        changes["organization_id"] = None
        changes["organization_manager"] = False
    leaves = changes.get("active") is False or changes.get("role") is Role.CUSTOMER
    if leaves and user.role.is_staff:
        assignment.release_open_tickets(actor, user)
    for field, value in changes.items():
        setattr(user, field, value)
    _record_update(actor, user, audit.diff(before, changes), teams_before, password_reset)
    if access_changed:
        realtime.disconnect_user(user.id)
    with duplicates_refused(User.email, _email_in_use):
        db.session.commit()
    return user


def _record_update(
    actor: User,
    user: User,
    changed: dict[str, list[Any]],
    teams_before: list[str],
    password_reset: bool,
) -> None:
    """One audit entry per kind of change, so the log can be filtered by what happened."""
    details = {k: v for k, v in changed.items() if k in ("name", "email")}
    if details:
        audit.record(actor, "user.updated", user, details)
    if "role" in changed:
        role_change = {"role": changed["role"]}
        if teams_before and not user.memberships:
            role_change["teams"] = [teams_before, []]
        audit.record(actor, "user.role_changed", user, role_change)
    if "active" in changed:
        action = "user.reactivated" if user.active else "user.deactivated"
        audit.record(actor, action, user, {"active": changed["active"]})
    if password_reset:
        audit.record(actor, "user.password_reset", user)


def list_users(
    actor: User,
    page: PageRequest,
    *,
    role: Role | None = None,
    q: str | None = None,
    active: bool | None = None,
    team_id: int | None = None,
) -> Page[User]:
    if not policies.can_list_users(actor):
        raise Forbidden("Only administrators may list users.")
    stmt = select(User)
    if role is not None:
        stmt = stmt.where(User.role == role)
    if active is not None:
        stmt = stmt.where(User.active.is_(active))
    if team_id is not None:
        member = select(TeamMembership.user_id).where(TeamMembership.team_id == team_id)
        stmt = stmt.where(User.id.in_(member))
    if q:
        stmt = stmt.where(contains(User.email, q) | contains(User.name, q))
    return keyset_page(stmt, page, {"id": User.id}, User.id)


@rolls_back_on_error
def do_change_own_password(actor: User, current_password: str, new_password: str) -> User:
    """A user replaces their own password: the current one proves it is them. Every token and
    session issued before ends (they carry the old password's fingerprint), and so do sockets."""
    if not verify_password(actor.password_hash, current_password):
        raise InvalidInput(
            "The current password is wrong.",
            {"current_password": ["This is not your current password."]},
        )
    check_password(new_password, [actor.email, actor.name])
    actor.password_hash = hash_password(new_password)
    realtime.disconnect_user(actor.id)
    db.session.commit()
    return actor


def staff_names() -> dict[int, str]:
    """Every agent's and admin's name by id (authors, viewers and actors shown to staff)."""
    rows = db.session.execute(select(User.id, User.name).where(User.role != Role.CUSTOMER))
    return {row.id: row.name for row in rows}


def staff_and(user_ids: Iterable[int]) -> list[User]:
    """Every agent and admin (active or not) and the users ``user_ids``, by name, with their
    organizations and ``team_ids``, in one statement (memberships joined: a person's columns
    repeat once per team, cheaper than a second round trip for a page's few dozen staff): a
    page's people, read once."""
    stmt = select(User).where((User.role != Role.CUSTOMER) | User.id.in_(set(user_ids)))
    options = (joinedload(User.organization), joinedload(User.memberships))
    stmt = stmt.options(*options).order_by(User.name)
    return list(db.session.scalars(stmt).unique())


def active_staff(*, with_teams: bool = False) -> list[User]:
    """Agents and admins who can be assigned tickets, by name; ``with_teams``: their
    ``team_ids`` loaded in one query for all of them, not one per person."""
    stmt = select(User).where(User.role != Role.CUSTOMER, User.active.is_(True))
    if with_teams:
        stmt = stmt.options(selectinload(User.memberships))
    return list(db.session.scalars(stmt.order_by(User.name)))
