"""``emit``: the one way a change makes an event, in the caller's transaction.

It writes, as one:
- the ticket's trail row (``TicketEvent``), which the ticket page, reports and the simulator read;
- an outbox row, only when something consumes the kind (``handlers.HANDLERS``), which a worker
  handles after commit;
- the realtime payload for the ticket's rooms (``realtime.publish_event``), sent after commit.
A rollback drops all three.
"""

from __future__ import annotations

from typing import TypedDict

from autocrm.events import handlers, outbox
from autocrm.events.kinds import Event, TicketChange
from autocrm.extensions import db
from autocrm.people.models import User
from autocrm.realtime import publish as realtime
from autocrm.tickets.models import TicketEvent


class Actor(TypedDict):
    actor_id: int | None
    actor_role: str | None


def by(actor: User | None) -> Actor:
    """The actor fields of a ticket event made by ``actor`` (None: the system)."""
    if actor is None:
        return {"actor_id": None, "actor_role": None}
    return {"actor_id": actor.id, "actor_role": actor.role.value}


def emit(event: Event) -> None:
    trail = None
    if isinstance(event, TicketChange) and event.in_trail:
        trail = TicketEvent(
            ticket_id=event.ticket_id,
            actor_id=event.actor_id,
            kind=event.kind,
            from_state=getattr(event, "from_state", None),
            to_state=getattr(event, "to_state", None),
            data=event.trail_data(),
        )
        db.session.add(trail)
    if event.kind in handlers.HANDLERS:
        outbox.record(event)
    realtime.publish_event(event, trail)
