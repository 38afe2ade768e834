"""In-app notifications, per-kind email preferences, and the email outbox."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from autocrm.columns import JSONType, UTCDateTime, utcnow
from autocrm.extensions import Model

# What a user can be notified about; preferences switch email off per kind.
NOTIFICATION_KINDS = (
    "ticket_created",
    "public_reply",
    "customer_reply",
    "status_changed",
    "assigned",
    "sla_warning",
    "sla_breach",
    "escalation",
    "feedback_request",
    "mentioned",
)


class Notification(Model):
    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_user_id_id", "user_id", "id"),
        # The in-app page groups a user's notifications by ticket, newest first.
        Index("ix_notifications_user_id_ticket_id_id", "user_id", "ticket_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(30))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    # The message it is about, where that is one note (a mention): its link opens the ticket
    # there (``#message-<id>``).
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, default="")
    # The event (and recipient) it came from: handling an event twice notifies once.
    dedupe_key: Mapped[str] = mapped_column(String(120), unique=True)
    # "<change id>:<ticket id>:<user id>": one notification per recipient per change; what
    # else the change tells them merges into it (``services.notify``). None: no ticket.
    change_key: Mapped[str | None] = mapped_column(String(120), unique=True)
    # What it says, per kind ({kind: {"title", "text"}}): a merge adds or replaces one.
    parts: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # The one email that tells of it (staff: its own; a customer: their ticket's digest).
    email_id: Mapped[int | None] = mapped_column(
        ForeignKey("email_messages.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class NotificationPreference(Model):
    """A row exists only where a user changed the default (email on)."""

    __tablename__ = "notification_preferences"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(30), primary_key=True)
    email: Mapped[bool] = mapped_column(default=True)


class EmailMessage(Model):
    """An email to send. Written in the transaction that decided to send it; a task sends it
    after commit and records ``sent_at``; ``dedupe_key`` keeps a redelivered event from
    writing a second copy.

    A customer's email waits: ``send_after`` is when the customer email window of its ticket
    ends, and until then later changes to the ticket merge into it (``digest``). The beat
    requests it once due and clears ``send_after``; at most one waits per ticket and address.
    """

    __tablename__ = "email_messages"
    __table_args__ = (
        Index("ix_email_messages_sent_at_created_at", "sent_at", "created_at"),
        Index("ix_email_messages_send_after", "send_after"),
        Index(
            "uq_email_messages_waiting_ticket_id_to_address",
            "ticket_id",
            "to_address",
            unique=True,
            sqlite_where=text("send_after IS NOT NULL"),
            postgresql_where=text("send_after IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(120), unique=True)
    to_address: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(250))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    send_after: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A waiting email's entries, one per notification it tells of, in order:
    # [{"notification_id", "title", "text"}]; subject and body are rendered from them.
    digest: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONType)
