"""Tickets and what hangs off them: tags, the conversation, the audit trail and feedback."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import CheckConstraint, Enum, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.ext.associationproxy import AssociationProxy, association_proxy
from sqlalchemy.orm import Mapped, mapped_column, relationship

from autocrm.columns import IntEnumType, JSONType, UTCDateTime, utcnow
from autocrm.extensions import Model
from autocrm.people.models import Team, User, enum_values

if TYPE_CHECKING:
    from autocrm.files.models import Attachment


class Priority(enum.IntEnum):
    LOW = 1
    NORMAL = 2
    HIGH = 3
    URGENT = 4

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def from_label(cls, label: str) -> Priority:
        return cls[label.upper()]


class Ticket(Model):
    __tablename__ = "tickets"
    __table_args__ = (
        # Keyset pagination: one (sort key, id) index per sort, and (filter, created_at, id)
        # for each filter so a filtered, newest-first page is an index range scan.
        Index("ix_tickets_created_at_id", "created_at", "id"),
        Index("ix_tickets_updated_at_id", "updated_at", "id"),
        Index("ix_tickets_priority_id", "priority", "id"),
        Index("ix_tickets_status_created", "status", "created_at", "id"),
        Index("ix_tickets_priority_created", "priority", "created_at", "id"),
        Index("ix_tickets_requester_created", "requester_id", "created_at", "id"),
        Index("ix_tickets_assignee_created", "assignee_id", "created_at", "id"),
        Index("ix_tickets_team_created", "team_id", "created_at", "id"),
        # Workload (open tickets per agent) and the team queue (unassigned, not done).
        Index("ix_tickets_assignee_category", "assignee_id", "category"),
        Index("ix_tickets_team_category_assignee", "team_id", "category", "assignee_id"),
        # Time-based rules count from these.
        Index("ix_tickets_solved_at", "solved_at"),
        # Team reports: solved per team in a period; closed per team for the backlog trend.
        Index("ix_tickets_team_solved", "team_id", "solved_at"),
        Index("ix_tickets_team_closed", "team_id", "closed_at"),
        Index("ix_tickets_status_changed_at", "status_changed_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    subject: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(50))
    # The workflow category of ``status`` (new/open/pending/solved/closed), kept with it so
    # SLA pausing, workloads and reports need not consult each ticket's workflow version.
    category: Mapped[str] = mapped_column(String(20))
    priority: Mapped[Priority] = mapped_column(IntEnumType(Priority), default=Priority.NORMAL)
    channel: Mapped[str] = mapped_column(String(20), default="web")
    # The support mailbox it came in by (email channel): replies go out from its address.
    mailbox_id: Mapped[int | None] = mapped_column(ForeignKey("mailboxes.id", ondelete="SET NULL"))
    requester_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    workflow_version_id: Mapped[int] = mapped_column(ForeignKey("workflow_versions.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    status_changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    first_responded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    solved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Business seconds (the ticket's hours, ``sla.calendar_for_ticket``) from creation to
    # ``first_responded_at`` and to ``solved_at``, stored when those become known so reports
    # aggregate them in SQL; set and cleared together with their timestamps.
    first_response_business_seconds: Mapped[float | None]
    resolution_business_seconds: Mapped[float | None]
    version: Mapped[int] = mapped_column(default=1)
    # The ticket this one was merged into (``tickets.merging``): it is closed, and its
    # conversation, followers and emails live on there.
    merged_into_id: Mapped[int | None] = mapped_column(
        ForeignKey("tickets.id", ondelete="SET NULL")
    )
    # The values of the admins' custom fields (``autocrm.fields``), by field key.
    custom_fields: Mapped[dict[str, Any]] = mapped_column(
        JSONType, default=dict, server_default="{}"
    )
    # The request form it was filed with (``autocrm.fields.forms``); staff may change it. A
    # form tickets hold is retired, never deleted (so no ON DELETE: SQLite adds the key inline,
    # where it cannot be read back with one).
    form_id: Mapped[int | None] = mapped_column(ForeignKey("request_forms.id"))

    requester: Mapped[User] = relationship(foreign_keys=[requester_id])
    assignee: Mapped[User | None] = relationship(foreign_keys=[assignee_id])
    team: Mapped[Team | None] = relationship()
    tag_rows: Mapped[list[TicketTag]] = relationship(
        cascade="all, delete-orphan", order_by="TicketTag.tag", lazy="selectin"
    )
    tags: AssociationProxy[list[str]] = association_proxy(
        "tag_rows", "tag", creator=lambda tag: TicketTag(tag=tag)
    )

    # SQLAlchemy bumps the version on every UPDATE and adds "AND version = :old" to it, so a
    # concurrent writer that read the same version loses with StaleDataError (-> 409).
    __mapper_args__ = {"version_id_col": version}

    def __repr__(self) -> str:
        return f"<Ticket {self.id} {self.status}>"


class TicketTag(Model):
    __tablename__ = "ticket_tags"
    __table_args__ = (Index("ix_ticket_tags_tag_ticket", "tag", "ticket_id"),)

    ticket_id: Mapped[int] = mapped_column(
        ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(50), primary_key=True)


class TicketFollower(Model):
    """Someone kept informed of a ticket besides its requester and assignee (a CC): a customer
    sees and hears of it as the requester does, staff hear of every update."""

    __tablename__ = "ticket_followers"
    __table_args__ = (
        UniqueConstraint("ticket_id", "user_id"),
        # A customer's portal list: the tickets they follow.
        Index("ix_ticket_followers_user_ticket", "user_id", "ticket_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    added_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    user: Mapped[User] = relationship(foreign_keys=[user_id])


class TicketLink(Model):
    """Two related tickets (``tickets.links``), stored once per pair with the smaller id
    first and shown on both."""

    __tablename__ = "ticket_links"
    __table_args__ = (
        UniqueConstraint("ticket_id", "linked_id"),
        CheckConstraint("ticket_id < linked_id", name="ordered_pair"),
        # The other side's lookup: links where the ticket is the larger id.
        Index("ix_ticket_links_linked_ticket", "linked_id", "ticket_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    linked_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Message(Model):
    """One entry of a ticket's conversation; ``internal`` ones are agent notes."""

    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_ticket_id_id", "ticket_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    body: Mapped[str] = mapped_column(Text)
    internal: Mapped[bool] = mapped_column(default=False)
    # The door it came in by (web, api, chat, email), shown in the ticket's trail.
    channel: Mapped[str] = mapped_column(String(20), default="web")
    # The email it was received as (its original is one click away).
    inbound_email_id: Mapped[int | None] = mapped_column(
        ForeignKey("inbound_emails.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    author: Mapped[User] = relationship()
    # Loaded with the messages, in one query for all of them.
    attachments: Mapped[list[Attachment]] = relationship(
        order_by="Attachment.id", lazy="selectin", viewonly=True
    )


class TicketEvent(Model):
    """Append-only audit trail: who (or which rule) did what to a ticket, and from/to state."""

    __tablename__ = "ticket_events"
    __table_args__ = (Index("ix_ticket_events_ticket_id_id", "ticket_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(50))
    from_state: Mapped[str | None] = mapped_column(String(50))
    to_state: Mapped[str | None] = mapped_column(String(50))
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    actor: Mapped[User | None] = relationship()


class Feedback(Model):
    __tablename__ = "feedback"
    __table_args__ = (CheckConstraint("rating BETWEEN 1 AND 5", name="rating_range"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(
        ForeignKey("tickets.id", ondelete="CASCADE"), unique=True
    )
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    rating: Mapped[int]
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ViewScope(enum.StrEnum):
    PERSONAL = "personal"  # its owner's only
    TEAM = "team"  # every member of ``team_id`` (made by a member or an admin)
    GLOBAL = "global"  # every staff member (made by admins)


class SavedView(Model):
    """A named set of queue filters (``autocrm.tickets.views``); the built-in views are code."""

    __tablename__ = "saved_views"
    __table_args__ = (
        CheckConstraint("(scope = 'team') = (team_id IS NOT NULL)", name="team_scope_has_team"),
        Index("ix_saved_views_owner", "owner_id", "position"),
        Index("ix_saved_views_team", "team_id", "position"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    scope: Mapped[ViewScope] = mapped_column(
        Enum(ViewScope, native_enum=False, length=10, values_callable=enum_values)
    )
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    # The list API's filter vocabulary (``views.ViewFiltersSchema``), as validated.
    filters: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # Custom field keys shown as queue columns, in order.
    columns: Mapped[list[str]] = mapped_column(JSONType, default=list, server_default="[]")
    # A fixed sort ("-updated_at") or a custom field's ("-field.<key>").
    sort: Mapped[str] = mapped_column(String(60), default="-updated_at")
    position: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    owner: Mapped[User] = relationship()

    def __repr__(self) -> str:
        return f"<SavedView {self.id} {self.name!r} {self.scope}>"
