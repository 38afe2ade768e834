"""Two-factor login: a TOTP authenticator app (RFC 6238, ``pyotp``) and single-use recovery
codes, asked for after the password at the login page and by the API's token endpoint.

- Enrolment: ``do_begin_enrolment`` stores a new secret (encrypted, ``security.encrypt_secret``);
  the user scans it (``enrolment_of``: the otpauth URI as an inline SVG QR code made here by
  ``segno``, and the secret as text) and proves it with a code (``do_confirm_enrolment``), which
  enables it and returns ten recovery codes, shown once: only their SHA-256 is kept.
- A code is accepted for the current 30-second step and the ones either side (clock drift), and
  only for a step later than the last one accepted (``users.totp_last_step``): a code seen over a
  shoulder or replayed from a log does not log in again. The step is claimed with one
  conditional UPDATE, so two requests racing with the same code cannot both win; so is a
  recovery code.
- Turning it off needs the password or a current code; an admin can reset it for a user (a lost
  phone). Admins can require it for staff (``do_set_staff_required``, a site setting): staff
  without it are logged out and, at their next login, set it up before anything else.
- Every one of these changes, each recovery code used and each wrong second factor at login is
  in the admin audit log, with the user as the actor unless an admin acted.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
import time
from dataclasses import dataclass

import pyotp
import segno
from markupsafe import Markup
from sqlalchemy import delete, func, or_, select, update

from autocrm.audit import services as audit
from autocrm.columns import utcnow
from autocrm.errors import InvalidInput, NotAuthenticated
from autocrm.extensions import db
from autocrm.people import users
from autocrm.people.models import RecoveryCode, Role, User, UserSession
from autocrm.realtime import publish as realtime
from autocrm.security import decrypt_secret, encrypt_secret, verify_password
from autocrm.site import settings
from autocrm.transaction import rolls_back_on_error

ISSUER = "AutoCRM"
# Where the signed web session keeps a login that passed the password step and waits for the
# second one (the web edge writes it; the login rate limit reads its email).
PENDING_LOGIN_KEY = "pending_login"
STEP_SECONDS = 30
# Codes of the step before and after the current one count too: phones' clocks drift.
DRIFT_STEPS = 1
CODE_DIGITS = 6
RECOVERY_CODE_COUNT = 10
# 10 characters of a 31-letter alphabet (no 0/o, 1/l/i): about 50 bits each.
RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
RECOVERY_CODE_LENGTH = 10
MAX_CODE_INPUT = 64
_CODE_CHARACTERS = frozenset(string.ascii_lowercase + string.digits)
POLICY_TARGET = audit.Target("setting", None, "Two-factor login required for staff")


# -- reading -------------------------------------------------------------------------------------


def staff_required() -> bool:
    return bool(settings.value(settings.STAFF_TWO_FACTOR_REQUIRED))


def must_enrol(user: User) -> bool:
    """Whether ``user`` has to set up two-factor login before using their account."""
    return user.role.is_staff and not user.has_two_factor and staff_required()


def _secret(user: User) -> str | None:
    return decrypt_secret(user.totp_secret) if user.totp_secret else None


@dataclass(frozen=True)
class Enrolment:
    """What a user needs to add the account to an authenticator app."""

    secret: str
    uri: str
    qr_svg: Markup

    @property
    def grouped_secret(self) -> str:
        """The secret in groups of four, easier to type into an app by hand."""
        return " ".join(self.secret[i : i + 4] for i in range(0, len(self.secret), 4))


def enrolment_of(user: User) -> Enrolment | None:
    """The enrolment waiting for its first code (None if none was begun, or it is done)."""
    secret = None if user.has_two_factor else _secret(user)
    if secret is None:
        return None
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=ISSUER)
    svg = segno.make(uri, error="m").svg_inline(
        scale=4, border=2, title="QR code for your authenticator app", svgclass="qr-code"
    )
    svg = svg.replace("<svg ", '<svg role="img" ', 1)  # its <title> names it for screen readers
    return Enrolment(secret, uri, Markup(svg))  # noqa: S704 (segno's own SVG, no user markup)


def recovery_codes_left(user: User) -> int:
    unused = select(func.count(RecoveryCode.id)).where(
        RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None)
    )
    return db.session.scalar(unused) or 0


# -- codes ---------------------------------------------------------------------------------------


def normalize_code(code: str) -> str:
    """What was typed, lower case, without spaces and dashes (recovery codes are shown in
    groups; apps show TOTP codes as "123 456") or anything else no code holds (so nothing
    typed, not even a lone surrogate from a JSON body, fails to hash)."""
    return "".join(ch for ch in code[:MAX_CODE_INPUT].lower() if ch in _CODE_CHARACTERS)


def _is_totp_shaped(code: str) -> bool:
    return len(code) == CODE_DIGITS and code.isascii() and code.isdecimal()


def _matching_step(secret: str, code: str, now: float) -> int | None:
    """The time step (current, or one either side) whose code ``code`` is, if any."""
    totp = pyotp.TOTP(secret)
    current = int(now) // STEP_SECONDS
    found = None
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            found = step
    return found


def _claim_totp(user: User, code: str) -> bool:
    """Accept an app code once: its step must be later than the last accepted one; the
    UPDATE's condition decides between two requests racing with the same code."""
    secret = _secret(user)
    step = _matching_step(secret, code, time.time()) if secret else None
    if step is None:
        return False
    claimed = db.session.execute(
        update(User)
        .where(
            User.id == user.id,
            or_(User.totp_last_step.is_(None), User.totp_last_step < step),
        )
        .values(totp_last_step=step)
    )
    return bool(getattr(claimed, "rowcount", 0))


def _hash_code(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def _claim_recovery_code(user: User, code: str) -> bool:
    spent = db.session.execute(
        update(RecoveryCode)
        .where(
            RecoveryCode.user_id == user.id,
            RecoveryCode.code_hash == _hash_code(code),
            RecoveryCode.used_at.is_(None),
        )
        .values(used_at=utcnow())
    )
    return bool(getattr(spent, "rowcount", 0))


def _new_recovery_codes(user: User) -> list[str]:
    """Replace the user's recovery codes; returns the new ones as shown ("abcde-fghjk")."""
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = [
        "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_CODE_LENGTH))
        for _ in range(RECOVERY_CODE_COUNT)
    ]
    db.session.add_all(RecoveryCode(user_id=user.id, code_hash=_hash_code(c)) for c in codes)
    half = RECOVERY_CODE_LENGTH // 2
    return [f"{c[:half]}-{c[half:]}" for c in codes]


def _wrong_code(message: str) -> InvalidInput:
    return InvalidInput(message, {"otp": [message]})


# -- enrolment -----------------------------------------------------------------------------------


@rolls_back_on_error
def do_begin_enrolment(user: User) -> None:
    """Store a new secret for the user to scan (replacing one never confirmed)."""
    if user.has_two_factor:
        raise InvalidInput(
            "Two-factor login is already on.", {"otp": ["Turn it off first to start again."]}
        )
    user.totp_secret = encrypt_secret(pyotp.random_base32())
    db.session.commit()


@rolls_back_on_error
def do_confirm_enrolment(user: User, code: str) -> list[str]:
    """Enable two-factor login with the first code from the app; returns the recovery codes,
    which are never shown again."""
    if user.has_two_factor:
        raise InvalidInput("Two-factor login is already on.", {"otp": ["It is already on."]})
    if _secret(user) is None:
        raise InvalidInput(
            "Start the set-up again.", {"otp": ["No set-up is waiting; start it again."]}
        )
    code = normalize_code(code)
    if not _is_totp_shaped(code) or not _claim_totp(user, code):
        raise _wrong_code(
            "That is not the current code: enter the 6 digits your app shows now "
            "(check that the phone's clock is right)."
        )
    user.totp_enabled_at = utcnow()
    codes = _new_recovery_codes(user)
    audit.record(user, "user.2fa_enabled", user)
    db.session.commit()
    return codes


@rolls_back_on_error
def do_renew_recovery_codes(user: User, code: str) -> list[str]:
    """Ten new recovery codes in place of the old ones (running out, or the list was lost),
    proven by a current code from the app."""
    if not user.has_two_factor:
        raise InvalidInput("Two-factor login is not on.", {"otp": ["Turn it on first."]})
    code = normalize_code(code)
    if not _is_totp_shaped(code) or not _claim_totp(user, code):
        raise _wrong_code("That is not the current code from your app, or it was already used.")
    codes = _new_recovery_codes(user)
    audit.record(user, "user.recovery_codes_renewed", user)
    db.session.commit()
    return codes


def _clear(user: User) -> None:
    user.totp_secret = None
    user.totp_enabled_at = None
    user.totp_last_step = None
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))


@rolls_back_on_error
def do_disable(user: User, *, password: str = "", code: str = "") -> None:
    """Turn off one's own two-factor login, proven by the password or a current code.
    Not while it is required for staff (an admin can reset it instead)."""
    if not user.has_two_factor:
        raise InvalidInput("Two-factor login is not on.", {"otp": ["It is already off."]})
    if user.role.is_staff and staff_required():
        raise InvalidInput(
            "Two-factor login is required for staff.",
            {"otp": ["It is required for staff: an admin can reset it if you lost your phone."]},
        )
    code = normalize_code(code)
    proven = (password and verify_password(user.password_hash, password)) or (
        _is_totp_shaped(code) and _claim_totp(user, code)
    )
    if not proven:
        raise InvalidInput(
            "Enter your password or a current code to turn two-factor login off.",
            {"password": ["Your password, or a current code from your app."]},
        )
    _clear(user)
    audit.record(user, "user.2fa_disabled", user)
    db.session.commit()


@rolls_back_on_error
def do_reset(actor: User, user_id: int) -> User:
    """An admin turns a user's two-factor login off (a lost phone, no recovery codes left).
    The user logs in with the password alone, or sets it up again if it is required."""
    users.require_admin(actor)
    user = users.access_user_by_id(actor, user_id)
    if not user.has_two_factor and user.totp_secret is None:
        raise InvalidInput(
            "Two-factor login is not set up.", {"otp": [f"{user.name} has not set it up."]}
        )
    _clear(user)
    audit.record(actor, "user.2fa_reset", user)
    if must_enrol(user):  # staff must have it: no session goes on without it
        _log_out([user.id])
    db.session.commit()
    return user


# -- login ---------------------------------------------------------------------------------------


@rolls_back_on_error
def do_verify_login(user: User, code: str) -> str:
    """The second factor at login: a code from the app ("app") or an unused recovery code
    ("recovery"), which is spent. A wrong one is recorded and raises NotAuthenticated."""
    code = normalize_code(code)
    if user.has_two_factor and _is_totp_shaped(code) and _claim_totp(user, code):
        db.session.commit()
        return "app"
    if user.has_two_factor and not _is_totp_shaped(code) and _claim_recovery_code(user, code):
        left = recovery_codes_left(user)
        audit.record(
            user, "user.recovery_code_used", user, {"recovery_codes_left": [left + 1, left]}
        )
        db.session.commit()
        return "recovery"
    audit.record(user, "user.2fa_failed", user)
    db.session.commit()
    message = (
        "That code is not right, or was already used. Enter the current code from your app "
        "or an unused recovery code."
    )
    raise NotAuthenticated(message, {"otp": [message]})


def check_token_login(user: User, otp: str | None) -> None:
    """The token endpoint's second factor: ``otp`` (an app code or a recovery code) when the
    user has two-factor login; staff who must set it up do that on the web first."""
    if user.has_two_factor:
        if not otp:
            raise NotAuthenticated(
                "This account uses two-factor login: send `otp` too.",
                {"otp": ["Missing: a code from your authenticator app or a recovery code."]},
            )
        do_verify_login(user, otp)
    elif must_enrol(user):
        raise NotAuthenticated(
            "Two-factor login is required for staff: set it up by logging in on the web first.",
            {"otp": ["Set up two-factor login on the web pages first."]},
        )


def check_bearer(user: User) -> None:
    """A token issued before staff had to use two-factor login stops working for those who
    have not set it up (the token endpoint gives them no new one either)."""
    if must_enrol(user):
        raise NotAuthenticated(
            "Two-factor login is required for staff: set it up by logging in on the web.",
            {"otp": ["Set up two-factor login on the web pages first."]},
        )


# -- the staff policy ----------------------------------------------------------------------------


@rolls_back_on_error
def do_set_staff_required(actor: User, required: bool) -> int:
    """Require two-factor login for staff (or stop requiring it). Requiring it logs out every
    staff member who has not set it up; at their next login they set it up first. The admin
    must have it on already (or they would lock themselves out mid-change). Returns how many
    people were logged out."""
    users.require_admin(actor)
    if required and not actor.has_two_factor:
        raise InvalidInput(
            "Turn on two-factor login for your own account first.",
            {"required": ["Set it up for your own account first (Sessions, Two-factor login)."]},
        )
    before = settings.stage(settings.STAFF_TWO_FACTOR_REQUIRED, required)
    if before == required:
        db.session.rollback()
        return 0
    logged_out = _log_out_unenrolled_staff() if required else 0
    audit.record(
        actor, "settings.staff_2fa_required", POLICY_TARGET, {"required": [before, required]}
    )
    db.session.commit()
    return logged_out


def _log_out_unenrolled_staff() -> int:
    unenrolled = db.session.scalars(
        select(User.id).where(User.role != Role.CUSTOMER, User.totp_enabled_at.is_(None))
    )
    return _log_out(list(unenrolled))


def _log_out(user_ids: list[int]) -> int:
    """End every web session and socket of these users (sockets may have been opened with
    a bearer token, without a session); how many of them were logged in on the web."""
    if not user_ids:
        return 0
    sessions_of = select(UserSession.user_id).where(UserSession.user_id.in_(user_ids))
    logged_in = set(db.session.scalars(sessions_of))
    db.session.execute(delete(UserSession).where(UserSession.user_id.in_(user_ids)))
    for user_id in user_ids:
        realtime.disconnect_user(user_id)
    return len(logged_in)
