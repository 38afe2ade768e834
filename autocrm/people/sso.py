"""Single sign-on for staff: who the OpenID Connect provider's verified claims log in.

The protocol (redirects, tokens, signatures) is ``autocrm.people.oidc``; this module decides
what a verified identity may do. ``do_sso_login`` finds the user by the stored provider
account (``SsoIdentity``: issuer and subject), else by the verified email address (linking
that account for next time), else creates them with ``AUTOCRM_OIDC_DEFAULT_ROLE`` through the
one user-creation path (``users.create_user``, with a random password nobody knows). It
refuses an unverified email, a domain outside ``AUTOCRM_OIDC_ALLOWED_DOMAINS``, a deactivated
user, a customer account when SSO makes staff, and an account already linked to another
subject at the same provider. Every sign-on and every refusal is in the admin audit log.

The settings are read from the app config where used (``sso_settings``) and checked once at
startup (``check_settings``), so a deployment with a typo fails to start with a message naming
the variable, rather than at someone's first login.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import select

from autocrm.audit import services as audit
from autocrm.config import InvalidSetting
from autocrm.errors import DomainError, Forbidden
from autocrm.extensions import db
from autocrm.people import users
from autocrm.people.models import Role, SsoIdentity, User
from autocrm.transaction import duplicates_refused, rolls_back_on_error

DOMAIN = re.compile(r"^[a-z0-9-]+(\.[a-z0-9-]+)+$")  # IDNs in their xn-- form


class SignOnRefused(Forbidden):
    """The provider vouched for this person, and AutoCRM says no. ``user``: the account they
    would have logged in to, if there is one."""

    def __init__(self, message: str, user: User | None = None) -> None:
        super().__init__(message)
        self.user = user


@dataclass(frozen=True)
class SsoSettings:
    issuer: str
    client_id: str
    client_secret: str
    allowed_domains: frozenset[str]  # empty: any
    default_role: Role
    button_label: str


def _check_issuer(issuer: str) -> str:
    parts = urlsplit(issuer)
    host = parts.hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
        raise InvalidSetting(
            f"AUTOCRM_OIDC_ISSUER must be the provider's https:// URL, not {issuer!r} "
            "(plain http only for a provider on this machine)."
        )
    if parts.query or parts.fragment:
        raise InvalidSetting("AUTOCRM_OIDC_ISSUER must not have a query or fragment.")
    return issuer


def _domains(value: Any) -> frozenset[str]:
    names = value.split(",") if isinstance(value, str) else list(value or ())
    domains = frozenset(n.strip().lower().lstrip("@") for n in names if n.strip())
    bad = sorted(d for d in domains if not DOMAIN.match(d))
    if bad:
        raise InvalidSetting(
            f"AUTOCRM_OIDC_ALLOWED_DOMAINS: not a domain: {', '.join(bad)} "
            "(give a comma-separated list like example.com,example.org)."
        )
    return domains


def _role(value: Any) -> Role:
    try:
        return Role(str(value).strip().lower())
    except ValueError:
        choices = ", ".join(role.value for role in Role)
        raise InvalidSetting(
            f"AUTOCRM_OIDC_DEFAULT_ROLE must be one of {choices}, not {value!r}."
        ) from None


def settings_from(config: Mapping[str, Any]) -> SsoSettings | None:
    """The SSO settings in ``config``, or None when no issuer is set (SSO off)."""
    issuer = config.get("AUTOCRM_OIDC_ISSUER")
    if not issuer:
        return None
    for name in ("CLIENT_ID", "CLIENT_SECRET"):
        if not config.get(f"AUTOCRM_OIDC_{name}"):
            raise InvalidSetting(
                f"AUTOCRM_OIDC_{name} is not set: single sign-on (AUTOCRM_OIDC_ISSUER) needs "
                "the client id and secret the provider gave AutoCRM."
            )
    return SsoSettings(
        issuer=_check_issuer(str(issuer)),
        client_id=str(config["AUTOCRM_OIDC_CLIENT_ID"]),
        client_secret=str(config["AUTOCRM_OIDC_CLIENT_SECRET"]),
        allowed_domains=_domains(config.get("AUTOCRM_OIDC_ALLOWED_DOMAINS", "")),
        default_role=_role(config.get("AUTOCRM_OIDC_DEFAULT_ROLE", "agent")),
        button_label=str(config.get("AUTOCRM_OIDC_BUTTON_LABEL") or "single sign-on").strip(),
    )


def check_settings(config: Mapping[str, Any]) -> None:
    """Raise ``InvalidSetting`` for settings that cannot work (the app factory calls it)."""
    sso = settings_from(config)
    if not users.staff_password_login_from(config) and sso is None:
        raise InvalidSetting(
            "AUTOCRM_STAFF_PASSWORD_LOGIN=off needs single sign-on (AUTOCRM_OIDC_ISSUER): "
            "otherwise no agent or admin could log in."
        )


def sso_settings() -> SsoSettings | None:
    """The running app's SSO settings (None: SSO is off)."""
    return settings_from(current_app.config)


# -- who the claims log in ---------------------------------------------------------------------


@dataclass(frozen=True)
class Claimed:
    """What the verified ID token says about the person."""

    issuer: str
    subject: str
    email: str
    email_verified: bool
    name: str

    @property
    def label(self) -> str:
        return f"{self.name} <{self.email}>" if self.email else f"{self.issuer} {self.subject}"

    @classmethod
    def of(cls, claims: Mapping[str, Any]) -> Claimed:
        email = claims.get("email")
        name = claims.get("name") or " ".join(
            str(claims[part]) for part in ("given_name", "family_name") if claims.get(part)
        )
        email = users.normalize_email(email) if isinstance(email, str) else ""
        verified = claims.get("email_verified")
        return cls(
            issuer=str(claims["iss"]),
            subject=str(claims["sub"]),
            email=email,
            # Some providers send the flag as a string.
            email_verified=verified is True or str(verified).lower() == "true",
            name=(str(name).strip() or email.split("@")[0])[: users.MAX_NAME_LENGTH],
        )


def check_claims(claimed: Claimed, settings: SsoSettings, known: User | None = None) -> None:
    """A usable, verified email address in an allowed domain. ``known``: the user this
    provider account logged in before, named in the refusal."""
    if not claimed.email:
        raise SignOnRefused("The single sign-on provider did not share your email address.", known)
    try:
        users.check_email(claimed.email)
    except DomainError:
        raise SignOnRefused(
            "The single sign-on provider gave an email address AutoCRM cannot use.", known
        ) from None
    if not claimed.email_verified:
        raise SignOnRefused(
            "Your email address is not verified at the single sign-on provider. Verify it "
            "there, then log in again.",
            known,
        )
    domain = claimed.email.rpartition("@")[2]
    if settings.allowed_domains and domain not in settings.allowed_domains:
        raise SignOnRefused(
            f"Addresses at {domain} cannot log in to AutoCRM with single sign-on. Ask an "
            "administrator if you should.",
            known,
        )


def _refuse_inactive(user: User) -> None:
    if not user.active:
        raise SignOnRefused("This account is deactivated. Ask an administrator.", user=user)


def _identity_taken() -> SignOnRefused:
    return SignOnRefused("This provider account is already linked to another AutoCRM user.")


def _linked(claimed: Claimed, settings: SsoSettings) -> User | None:
    """The user with this verified email, now linked to the provider account."""
    user = db.session.scalar(select(User).where(User.email == claimed.email))
    if user is None:
        return None
    _refuse_inactive(user)
    if not user.role.is_staff and settings.default_role.is_staff:
        # Customers sign up themselves: a customer account with a colleague's address must
        # not become theirs (nor staff) by single sign-on.
        raise SignOnRefused(
            "This address belongs to a customer account: log in with its password.", user=user
        )
    elsewhere = db.session.scalar(
        select(SsoIdentity.subject).where(
            SsoIdentity.user_id == user.id, SsoIdentity.issuer == claimed.issuer
        )
    )
    if elsewhere is not None:
        raise SignOnRefused(
            "This AutoCRM account is linked to a different account at the provider.", user=user
        )
    db.session.add(SsoIdentity(user_id=user.id, issuer=claimed.issuer, subject=claimed.subject))
    audit.record(user, "user.sso_login", user, {"linked": [None, claimed.issuer]})
    return user


def _created(claimed: Claimed, settings: SsoSettings) -> User:
    user = users.create_user(
        claimed.email, users.generate_password(), settings.default_role, claimed.name
    )
    db.session.add(SsoIdentity(user_id=user.id, issuer=claimed.issuer, subject=claimed.subject))
    created = {"name": user.name, "email": user.email, "role": user.role}
    audit.record(user, "user.sso_created", user, audit.diff({}, created))
    audit.record(user, "user.sso_login", user, {"provider": [None, claimed.issuer]})
    return user


def _user_for(claimed: Claimed, settings: SsoSettings) -> User:
    identity = db.session.scalar(
        select(SsoIdentity).where(
            SsoIdentity.issuer == claimed.issuer, SsoIdentity.subject == claimed.subject
        )
    )
    known = db.session.get_one(User, identity.user_id) if identity is not None else None
    if known is not None:
        _refuse_inactive(known)
    # At every sign-on, not only the first: narrowing the allowed domains, or the provider
    # moving someone to another domain, takes effect at once.
    check_claims(claimed, settings, known)
    if known is not None:
        audit.record(known, "user.sso_login", known, {"provider": [None, claimed.issuer]})
        return known
    return _linked(claimed, settings) or _created(claimed, settings)


def _record_refusal(claimed: Claimed, refusal: SignOnRefused) -> None:
    """The refusal in the audit log, committed on its own (nothing else of the attempt is).
    AutoCRM refused (no actor); the target is the account, or who the provider named."""
    db.session.rollback()
    target = refusal.user or audit.Target("user", None, claimed.label)
    details = {"reason": [None, refusal.message], "provider": [None, claimed.issuer]}
    audit.record(None, "user.sso_refused", target, details)
    db.session.commit()


@rolls_back_on_error
def do_sso_login(claims: Mapping[str, Any], settings: SsoSettings) -> User:
    """The user ``claims`` (an ID token's, verified by ``oidc.finish``) log in, found, linked
    or created; ``SignOnRefused`` (recorded) when they may not."""
    claimed = Claimed.of(claims)
    try:
        with duplicates_refused(SsoIdentity.issuer, _identity_taken):
            user = _user_for(claimed, settings)
            db.session.flush()
    except SignOnRefused as refusal:
        _record_refusal(claimed, refusal)
        raise
    db.session.commit()
    return user
