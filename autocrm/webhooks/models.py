"""Webhook subscriptions and their delivery log.

A subscription's secret signs every delivery, so it is stored encrypted
(``security.encrypt_secret``), not hashed: it must be read back. A delivery is one event for
one subscription; its ``payload`` is fixed when the event is handled, so a retry or a
redelivery sends the same document. ``next_attempt_at`` is the deadline the beat sweep
claims (indexed); None once the delivery is settled.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import Enum, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from autocrm.columns import JSONType, UTCDateTime, utcnow
from autocrm.extensions import Model
from autocrm.people.models import Team, enum_values

# The event kinds a subscription may ask for (each a ``TicketChange``: a delivery carries its
# ticket), with what the admin console calls them.
EVENT_KINDS = {
    "ticket.created": "Ticket created",
    "ticket.updated": "Ticket updated",
    "ticket.assigned": "Ticket assigned",
    "ticket.transitioned": "Ticket status changed",
    "message.created": "Message added",
    "feedback.created": "Feedback received",
    "sla.warning": "SLA warning",
    "sla.breached": "SLA breached",
}
TEST_EVENT_KIND = "webhook.test"
# A workflow rule's ``call_webhook`` action: sent to the subscription it names, whatever kinds
# that subscription asks for.
RULE_EVENT_KIND = "workflow.rule"


class WebhookSubscription(Model):
    __tablename__ = "webhook_subscriptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    description: Mapped[str] = mapped_column(String(200), default="")
    # Which of EVENT_KINDS are delivered to it.
    event_kinds: Mapped[list[str]] = mapped_column(JSONType, default=list)
    # Only tickets of this team (None: every ticket). A team with subscriptions cannot be
    # deleted from under them: a filter that vanished would leak every team's tickets.
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"))
    # Internal notes are delivered only to subscriptions that say so.
    include_internal: Mapped[bool] = mapped_column(default=False)
    secret_encrypted: Mapped[str] = mapped_column(Text)
    # False: paused (by an admin, or after too many failures in a row); nothing is recorded
    # for it while paused.
    active: Mapped[bool] = mapped_column(default=True)
    consecutive_failures: Mapped[int] = mapped_column(default=0)
    paused_reason: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    team: Mapped[Team | None] = relationship()

    def __repr__(self) -> str:
        return f"<WebhookSubscription {self.id} {self.url}>"


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"  # to be sent (now, or at next_attempt_at)
    DELIVERED = "delivered"  # the endpoint answered 2xx
    FAILED = "failed"  # given up: retried for RETRY_FOR without a 2xx


class WebhookDelivery(Model):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("subscription_id", "event_id"),
        # The sweep's due rows; the log of a subscription, newest first; the order per ticket.
        Index("ix_webhook_deliveries_next_attempt_at", "next_attempt_at"),
        Index("ix_webhook_deliveries_subscription", "subscription_id", "id"),
        Index("ix_webhook_deliveries_ticket_order", "subscription_id", "ticket_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    subscription_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_subscriptions.id", ondelete="CASCADE")
    )
    event_id: Mapped[str] = mapped_column(String(36))
    event_kind: Mapped[str] = mapped_column(String(80))
    ticket_id: Mapped[int | None]  # no foreign key: the log outlives a deleted ticket
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    status: Mapped[DeliveryStatus] = mapped_column(
        Enum(DeliveryStatus, native_enum=False, length=10, values_callable=enum_values),
        default=DeliveryStatus.PENDING,
    )
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status_code: Mapped[int | None]
    last_response_ms: Mapped[int | None]
    last_response_body: Mapped[str | None] = mapped_column(Text)  # its first KB
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    subscription: Mapped[WebhookSubscription] = relationship()

    def __repr__(self) -> str:
        return f"<WebhookDelivery {self.id} {self.event_kind} {self.status}>"
