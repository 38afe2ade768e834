"""SLA clocks: one row per metric of a ticket, with its deadlines indexed for the sweep."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from autocrm.columns import UTCDateTime, utcnow
from autocrm.extensions import Model


class SlaClock(Model):
    """One SLA metric of one ticket. Deadlines live here, indexed, and a beat sweep fires
    what is due: no deadline depends on a Celery ETA message surviving.

    While running, ``due_at`` and ``warn_at`` are set; pausing stores the business seconds
    used so far in ``consumed_seconds`` and clears them; resuming recomputes them.
    """

    __tablename__ = "sla_clocks"
    __table_args__ = (
        UniqueConstraint("ticket_id", "metric"),
        Index("ix_sla_clocks_due_at", "due_at"),
        Index("ix_sla_clocks_warn_at", "warn_at"),
        # Team reports: SLA compliance of the clocks stopped in a period.
        Index("ix_sla_clocks_stopped_at", "stopped_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    metric: Mapped[str] = mapped_column(String(20))  # first_response | next_reply | resolution
    workflow_version_id: Mapped[int] = mapped_column(ForeignKey("workflow_versions.id"))
    target_seconds: Mapped[float]
    consumed_seconds: Mapped[float] = mapped_column(default=0.0)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    segment_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    warn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    warned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    breached_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @property
    def running(self) -> bool:
        return self.stopped_at is None and self.due_at is not None
