"""Every kind of domain event, as a frozen dataclass: what happened, in fields a reader can see.

An event is made where the change is made and handed to ``autocrm.events.emit.emit``, which
writes it to the ticket's trail, to the outbox when something consumes it
(``autocrm.events.handlers.HANDLERS``) and to the realtime rooms. A worker rebuilds it from
its outbox row with ``from_row``.

Two fields every event fills in by itself from where it is made:
- ``change_id`` names the change the event belongs to: every event of one transaction shares
  it, and so does every event a handler emits while reacting to them (``causes.handling``).
  Notifications use it to tell each person once per change.
- ``cause`` is the rule or escalation that made the change, if automation made it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

from autocrm.events import causes
from autocrm.events.models import OutboxEvent, new_event_id


@dataclass(frozen=True, kw_only=True)
class Event:
    kind: ClassVar[str]
    id: str = field(default_factory=new_event_id)
    change_id: str = field(default_factory=causes.change_id)
    cause: dict[str, Any] | None = field(default_factory=causes.current)

    @property
    def depth(self) -> int:
        """How many automated reactions led here (0: a person's change)."""
        return int((self.cause or {}).get("depth", 0))

    def payload(self) -> dict[str, Any]:
        """The fields an outbox row stores (its id is the row's own)."""
        data = dataclasses.asdict(self)
        del data["id"]
        return data


@dataclass(frozen=True, kw_only=True)
class TicketChange(Event):
    """Something happened to a ticket; ``actor_id`` is None when the system did it."""

    in_trail: ClassVar[bool] = True  # written to the ticket's trail (``TicketEvent``)

    ticket_id: int
    actor_id: int | None = None
    actor_role: str | None = None

    def trail_data(self) -> dict[str, Any]:
        """The trail row's ``data``: the fields its own columns (actor, states) do not hold."""
        own = {"id", "change_id", "cause", "ticket_id", "actor_id", "actor_role"}
        own |= {"from_state", "to_state"}
        data = {k: v for k, v in dataclasses.asdict(self).items() if k not in own}
        if self.cause is not None:
            data["cause"] = self.cause
        return data


@dataclass(frozen=True, kw_only=True)
class TicketCreated(TicketChange):
    kind = "ticket.created"
    to_state: str  # a field here, a class default on the base
    team_id: int | None
    assignee_id: int | None
    priority: str
    tags: list[str]


@dataclass(frozen=True, kw_only=True)
class TicketUpdated(TicketChange):
    kind = "ticket.updated"
    changes: dict[str, list[Any]]  # field -> [old, new]


@dataclass(frozen=True, kw_only=True)
class TicketAssigned(TicketChange):
    kind = "ticket.assigned"
    assignee_id: int | None


@dataclass(frozen=True, kw_only=True)
class StateMove(TicketChange):
    """The ticket entered a state (``tickets.state.enter_state``), by a transition or by a
    workflow migration."""

    from_state: str
    to_state: str
    to_category: str


@dataclass(frozen=True, kw_only=True)
class TicketTransitioned(StateMove):
    kind = "ticket.transitioned"
    transition: str


@dataclass(frozen=True, kw_only=True)
class WorkflowMigrated(StateMove):
    """Publishing a workflow version moved the ticket onto it (and maybe to another state)."""

    kind = "workflow.migrated"
    workflow_id: int
    from_version: int
    to_version: int


@dataclass(frozen=True, kw_only=True)
class MessageCreated(TicketChange):
    """A public reply or an internal note; its author is the actor."""

    kind = "message.created"
    in_trail = False  # the message is its own record

    message_id: int
    internal: bool
    author_role: str


@dataclass(frozen=True, kw_only=True)
class FeedbackReceived(TicketChange):
    kind = "feedback.created"
    rating: int


@dataclass(frozen=True, kw_only=True)
class FollowerAdded(TicketChange):
    """Someone now follows the ticket (``autocrm.tickets.followers``); staff-only in the trail."""

    kind = "follower.added"
    user_id: int


@dataclass(frozen=True, kw_only=True)
class FollowerRemoved(TicketChange):
    """Someone no longer follows the ticket: removed by staff, or unfollowed (actor = user)."""

    kind = "follower.removed"
    user_id: int


@dataclass(frozen=True, kw_only=True)
class TicketMerged(TicketChange):
    """``source_id`` was merged into ``target_id`` (``autocrm.tickets.merging``); written to
    both tickets' trails (``ticket_id`` is the one whose trail it is)."""

    kind = "ticket.merged"
    source_id: int
    target_id: int


@dataclass(frozen=True, kw_only=True)
class TicketLinked(TicketChange):
    """The ticket is now linked to ``linked_id`` as related (``autocrm.tickets.links``);
    written to both tickets' trails."""

    kind = "ticket.linked"
    linked_id: int


@dataclass(frozen=True, kw_only=True)
class TicketUnlinked(TicketChange):
    """The ticket is no longer linked to ``linked_id``; written to both tickets' trails."""

    kind = "ticket.unlinked"
    linked_id: int


@dataclass(frozen=True, kw_only=True)
class SlaDue(TicketChange):
    """An SLA clock reached a moment it watches; ``lateness_seconds`` is how late the sweep
    noticed."""

    metric: str
    clock_id: int
    deadline: str | None
    lateness_seconds: float | None


@dataclass(frozen=True, kw_only=True)
class SlaWarned(SlaDue):
    kind = "sla.warning"


@dataclass(frozen=True, kw_only=True)
class SlaBreached(SlaDue):
    kind = "sla.breached"


@dataclass(frozen=True, kw_only=True)
class AutomationFailed(TicketChange):
    """A rule's action, or a handler, was refused; the rest of the change stands."""

    kind = "automation.failed"
    action: dict[str, Any]
    error: str


@dataclass(frozen=True, kw_only=True)
class AttachmentQuarantined(TicketChange):
    """The malware scan found ``signature`` in a file on the ticket; it is no longer served."""

    kind = "attachment.quarantined"
    attachment_id: int
    message_id: int | None
    filename: str
    signature: str


@dataclass(frozen=True, kw_only=True)
class EmailRequested(Event):
    """An email was decided on; a worker sends it."""

    kind = "email.requested"
    email_id: int


KINDS: dict[str, type[Event]] = {
    cls.kind: cls
    for cls in (
        TicketCreated,
        TicketUpdated,
        TicketAssigned,
        TicketTransitioned,
        WorkflowMigrated,
        MessageCreated,
        FeedbackReceived,
        FollowerAdded,
        FollowerRemoved,
        TicketMerged,
        TicketLinked,
        TicketUnlinked,
        SlaWarned,
        SlaBreached,
        AutomationFailed,
        AttachmentQuarantined,
        EmailRequested,
    )
}

# What a customer sees of a ticket's trail (staff see all of it).
PUBLIC_TRAIL_KINDS = (TicketCreated.kind, TicketTransitioned.kind, TicketMerged.kind)
# Kinds that change the ticket row: clients watching it or its queue redraw it.
ROW_KINDS = (TicketCreated.kind, TicketUpdated.kind, TicketAssigned.kind, TicketTransitioned.kind)


def from_row(row: OutboxEvent) -> Event:
    """The typed event an outbox row holds (fields a newer version dropped are ignored)."""
    cls = KINDS[row.kind]
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(id=row.id, **{k: v for k, v in row.payload.items() if k in names})
