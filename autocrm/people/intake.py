"""How customers get in on their own: signing up, confirming their address, and asking a
question without an account. Every way a customer comes to exist from outside goes through
``find_or_create_customer`` (the email channel will too).

- Sign-up (``do_sign_up``) follows the site's policy (``signup_policy``): open, only for
  addresses in allowed domains, or closed (admins create accounts). The account works once
  the emailed confirmation link is opened (``do_confirm_email``).
- A question without an account (``do_request_without_account``) becomes a real ticket of
  the customer with that address: an existing one, or a new, unconfirmed one who is emailed a
  link to set a password (the reset link of ``autocrm.people.passwords``; setting a password
  through it confirms the address).
- An invitation (``do_invite_customer``, by any staff member, whatever the sign-up policy:
  with sign-up closed it is how customers get an account) emails a link to choose a first
  password; it works for ``AUTOCRM_INVITATION_TTL`` and, like every reset link, once.
- None of the customer's own forms says whether an address already has an account: the
  answers are the same, and an existing account's owner is emailed instead of a second
  account being made.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import func, select

from autocrm import policies
from autocrm.audit import services as audit
from autocrm.columns import utcnow
from autocrm.errors import Forbidden, InvalidInput
from autocrm.extensions import db
from autocrm.fields import forms as request_forms
from autocrm.fields.models import RequestForm
from autocrm.notifications.emails import queue_email
from autocrm.people import users
from autocrm.people.models import Role, User
from autocrm.security import hash_password, issue_password_reset_token
from autocrm.site import settings as site
from autocrm.tickets import services as tickets
from autocrm.tickets.models import Ticket
from autocrm.transaction import rolls_back_on_error

CONFIRM_MAX_AGE = 60 * 60 * 24 * 3  # three days to open a sign-up's confirmation link
ANONYMOUS_CHANNEL = "web form"
MODES = ("open", "domains", "closed")  # closed: by invitation only
BROKEN_LINK = "This confirmation link is broken or has expired. Sign up again for a new one."


@dataclass(frozen=True)
class SignupPolicy:
    """Who may sign up: anyone (open), addresses in ``domains``, or no one (closed)."""

    mode: str = "open"
    domains: tuple[str, ...] = ()

    def allows(self, email: str) -> bool:
        if self.mode == "open":
            return True
        return self.mode == "domains" and email.rsplit("@", 1)[-1] in self.domains


def signup_policy() -> SignupPolicy:
    raw = site.value(site.SIGNUP_POLICY)
    return SignupPolicy(raw.get("mode", "open"), tuple(raw.get("domains", ())))


def check_policy(mode: str, domains_text: str) -> SignupPolicy:
    domains = tuple(
        dict.fromkeys(d.strip().lower().lstrip("@") for d in domains_text.replace(",", " ").split())
    )
    errors: dict[str, list[str]] = {}
    if mode not in MODES:
        errors["mode"] = [f"Choose one of: {', '.join(MODES)}."]
    elif mode == "domains" and not domains:
        errors["domains"] = ["Name at least one domain, e.g. example.com."]
    bad = [d for d in domains if "." not in d or len(d) > 253 or "@" in d]
    if bad:
        errors["domains"] = [f"Not a domain: {', '.join(bad)}."]
    if errors:
        raise InvalidInput("Please correct the sign-up policy.", errors)
    return SignupPolicy(mode, domains if mode == "domains" else ())


@rolls_back_on_error
def do_set_signup_policy(actor: User, mode: str, domains_text: str = "") -> SignupPolicy:
    """Admins choose who may sign up; recorded in the audit log."""
    if not policies.can_administer(actor):
        raise Forbidden("Only administrators choose who may sign up.")
    policy = check_policy(mode, domains_text)
    new = {"mode": policy.mode, "domains": list(policy.domains)}
    before = site.stage(site.SIGNUP_POLICY, new)
    target = audit.Target("setting", None, "Sign-up policy")
    audit.record(actor, "settings.signup_policy", target, {"signup_policy": [before, new]})
    db.session.commit()
    return policy


def find_or_create_customer(email: str, name: str, source: str, *, equal_time: bool = True) -> User:
    """The user with this address, or a new customer, unconfirmed, with a password no one
    knows (in the session, not committed). ``source`` says what made them, in the audit log.
    ``equal_time``: finding takes as long as creating, so a form's answer time does not tell
    whether an address has an account (not needed where nobody waits on it: received mail)."""
    email = users.normalize_email(email)
    users.check_email(email)
    found = db.session.scalar(select(User).where(User.email == email))
    if found is not None:
        if equal_time:
            hash_password(users.generate_password())  # as long as creating takes
        return found
    name = users.check_name(name) if name.strip() else email.split("@")[0]
    customer = users.create_user(email, users.generate_password(), Role.CUSTOMER, name)
    customer.email_verified_at = None
    audit.record(None, "user.created", customer, {"source": [None, source], "email": [None, email]})
    return customer


# -- signing up -------------------------------------------------------------------------------


def _confirm_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="autocrm.confirm-email")


def _link(path: str) -> str:
    return f"{current_app.config['AUTOCRM_BASE_URL'].rstrip('/')}{path}"


@rolls_back_on_error
def do_sign_up(name: str, email: str, password: str) -> None:
    """A new customer account, working once its address is confirmed. An address that has an
    account gets an email saying so (how to log in or reset the password), not a second one;
    the caller's answer is the same either way."""
    email = users.normalize_email(email)
    users.check_email(email)
    errors: dict[str, list[str]] = {}
    if not signup_policy().allows(email):
        errors["email"] = [_policy_refusal(signup_policy())]
    try:
        users.check_name(name)
    except InvalidInput as exc:
        errors["name"] = exc.errors["name"]
    try:
        users.check_password(password, [email, name])
    except InvalidInput as exc:
        errors["password"] = exc.errors["password"]
    if errors:
        raise InvalidInput("Please correct the marked fields.", errors)
    existing = db.session.scalar(select(User).where(User.email == email))
    if existing is not None:
        hash_password(password)  # as long as making the account takes: time tells nothing
        _email_existing_account(existing)
    else:
        customer = users.create_user(email, password, Role.CUSTOMER, users.check_name(name))
        customer.email_verified_at = None
        audit.record(None, "user.created", customer, {"source": [None, "sign-up"]})
        token = _confirm_serializer().dumps({"u": customer.id, "e": customer.email})
        queue_email(
            customer.email,
            "Confirm your AutoCRM account",
            f"Hello {customer.name},\n\nOpen this link to confirm your address and start using "
            f"your account:\n\n{_link(f'/signup/confirm/{token}')}\n\nIf you did not sign up, "
            "ignore this email: without the confirmation the account does not work.",
            dedupe_key=f"signup:{customer.id}",
        )
    db.session.commit()


def _policy_refusal(policy: SignupPolicy) -> str:
    if policy.mode == "closed":
        return "Sign-up is by invitation here: ask the support team to invite you."
    return f"Sign-up is open to addresses at {', '.join(policy.domains)}."


def _email_existing_account(user: User) -> None:
    queue_email(
        user.email,
        "You already have an AutoCRM account",
        f"Hello {user.name},\n\nSomeone (we hope you) tried to sign up with this address, which "
        f"already has an account. Log in at {_link('/login')}, or if you forgot your password, "
        f"use 'Forgot your password?' there.",
        dedupe_key=f"signup-existing:{user.id}:{secrets.token_hex(8)}",
    )


@rolls_back_on_error
def do_confirm_email(token: str) -> User:
    """Open a sign-up's confirmation link: the account works from now on."""
    try:
        data = _confirm_serializer().loads(token, max_age=CONFIRM_MAX_AGE)
    except (SignatureExpired, BadSignature):
        data = None
    user = db.session.get(User, data["u"]) if isinstance(data, dict) and "u" in data else None
    if user is None or not isinstance(data, dict) or user.email != data.get("e"):
        raise InvalidInput(BROKEN_LINK, {"token": [BROKEN_LINK]})
    if user.email_verified_at is None:
        user.email_verified_at = utcnow()
        audit.record(user, "user.email_confirmed", user)
        db.session.commit()
    return user


# -- asking without an account ----------------------------------------------------------------


def _requests_today(user: User) -> int:
    since = utcnow() - timedelta(days=1)
    return (
        db.session.scalar(
            select(func.count()).where(
                Ticket.requester_id == user.id,
                Ticket.channel == ANONYMOUS_CHANNEL,
                Ticket.created_at >= since,
            )
        )
        or 0
    )


@rolls_back_on_error
def do_request_without_account(
    name: str,
    email: str,
    subject: str,
    description: str,
    *,
    form: RequestForm | None = None,
    fields: Mapping[str, Any] | None = None,
) -> None:
    """A question from the help center's form: a ticket of the customer with this address. A
    new customer is emailed a link to set a password and follow it; an existing one, that it
    arrived. Past ``AUTOCRM_ANONYMOUS_DAILY_CAP`` requests a day for one address, the rest are
    refused (the answer to the form stays the same). With a request ``form``, ``fields`` are
    the values of the fields it asks a customer (checked with the rest, errors together)."""
    errors: dict[str, list[str]] = {}
    try:  # as a customer: who it is is not known yet, and the checks need only the role
        request_forms.check_form_values(User(role=Role.CUSTOMER), form, fields or {})
    except InvalidInput as exc:
        errors.update(exc.errors)
    if not subject.strip():
        errors["subject"] = ["Say in a few words what it is about."]
    if not description.strip():
        errors["description"] = ["Describe what happened or what you need."]
    try:
        users.check_email(users.normalize_email(email))
    except InvalidInput:
        errors["email"] = ["Enter an email address we can answer to."]
    if errors:
        raise InvalidInput("Please correct the marked fields.", errors)
    customer = find_or_create_customer(email, name, "help center form")
    if (
        not customer.active
        or _requests_today(customer) >= current_app.config["AUTOCRM_ANONYMOUS_DAILY_CAP"]
    ):
        db.session.rollback()
        return
    ticket = tickets.do_create_ticket(
        customer,
        subject=subject,
        description=description,
        channel=ANONYMOUS_CHANNEL,
        form=form.id if form is not None else None,
        fields=dict(fields or {}),
    )
    if customer.email_verified_at is None:
        link = _link(
            f"/password/reset/{issue_password_reset_token(customer.id, customer.password_hash)}"
        )
        follow = f"Set a password to follow it and answer online:\n\n{link}\n\n"
    else:
        follow = f"Log in to follow it: {_link(f'/portal/tickets/{ticket.id}')}\n\n"
    queue_email(
        customer.email,
        f"We received your request #{ticket.id}: {ticket.subject}"[:250],
        f"Hello {customer.name},\n\nThank you: your request #{ticket.id} "
        f'"{ticket.subject}" reached our support team, who will answer by email.\n\n{follow}'
        "If you did not send it, ignore this email.",
        dedupe_key=f"request-received:{ticket.id}",
        ticket_id=ticket.id,
    )
    db.session.commit()


# -- invitations ------------------------------------------------------------------------------


@rolls_back_on_error
def do_invite_customer(actor: User, email: str, name: str) -> User:
    """Staff invite a customer: the account is made through ``find_or_create_customer`` (or
    an unconfirmed one found) and emailed a link to choose a password, which confirms the
    address. Staff may know who has an account, so an address that already has a working
    account, or belongs to staff, is refused at ``email`` instead of being invited again."""
    if not policies.is_staff(actor) or not policies.may_change(actor):
        raise Forbidden("Only support staff invite customers.")
    errors: dict[str, list[str]] = {}
    try:
        users.check_email(users.normalize_email(email))
    except InvalidInput:
        errors["email"] = ["Enter the customer's email address."]
    if name.strip():
        try:
            users.check_name(name)
        except InvalidInput as exc:
            errors["name"] = exc.errors["name"]
    if errors:
        raise InvalidInput("Please correct the marked fields.", errors)
    customer = find_or_create_customer(email, name, "invitation", equal_time=False)
    if customer.role is not Role.CUSTOMER:
        raise InvalidInput("Not a customer.", {"email": ["This address belongs to staff."]})
    if not customer.active:
        raise InvalidInput("Deactivated.", {"email": ["This customer's account is deactivated."]})
    if customer.email_verified_at is not None:
        raise InvalidInput(
            "Has an account.",
            {"email": ["This customer already has an account: they can log in."]},
        )
    token = issue_password_reset_token(customer.id, customer.password_hash, invitation=True)
    days = max(1, current_app.config["AUTOCRM_INVITATION_TTL"] // 86400)
    queue_email(
        customer.email,
        f"{actor.name} invited you to our support portal",
        f"Hello {customer.name},\n\n{actor.name} invited you to our support portal, where you "
        "can ask us questions and follow your requests. Choose a password to start (the link "
        f"works once, for {days} day{'s' if days != 1 else ''}):\n\n"
        f"{_link(f'/password/reset/{token}')}\n\n"
        "If you did not expect this, ignore this email.",
        dedupe_key=f"invitation:{customer.id}:{secrets.token_hex(8)}",
    )
    audit.record(actor, "user.invited", customer, {"email": [None, customer.email]})
    db.session.commit()
    return customer
