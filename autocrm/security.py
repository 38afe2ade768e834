"""Password hashing (argon2), signed, expiring bearer tokens, and encryption of the secrets
that must be read back (TOTP secrets)."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime

from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

_hasher = PasswordHasher()
# Only for test suites (AUTOCRM_FAST_PASSWORD_HASHING): hashing at full cost would dominate them.
_fast_hasher = PasswordHasher.from_parameters(profiles.CHEAPEST)
# Verifying against this when the email is unknown keeps login time the same either way.
_DUMMY_HASH = _hasher.hash("not a password anyone has")


def hash_password(password: str) -> str:
    fast = current_app.config.get("AUTOCRM_FAST_PASSWORD_HASHING", False)
    return (_fast_hasher if fast else _hasher).hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        _hasher.verify(password_hash or _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return False
    return password_hash is not None


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="autocrm.api-token")


def password_fingerprint(password_hash: str) -> str:
    """Part of every token: changing the password invalidates the tokens issued before."""
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


def issue_token(user_id: int, password_hash: str) -> str:
    return _serializer().dumps({"uid": user_id, "pw": password_fingerprint(password_hash)})


def read_token(token: str) -> tuple[int, str] | None:
    """``(user id, password fingerprint)``, or None for a forged, malformed or expired token."""
    try:
        data = _serializer().loads(token, max_age=current_app.config["AUTOCRM_TOKEN_TTL"])
    except (SignatureExpired, BadSignature):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("uid"), int):
        return None
    return data["uid"], str(data.get("pw", ""))


FEEDBACK_LINK_MAX_AGE = 60 * 60 * 24 * 30  # a month to answer


def _feedback_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="autocrm.feedback-link")


def issue_feedback_token(ticket_id: int, requester_id: int) -> str:
    """The capability in a feedback email's link: rate this one ticket, as its requester."""
    return _feedback_serializer().dumps({"t": ticket_id, "u": requester_id})


def read_feedback_token(token: str) -> tuple[int, int] | None:
    """``(ticket id, requester id)`` or None for a forged, malformed or expired link."""
    try:
        data = _feedback_serializer().loads(token, max_age=FEEDBACK_LINK_MAX_AGE)
    except (SignatureExpired, BadSignature):
        return None
    if not isinstance(data, dict) or not all(isinstance(data.get(k), int) for k in "tu"):
        return None
    return data["t"], data["u"]


def _fernet() -> Fernet:
    """Fernet (AES-128-CBC + HMAC-SHA256) under a key derived from SECRET_KEY: a copy of the
    database alone does not reveal the secrets. Changing SECRET_KEY makes them unreadable."""
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"autocrm.stored-secret"
    ).derive(current_app.config["SECRET_KEY"].encode())
    return Fernet(base64.urlsafe_b64encode(key))


def encrypt_secret(plain: str) -> str:
    return _fernet().encrypt(plain.encode()).decode()


def decrypt_secret(stored: str) -> str | None:
    """The secret, or None if it was encrypted under another SECRET_KEY (or is damaged)."""
    try:
        return _fernet().decrypt(stored.encode()).decode()
    except InvalidToken:
        return None


def _reset_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="autocrm.password-reset")


def issue_password_reset_token(
    user_id: int, password_hash: str, *, invitation: bool = False
) -> str:
    """The capability in a password-reset email's link: set a new password for this user. It
    names the current password's fingerprint, so it works once: the new password ends it. An
    invitation's link (a first password) works for ``AUTOCRM_INVITATION_TTL``, not the reset's
    ``AUTOCRM_PASSWORD_RESET_TTL``."""
    claims: dict[str, object] = {"u": user_id, "pw": password_fingerprint(password_hash)}
    if invitation:
        claims["inv"] = 1
    return _reset_serializer().dumps(claims)


def read_password_reset_token(token: str) -> tuple[int, str] | None:
    """``(user id, password fingerprint)`` or None for a forged, malformed or expired link."""
    reset_ttl = current_app.config["AUTOCRM_PASSWORD_RESET_TTL"]
    invitation_ttl = current_app.config["AUTOCRM_INVITATION_TTL"]
    try:
        data, issued = _reset_serializer().loads(
            token, max_age=max(reset_ttl, invitation_ttl), return_timestamp=True
        )
    except (SignatureExpired, BadSignature):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("u"), int):
        return None
    max_age = invitation_ttl if data.get("inv") else reset_ttl
    if (datetime.now(UTC) - issued).total_seconds() > max_age:
        return None
    return data["u"], str(data.get("pw", ""))
