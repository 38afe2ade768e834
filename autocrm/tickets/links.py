"""Links between related tickets (not duplicates: those are merged, ``tickets.merging``).

A link is symmetric: stored once per pair (``TicketLink``, the smaller id first) and shown on
both tickets, with a ``TicketLinked``/``TicketUnlinked`` event in both trails. Staff who see
both tickets link and unlink them; a ticket's page lists only the linked tickets its reader
may see.
"""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from autocrm import aftercommit, policies
from autocrm.errors import Conflict, Forbidden, InvalidInput, NotFound
from autocrm.events.emit import by, emit
from autocrm.events.kinds import TicketLinked, TicketUnlinked
from autocrm.extensions import db
from autocrm.people.models import User
from autocrm.tickets.models import Ticket, TicketLink
from autocrm.tickets.representation import linked_ids
from autocrm.tickets.services import access_ticket_by_id
from autocrm.transaction import rolls_back_on_error

FIELD = "linked_id"  # what a caller names the other ticket by


def _pair(a: int, b: int) -> tuple[int, int]:
    return (a, b) if a < b else (b, a)


# -- reading -----------------------------------------------------------------------------------


def list_linked(actor: User, ticket_id: int, ids: list[int] | None = None) -> list[Ticket]:
    """The tickets linked to one the actor sees, those the actor may see, by number; ``ids``:
    the linked ids, if the caller has them (the ticket's staff view's ``linked_ticket_ids``)."""
    ticket = access_ticket_by_id(actor, ticket_id)
    ids = linked_ids([ticket.id])[ticket.id] if ids is None else ids
    if not ids:
        return []
    stmt = select(Ticket).where(Ticket.id.in_(ids), policies.visible_tickets(actor))
    return list(db.session.scalars(stmt.order_by(Ticket.id)))


# -- checks ------------------------------------------------------------------------------------


def _refused(message: str) -> InvalidInput:
    return InvalidInput(message, {FIELD: [message]})


def _staff_only(actor: User) -> None:
    if not policies.is_staff(actor) or not policies.may_change(actor):
        raise Forbidden("Only support staff link tickets.")


def check_link(actor: User, ticket: Ticket, other_id: int) -> Ticket:
    """The ticket ``other_id`` that ``ticket`` may be linked to: InvalidInput naming
    ``linked_id`` otherwise (itself, unknown or unseen)."""
    if other_id == ticket.id:
        raise _refused("A ticket cannot be linked to itself.")
    other = db.session.get(Ticket, other_id)
    if other is None or not policies.can_view_ticket(actor, other):
        raise _refused(f"No ticket #{other_id}.")
    return other


# -- services ----------------------------------------------------------------------------------


@rolls_back_on_error
def do_link(actor: User, ticket_id: int, other_id: int) -> Ticket:
    """Link two tickets both ways; returns the other ticket. Linking twice is a 409."""
    ticket = access_ticket_by_id(actor, ticket_id)
    _staff_only(actor)
    other = check_link(actor, ticket, other_id)
    low, high = _pair(ticket.id, other.id)
    try:
        with aftercommit.savepoint():
            db.session.add(TicketLink(ticket_id=low, linked_id=high, created_by_id=actor.id))
    except IntegrityError as exc:
        message = f"Tickets #{ticket.id} and #{other.id} are already linked."
        raise Conflict(message, {FIELD: [message]}) from exc
    emit(TicketLinked(ticket_id=ticket.id, **by(actor), linked_id=other.id))
    emit(TicketLinked(ticket_id=other.id, **by(actor), linked_id=ticket.id))
    db.session.commit()
    return other


@rolls_back_on_error
def do_unlink(actor: User, ticket_id: int, other_id: int) -> None:
    """Remove the link between two tickets (404 when they are not linked)."""
    ticket = access_ticket_by_id(actor, ticket_id)
    _staff_only(actor)
    low, high = _pair(ticket.id, other_id)
    removed = db.session.execute(
        delete(TicketLink).where(TicketLink.ticket_id == low, TicketLink.linked_id == high)
    )
    if not removed.rowcount:  # type: ignore[attr-defined]
        raise NotFound(f"Ticket #{ticket.id} is not linked to #{other_id}.")
    emit(TicketUnlinked(ticket_id=ticket.id, **by(actor), linked_id=other_id))
    if db.session.get(Ticket, other_id) is not None:
        emit(TicketUnlinked(ticket_id=other_id, **by(actor), linked_id=ticket.id))
    db.session.commit()
