"""Stored workflow definitions: a workflow has immutable, numbered versions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from autocrm.columns import JSONType, UTCDateTime, utcnow
from autocrm.extensions import Model


class Workflow(Model):
    __tablename__ = "workflows"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    # New tickets pin the newest version of the default workflow.
    is_default: Mapped[bool] = mapped_column(default=False)
    # The admin's work in progress: kept as entered, valid or not, until published.
    draft: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    draft_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    versions: Mapped[list[WorkflowVersion]] = relationship(
        back_populates="workflow", order_by="WorkflowVersion.number"
    )


class WorkflowVersion(Model):
    """A published definition. Never updated: a change is a new number."""

    __tablename__ = "workflow_versions"
    __table_args__ = (UniqueConstraint("workflow_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workflow_id: Mapped[int] = mapped_column(ForeignKey("workflows.id"))
    number: Mapped[int]
    definition: Mapped[dict[str, Any]] = mapped_column(JSONType)
    note: Mapped[str] = mapped_column(Text, default="")
    published_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    workflow: Mapped[Workflow] = relationship(back_populates="versions")
