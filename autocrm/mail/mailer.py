"""Sending email: a small ``Mailer`` interface, an SMTP implementation and a console one.

``create_app`` picks the mailer from the settings (``mailer_from_config``) and keeps it in
``app.extensions["mailer"]``: SMTP when ``AUTOCRM_SMTP_HOST`` is set, otherwise the console
mailer, which only logs (``make run``, tests). Nothing connects before ``send`` is called.

A mailer raises ``PermanentFailure`` when the server refused the email for good (retrying
cannot help); any other exception means "try again later".
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from collections.abc import Mapping, Sequence
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from typing import Any, Protocol

log = logging.getLogger(__name__)


# A file sent with an email: (file name, content type, bytes).
Attached = tuple[str, str, bytes]


class PermanentFailure(Exception):
    """The email was refused in a way no retry will change (bad address, rejected content)."""


class Mailer(Protocol):
    def send(
        self,
        to: str,
        subject: str,
        body: str,
        *,
        message_id: str,
        sender: str | None = None,
        headers: Mapping[str, str] | None = None,
        attachments: Sequence[Attached] = (),
    ) -> None:
        """Send one plain-text email. ``message_id`` is stable for this email (the same on
        every retry) and becomes its Message-ID, so a duplicate is recognizable. ``sender``
        replaces the configured From (a support mailbox's address); ``headers`` adds others
        (Reply-To, In-Reply-To, References); ``attachments`` are (file name, type, bytes)."""


def message_id_header(message_id: str, sender: str) -> str:
    """``<message_id@domain of the sender>``, an RFC 5322 msg-id."""
    domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
    return f"<{message_id}@{domain}>"


def build_message(
    sender: str,
    to: str,
    subject: str,
    body: str,
    message_id: str,
    headers: Mapping[str, str] | None = None,
    attachments: Sequence[Attached] = (),
) -> EmailMessage:
    """The email as it goes on the wire; ValueError for headers that cannot be encoded."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = message_id_header(message_id, sender)
    message["Auto-Submitted"] = "auto-generated"  # keeps auto-responders from answering
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(body)
    for filename, content_type, content in attachments:
        maintype, _, subtype = content_type.partition("/")
        message.add_attachment(
            content, maintype=maintype, subtype=subtype or "octet-stream", filename=filename
        )
    return message


class SmtpMailer:
    """Sends through an SMTP server, one connection per email (emails are sent by workers,
    one outbox event at a time; a pooled connection would only go stale between them)."""

    def __init__(
        self,
        host: str,
        port: int = 25,
        *,
        sender: str,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = False,
        use_ssl: bool = False,
        timeout: float = 10.0,
    ) -> None:
        if starttls and use_ssl:
            raise ValueError("choose STARTTLS or SSL, not both")
        self.host = host
        self.port = port
        self.sender = sender
        self.username = username
        self.password = password
        self.starttls = starttls
        self.use_ssl = use_ssl
        self.timeout = timeout

    def _connect(self) -> smtplib.SMTP:
        if self.use_ssl:
            return smtplib.SMTP_SSL(
                self.host, self.port, timeout=self.timeout, context=ssl.create_default_context()
            )
        smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        if self.starttls:
            smtp.starttls(context=ssl.create_default_context())
        return smtp

    def send(
        self,
        to: str,
        subject: str,
        body: str,
        *,
        message_id: str,
        sender: str | None = None,
        headers: Mapping[str, str] | None = None,
        attachments: Sequence[Attached] = (),
    ) -> None:
        try:
            message = build_message(
                sender or self.sender, to, subject, body, message_id, headers, attachments
            )
            with self._connect() as smtp:
                if self.username:
                    smtp.login(self.username, self.password or "")
                smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            raise PermanentFailure(f"recipient refused: {exc.recipients}") from exc
        except smtplib.SMTPDataError as exc:
            if exc.smtp_code >= 500:
                raise PermanentFailure(
                    f"message refused: {exc.smtp_code} {exc.smtp_error!r}"
                ) from exc
            raise
        except (ValueError, UnicodeError) as exc:  # a header or address that cannot be sent
            raise PermanentFailure(f"cannot encode the email: {exc}") from exc

    def __repr__(self) -> str:
        tls = " ssl" if self.use_ssl else " starttls" if self.starttls else ""
        return f"<SmtpMailer {self.host}:{self.port}{tls}>"


class ConsoleMailer:
    """Logs each email instead of sending it: the development default."""

    def __init__(self, sender: str = "AutoCRM <support@localhost>") -> None:
        self.sender = sender

    def send(
        self,
        to: str,
        subject: str,
        body: str,
        *,
        message_id: str,
        sender: str | None = None,
        headers: Mapping[str, str] | None = None,
        attachments: Sequence[Attached] = (),
    ) -> None:
        sender = sender or self.sender
        extra = "".join(f"\n{name}: {value}" for name, value in (headers or {}).items())
        if attachments:
            extra += "\n(files: " + ", ".join(name for name, _, _ in attachments) + ")"
        log.info(
            "email (not sent: no AUTOCRM_SMTP_HOST) %s\nFrom: %s\nTo: %s%s\nSubject: %s\n\n%s",
            message_id_header(message_id, sender),
            sender,
            to,
            extra,
            subject,
            body,
        )


def mailer_from_config(config: Mapping[str, Any]) -> Mailer:
    host = config.get("AUTOCRM_SMTP_HOST")
    sender = config.get("AUTOCRM_MAIL_FROM") or "AutoCRM <support@localhost>"
    if not host:
        return ConsoleMailer(sender)
    return SmtpMailer(
        host,
        int(config.get("AUTOCRM_SMTP_PORT") or 25),
        sender=sender,
        username=config.get("AUTOCRM_SMTP_USERNAME"),
        password=config.get("AUTOCRM_SMTP_PASSWORD"),
        starttls=bool(config.get("AUTOCRM_SMTP_STARTTLS")),
        use_ssl=bool(config.get("AUTOCRM_SMTP_SSL")),
        timeout=float(config.get("AUTOCRM_SMTP_TIMEOUT") or 10),
    )
