"""Mailbox passwords at rest: readable back with the same secret key only, never in clear."""

from __future__ import annotations

import base64

import pytest

from autocrm.mail.secrets import SecretUnreadable, decrypt, encrypt

KEY = "the-app-secret-key"
PASSWORD = "correct horse battery staple é"


def test_a_password_comes_back_as_it_was_stored() -> None:
    assert decrypt(KEY, encrypt(KEY, PASSWORD)) == PASSWORD


def test_the_stored_text_does_not_reveal_the_password() -> None:
    token = encrypt(KEY, PASSWORD)

    assert "horse" not in token
    assert b"horse" not in base64.urlsafe_b64decode(token)
    assert encrypt(KEY, PASSWORD) != token  # same password, different text: no equality leak


def test_another_secret_key_cannot_read_it() -> None:
    token = encrypt(KEY, PASSWORD)

    with pytest.raises(SecretUnreadable, match="secret key changed"):
        decrypt("a-new-secret-key", token)


def test_a_damaged_value_is_refused_not_garbled() -> None:
    token = encrypt(KEY, PASSWORD)
    damaged = token[:20] + ("A" if token[20] != "A" else "B") + token[21:]

    with pytest.raises(SecretUnreadable):
        decrypt(KEY, damaged)
    with pytest.raises(SecretUnreadable):
        decrypt(KEY, "not a token at all")


def test_an_empty_secret_key_is_refused() -> None:
    with pytest.raises(ValueError, match="empty secret key"):
        encrypt("", PASSWORD)
