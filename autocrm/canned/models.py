"""Canned responses: reply templates agents insert, shared with one team or with everyone."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from autocrm.columns import UTCDateTime, utcnow
from autocrm.extensions import Model
from autocrm.people.models import Team, User


class CannedResponse(Model):
    """A reply template; ``team_id`` None: shared with every agent. The body may hold the
    placeholders ``{{customer_name}}``, ``{{ticket_id}}`` and ``{{agent_name}}``, which are
    substituted as plain text (never evaluated as a template)."""

    __tablename__ = "canned_responses"

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int | None] = mapped_column(
        ForeignKey("teams.id", ondelete="CASCADE"), index=True
    )
    title: Mapped[str] = mapped_column(String(120))
    body: Mapped[str] = mapped_column(Text)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    team: Mapped[Team | None] = relationship()
    created_by: Mapped[User | None] = relationship()
