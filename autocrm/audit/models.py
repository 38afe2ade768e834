"""The audit log of admin changes: who changed which user, team or workflow, when, and how."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from autocrm.columns import JSONType, UTCDateTime, utcnow
from autocrm.extensions import Model
from autocrm.people.models import User


class AdminAuditEntry(Model):
    """One admin change. Written in the same transaction as the change, never updated.

    ``changes`` maps a field to ``[before, after]`` (plain JSON values; secrets such as
    passwords are never stored, the action alone says they changed). ``target_label`` keeps
    what the target was called at the time, so the entry still reads well after a rename.
    Listed newest first by id; the indexes serve the filters (target, actor, action).
    """

    __tablename__ = "admin_audit_entries"
    __table_args__ = (
        Index("ix_admin_audit_entries_target", "target_type", "target_id", "id"),
        Index("ix_admin_audit_entries_actor", "actor_id", "id"),
        Index("ix_admin_audit_entries_action", "action", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(String(60))
    target_type: Mapped[str] = mapped_column(String(30))
    target_id: Mapped[int | None]
    target_label: Mapped[str] = mapped_column(String(300), default="")
    changes: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    actor: Mapped[User | None] = relationship()

    def __repr__(self) -> str:
        return f"<AdminAuditEntry {self.id} {self.action} {self.target_type}:{self.target_id}>"
