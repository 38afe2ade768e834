"""What automation remembers: the time-based rules that fired, once per ticket and anchor."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from autocrm.columns import UTCDateTime, utcnow
from autocrm.extensions import Model


class RuleFiring(Model):
    """A time-based rule fired for a ticket at an anchor time: it fires once per anchor."""

    __tablename__ = "rule_firings"
    __table_args__ = (UniqueConstraint("ticket_id", "workflow_version_id", "rule", "anchor"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    workflow_version_id: Mapped[int] = mapped_column(ForeignKey("workflow_versions.id"))
    rule: Mapped[str] = mapped_column(String(50))
    anchor: Mapped[datetime] = mapped_column(UTCDateTime)
    fired_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
