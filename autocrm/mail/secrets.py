"""Mailbox passwords encrypted at rest: the poller must send the password to the IMAP server,
so it cannot be hashed, and a copy of the database alone must not reveal it.

Fernet (AES-128-CBC + HMAC-SHA256) under a key derived from the app's ``AUTOCRM_SECRET_KEY``
with HKDF, under an ``info`` of its own so no other use of the secret key shares this key.
Changing the secret key makes stored passwords unreadable (``SecretUnreadable``): admins enter
them again. Plain functions of the key, so the CLI, workers and tests need no app context.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_INFO = b"autocrm mailbox password"


class SecretUnreadable(Exception):
    """A stored secret cannot be decrypted: it was encrypted under another secret key (the
    key changed) or the stored value is damaged. The admin must enter it again."""


def encrypt(secret_key: str, plaintext: str) -> str:
    """The text to store for ``plaintext``; different each time (a random IV)."""
    return _fernet(secret_key).encrypt(plaintext.encode()).decode("ascii")


def decrypt(secret_key: str, token: str) -> str:
    """What ``encrypt`` was given, or ``SecretUnreadable``."""
    try:
        return _fernet(secret_key).decrypt(token.encode()).decode()
    except (InvalidToken, UnicodeError) as exc:
        raise SecretUnreadable(
            "The stored mailbox password cannot be read: the secret key changed since it "
            "was saved, or the stored value is damaged. Enter the password again."
        ) from exc


def _fernet(secret_key: str) -> Fernet:
    if not secret_key:
        raise ValueError("an empty secret key protects nothing")
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(
        secret_key.encode()
    )
    return Fernet(base64.urlsafe_b64encode(key))
