"""Test email: the checked-in corpus of real-world-shaped messages, and builders for more.

The corpus (tests/mail_corpus/*.eml) holds messages shaped like what Gmail, Outlook,
Thunderbird, Apple Mail, list servers and MTAs really send, byte for byte, because the
parser's job is surviving their quirks. Tests that need a message of their own (a reply to a
given Message-ID, a mail from a given customer) build it here instead of hand-writing MIME, and
the 25 MB message is built on demand rather than checked in.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

CORPUS = Path(__file__).parent / "mail_corpus"

# Raw bytes on the wire use CRLF and no line-length limit imposed by us (the parser must cope).
_WIRE = policy.SMTP.clone(max_line_length=998)

AddressLike = str | tuple[str, str]


def load(name: str) -> bytes:
    """The raw bytes of one corpus message, by file name with or without ".eml"."""
    path = CORPUS / (name if name.endswith(".eml") else f"{name}.eml")
    return path.read_bytes()


def corpus_names() -> list[str]:
    return sorted(p.stem for p in CORPUS.glob("*.eml"))


def _address(value: AddressLike) -> str:
    if isinstance(value, tuple):
        name, email = value
        return str(Address(display_name=name, addr_spec=email))
    return value


def _ids(value: str | Iterable[str] | None) -> list[str]:
    if value is None:
        return []
    items = [value] if isinstance(value, str) else list(value)
    return [i if i.startswith("<") else f"<{i}>" for i in items]


def build_message(
    sender: AddressLike,
    to: AddressLike | Sequence[AddressLike],
    subject: str,
    body: str,
    *,
    message_id: str | None = None,
    in_reply_to: str | Iterable[str] | None = None,
    references: Iterable[str] = (),
    cc: Sequence[AddressLike] = (),
    headers: Mapping[str, str] | None = None,
    attachments: Sequence[tuple[str, str, bytes]] = (),
    html: str | None = None,
    date: str | None = None,
) -> bytes:
    """Raw bytes of a message as a mail client would send it.

    Addresses are "a@b" or ("Name", "a@b"); ids may be given with or without <>; a None
    message_id makes a fresh one; attachments are (file name, content type, bytes).
    """
    msg = EmailMessage(policy=policy.default)
    msg["From"] = _address(sender)
    recipients = [to] if isinstance(to, str | tuple) else list(to)
    msg["To"] = ", ".join(_address(r) for r in recipients)
    if cc:
        msg["Cc"] = ", ".join(_address(c) for c in cc)
    msg["Subject"] = subject
    msg["Date"] = date or format_datetime(datetime.now(UTC))
    msg["Message-ID"] = _ids(message_id)[0] if message_id else make_msgid(domain="mail.test")
    if in_reply_to:
        msg["In-Reply-To"] = " ".join(_ids(in_reply_to))
    if references:
        msg["References"] = " ".join(_ids(references))
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(body)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    for filename, content_type, content in attachments:
        maintype, _, subtype = content_type.partition("/")
        msg.add_attachment(content, maintype=maintype, subtype=subtype, filename=filename)
    return msg.as_bytes(policy=_WIRE)


def big_message(size_mb: int = 25, *, sender: AddressLike = "big.sender@example.com") -> bytes:
    """A message of about `size_mb` MB on the wire: a short text and one large attachment.

    base64 grows content by a third, so the attachment holds three quarters of the size.
    """
    content = os.urandom(size_mb * 1024 * 1024 * 3 // 4)
    return build_message(
        sender,
        "support@acme.test",
        "Log files from the crash",
        "The full logs are attached.",
        attachments=[("logs.bin", "application/octet-stream", content)],
    )
