"""The transactional outbox: domain events written in the same transaction as the change.

A row's ``id`` is the event id every consumer uses for idempotency. After commit the relay hands
the id to Celery; the worker that handles it sets ``processed_at`` in the same transaction as its
effects. The beat sweep re-publishes rows still unprocessed after a grace period (broker down,
process killed), recording each attempt; handling twice is harmless because the worker skips
rows already processed.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from autocrm.columns import JSONType, UTCDateTime, utcnow
from autocrm.extensions import Model


def new_event_id() -> str:
    return str(uuid.uuid4())


class OutboxEvent(Model):
    __tablename__ = "outbox_events"
    __table_args__ = (
        Index("ix_outbox_events_processed_at_created_at", "processed_at", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_event_id)
    kind: Mapped[str] = mapped_column(String(80))
    ticket_id: Mapped[int | None] = mapped_column(index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    publish_attempts: Mapped[int] = mapped_column(default=0)
