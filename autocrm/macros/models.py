"""Macros: a reply text and ticket changes an agent applies in one go (formerly canned
responses, which are the macros without changes)."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from autocrm.columns import JSONType, UTCDateTime, utcnow
from autocrm.extensions import Model
from autocrm.people.models import Team, User


class MacroScope(enum.StrEnum):
    """Who sees and uses a macro: its owner only, one team, or every agent."""

    PERSONAL = "personal"
    TEAM = "team"
    GLOBAL = "global"


class Macro(Model):
    """A macro; its scope follows from ``owner_id`` (personal) and ``team_id`` (team), neither:
    shared with every agent (global). ``body`` may hold placeholders (``{{ticket.number}}``,
    ``{{requester.name}}``, ``{{agent.name}}`` ...), substituted as plain text (never evaluated
    as a template); it may be empty when ``actions`` changes something.

    ``actions`` (every key optional): ``priority`` (a label), ``team_id``, ``assignee_id`` (an
    id, ``"me"`` for whoever applies it, or null: unassign), ``add_tags``, ``remove_tags``,
    ``transition`` (a workflow transition's name)."""

    __tablename__ = "macros"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(120))
    body: Mapped[str] = mapped_column(Text, default="")
    team_id: Mapped[int | None] = mapped_column(
        ForeignKey("teams.id", ondelete="CASCADE"), index=True
    )
    owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    actions: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    usage_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    team: Mapped[Team | None] = relationship()
    owner: Mapped[User | None] = relationship(foreign_keys=[owner_id])
    created_by: Mapped[User | None] = relationship(foreign_keys=[created_by_id])

    @property
    def scope(self) -> MacroScope:
        if self.owner_id is not None:
            return MacroScope.PERSONAL
        return MacroScope.TEAM if self.team_id is not None else MacroScope.GLOBAL

    @property
    def text_only(self) -> bool:
        return not self.actions
