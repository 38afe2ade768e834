"""Simulating a workflow's draft against recent tickets: loading their recorded histories, each
with the published definition it ran on, for the pure simulator in ``workflows.simulate``.

The simulator compares a replay under the draft with a replay under that published version,
never with what was recorded (see ``workflows.simulate``), so what rules really did and the
SLA clocks' records are not loaded: only the trail, the messages and the pinned version.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import Result, select

from autocrm.columns import utcnow
from autocrm.engine.drafts import access_workflow_by_id, valid_draft
from autocrm.engine.models import WorkflowVersion
from autocrm.extensions import db
from autocrm.people.models import User
from autocrm.tickets.models import Message, Priority, Ticket, TicketEvent
from workflows import load_definition
from workflows.simulate import SimulationReport, simulate

MAX_SIMULATED_TICKETS = 500


# -- simulating ---------------------------------------------------------------------------------


def simulate_draft(actor: User, workflow_id: int, limit: int = 50) -> SimulationReport:
    """Run the draft against the most recently created tickets (any workflow): each one's
    history replayed under the version it ran on and under the draft, and compared."""
    workflow = access_workflow_by_id(actor, workflow_id)
    definition = valid_draft(workflow)
    limit = max(1, min(limit, MAX_SIMULATED_TICKETS))
    return simulate(definition, load_histories(limit), utcnow())


def load_histories(limit: int) -> list[dict[str, Any]]:
    """The recorded histories of the ``limit`` newest tickets, in the simulator's format."""
    rows = list(
        db.session.scalars(
            select(Ticket).order_by(Ticket.created_at.desc(), Ticket.id.desc()).limit(limit)
        )
    )
    if not rows:
        return []
    events = _trail_and_messages([t.id for t in rows])
    pinned: Result[int, int, dict[str, Any]] = db.session.execute(
        select(WorkflowVersion.id, WorkflowVersion.number, WorkflowVersion.definition).where(
            WorkflowVersion.id.in_({t.workflow_version_id for t in rows})
        )
    )
    versions = {
        version_id: (number, load_definition(definition))
        for version_id, number, definition in pinned
    }
    return [_history(t, events[t.id], *versions[t.workflow_version_id]) for t in rows]


def _trail_and_messages(ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    events: dict[int, list[dict[str, Any]]] = defaultdict(list)
    trail = db.session.execute(
        select(TicketEvent, User.role)
        .outerjoin(User, User.id == TicketEvent.actor_id)
        .where(TicketEvent.ticket_id.in_(ids))
        .order_by(TicketEvent.id)
    )
    for event, role in trail:
        payload = {
            **event.data,
            "actor_role": role.value if role else None,
            "actor_id": event.actor_id,  # the guard actor_is_assignee reads it
            "from_state": event.from_state,
            "to_state": event.to_state,
        }
        events[event.ticket_id].append(
            {"kind": event.kind, "at": event.created_at, "payload": payload}
        )
    # Messages are not in the trail: they are their own table.
    messages = db.session.execute(
        select(Message.ticket_id, Message.created_at, Message.internal, User.id, User.role)
        .join(User, User.id == Message.author_id)
        .where(Message.ticket_id.in_(ids))
        .order_by(Message.id)
    )
    for ticket_id, created_at, internal, author_id, role in messages:
        payload = {
            "actor_role": role.value,
            "actor_id": author_id,
            "author_role": role.value,
            "internal": internal,
        }
        events[ticket_id].append({"kind": "message.created", "at": created_at, "payload": payload})
    return events


def _history(
    ticket: Ticket, events: list[dict[str, Any]], number: int, definition: dict[str, Any]
) -> dict[str, Any]:
    tag_changes = [
        e["payload"]["changes"]["tags"]
        for e in events
        if e["kind"] == "ticket.updated" and "tags" in e["payload"].get("changes", {})
    ]
    return {
        "ticket_id": ticket.id,
        "created_at": ticket.created_at,
        "priority": Priority(ticket.priority).label,
        "requester_id": ticket.requester_id,
        "channel": ticket.channel,
        # Tags given at creation are not in the trail: the first change says what they were.
        "tags": list(tag_changes[0][0]) if tag_changes else list(ticket.tags),
        "definition": definition,
        "version": number,
        "events": sorted(events, key=lambda e: e["at"]),
    }
