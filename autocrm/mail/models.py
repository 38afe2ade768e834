"""Support mailboxes and every email they received.

A ``Mailbox`` is an address customers write to (support@...), the team its tickets go to,
and how its mail arrives: IMAP polling (settings here, the password encrypted with a key
derived from the app's secret), an MTA pipe (``flask mail-in``) or a provider's webhook
(authenticated by a per-mailbox secret, stored hashed). All three hand the raw bytes to
``receive.do_receive_email``.

An ``InboundEmail`` is one message as it arrived, whatever became of it: its raw bytes live in
file storage under ``raw_sha256`` (content-addressed, like attachments), so the original is
one click away and nothing is lost when a message cannot become a ticket change. Its
``message_key`` (the Message-ID, or the SHA-256 of the bytes when there is none) is unique per
mailbox: the same message delivered twice, by polling and by the pipe, is recorded once.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, Enum, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from autocrm.columns import UTCDateTime, utcnow
from autocrm.extensions import Model
from autocrm.people.models import Team, enum_values


class ImapSecurity(enum.StrEnum):
    SSL = "ssl"
    STARTTLS = "starttls"
    NONE = "none"


class Mailbox(Model):
    __tablename__ = "mailboxes"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Names the mailbox in `flask mail-in --mailbox NAME` and the webhook's URL.
    name: Mapped[str] = mapped_column(String(60), unique=True)
    address: Mapped[str] = mapped_column(String(254), unique=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    active: Mapped[bool] = mapped_column(default=True)
    # Replies go out with Reply-To support+<signed ticket token>@...: only for mail servers
    # that deliver sub-addresses to the mailbox (most do; some drop them).
    plus_addressing: Mapped[bool] = mapped_column(default=False)
    webhook_secret_hash: Mapped[str | None] = mapped_column(String(64))
    imap_host: Mapped[str | None] = mapped_column(String(253))
    imap_port: Mapped[int | None]
    imap_security: Mapped[ImapSecurity] = mapped_column(
        Enum(ImapSecurity, native_enum=False, length=10, values_callable=enum_values),
        default=ImapSecurity.SSL,
    )
    imap_username: Mapped[str | None] = mapped_column(String(254))
    imap_password_encrypted: Mapped[str | None] = mapped_column(Text)
    imap_folder: Mapped[str] = mapped_column(String(200), default="INBOX")
    # Where processed messages are moved; None: they are deleted.
    imap_processed_folder: Mapped[str | None] = mapped_column(String(200), default="Processed")
    last_polled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_poll_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    team: Mapped[Team | None] = relationship()

    @property
    def polls_imap(self) -> bool:
        return bool(self.imap_host and self.imap_username)

    def __repr__(self) -> str:
        return f"<Mailbox {self.name} {self.address}>"


class InboundStatus(enum.StrEnum):
    PROCESSED = "processed"  # became a ticket or a message on one
    IGNORED = "ignored"  # an auto-reply, bulk mail, a bounce, our own mail: never a ticket
    FAILED = "failed"  # kept for an admin to retry or discard
    DISCARDED = "discarded"  # an admin dropped a failed one


class InboundEmail(Model):
    __tablename__ = "inbound_emails"
    __table_args__ = (
        UniqueConstraint("mailbox_id", "message_key"),
        # Threading: a reply's In-Reply-To/References looked up among what we received.
        Index("ix_inbound_emails_message_id", "message_id"),
        # The failed-mail list, and the per-sender hourly limit.
        Index("ix_inbound_emails_status_id", "status", "id"),
        Index("ix_inbound_emails_sender_received_at", "sender", "received_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    mailbox_id: Mapped[int] = mapped_column(ForeignKey("mailboxes.id", ondelete="CASCADE"))
    message_key: Mapped[str] = mapped_column(String(255))
    message_id: Mapped[str | None] = mapped_column(String(255))
    sender: Mapped[str] = mapped_column(String(254), default="")
    subject: Mapped[str] = mapped_column(String(250), default="")
    via: Mapped[str] = mapped_column(String(10))  # imap, pipe, webhook
    raw_sha256: Mapped[str] = mapped_column(String(64))
    raw_size: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[InboundStatus] = mapped_column(
        Enum(InboundStatus, native_enum=False, length=10, values_callable=enum_values)
    )
    reason: Mapped[str] = mapped_column(Text, default="")
    ticket_id: Mapped[int | None] = mapped_column(
        ForeignKey("tickets.id", ondelete="SET NULL"), index=True
    )
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    mailbox: Mapped[Mailbox] = relationship()

    def __repr__(self) -> str:
        return f"<InboundEmail {self.id} {self.status} {self.message_key!r}>"
