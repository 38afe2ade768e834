"""Merging a duplicate ticket into another: one conversation instead of two.

``do_merge`` moves everything people wrote and were told on the duplicate (the source) to the
ticket it duplicates (the target): its messages with their files, its description (as a
message by its requester, with the description's files), its followers (and its requester, as
a follower, when the target's is someone else) and the emails received on it, so that an email
reply to the old thread lands on the target (``mail.threading`` also follows
``merged_into_id`` for the other clues: our reply address, our Message-IDs, the subject). The
source keeps a public note "Merged into #N", is closed and records ``merged_into_id``; both
trails get a ``TicketMerged`` event, from which both requesters are told
(``notifications.routing``).

Closing the source: a single workflow transition from its state straight to a closed state,
if the merging agent may fire one; otherwise the source is put in the workflow's closed state
directly, recorded as a ``TicketTransitioned`` named ``merge``. A path through other states is
deliberately not walked: in the default workflow it leads through "solved", which asks the
requester to rate the help on a duplicate and starts the auto-close timer.
"""

from __future__ import annotations

from sqlalchemy import delete, update

from autocrm import policies
from autocrm.columns import utcnow
from autocrm.engine.versions import engine_for
from autocrm.errors import Conflict, Forbidden, InvalidInput
from autocrm.events.emit import by, emit
from autocrm.events.kinds import TicketMerged, TicketTransitioned
from autocrm.extensions import db
from autocrm.files.models import Attachment
from autocrm.mail.models import InboundEmail
from autocrm.people.models import User
from autocrm.realtime import access as realtime_access
from autocrm.tickets.conversation import add_message
from autocrm.tickets.followers import add_followers, followers_of
from autocrm.tickets.models import Message, Ticket, TicketFollower
from autocrm.tickets.services import _one_change, access_ticket_by_id, fire_transition
from autocrm.tickets.state import enter_state
from autocrm.transaction import rolls_back_on_error

MERGE_TRANSITION = "merge"  # the trail's name for a close the workflow offers no transition for


# -- checks ------------------------------------------------------------------------------------


def check_merge(actor: User, source: Ticket, target_id: int) -> Ticket:
    """The ticket ``source`` may be merged into (``target_id``), which the actor sees:
    InvalidInput/Conflict naming ``into`` (or ``ticket`` for the source) otherwise."""
    if source.merged_into_id is not None:
        message = f"Ticket #{source.id} was already merged into #{source.merged_into_id}."
        raise Conflict(message, {"ticket": [message]})
    if target_id == source.id:
        message = "A ticket cannot be merged into itself."
        raise InvalidInput(message, {"into": [message]})
    target = db.session.get(Ticket, target_id)
    if target is None or not policies.can_view_ticket(actor, target):
        message = f"No ticket #{target_id}."
        raise InvalidInput(message, {"into": [message]})
    if target.merged_into_id is not None:
        message = f"Ticket #{target.id} was itself merged into #{target.merged_into_id}."
        raise Conflict(message, {"into": [message]})
    if engine_for(target).categories.get(target.status) == "closed":
        message = f"Ticket #{target.id} is closed; reopen it first."
        raise Conflict(message, {"into": [message]})
    return target


# -- the moves, in the caller's transaction ----------------------------------------------------


def _move_conversation(source: Ticket, target: Ticket) -> None:
    """The source's messages (their files with them), its description as a message by its
    requester carrying the description's files, and the emails received on it."""
    db.session.execute(
        update(Message).where(Message.ticket_id == source.id).values(ticket_id=target.id)
    )
    description = Message(
        ticket_id=target.id,
        author_id=source.requester_id,
        body=f"Merged from #{source.id} ({source.subject}):\n\n{source.description}",
        channel=source.channel,
    )
    db.session.add(description)
    db.session.flush()
    db.session.execute(
        update(Attachment)
        .where(Attachment.ticket_id == source.id, Attachment.message_id.is_(None))
        .values(ticket_id=target.id, message_id=description.id)
    )
    db.session.execute(
        update(Attachment).where(Attachment.ticket_id == source.id).values(ticket_id=target.id)
    )
    db.session.execute(
        update(InboundEmail).where(InboundEmail.ticket_id == source.id).values(ticket_id=target.id)
    )


def _move_followers(actor: User, source: Ticket, target: Ticket) -> None:
    """The source's followers follow the target instead (staff who cannot see it are left
    out), and so does the source's requester when the target's is someone else."""
    moving = followers_of(source.id)
    keep = [u for u in moving if not policies.is_staff(u) or policies.can_view_ticket(u, target)]
    add_followers(target, [*keep, source.requester], actor=actor)
    db.session.execute(delete(TicketFollower).where(TicketFollower.ticket_id == source.id))
    for user in moving:
        realtime_access.drop_viewer(source, user)


def _close(actor: User, ticket: Ticket) -> None:
    """Close the source: by a transition straight to a closed state if the actor may fire
    one, else directly into the workflow's closed state (see the module's docstring)."""
    engine = engine_for(ticket)
    if engine.categories.get(ticket.status) == "closed":
        return
    for spec in engine.allowed(ticket, actor.role.value, actor):
        if engine.categories.get(spec.dest) == "closed":
            fire_transition(actor, ticket, spec.name)
            return
    closed = [name for name, category in engine.categories.items() if category == "closed"]
    if not closed:  # a workflow without a closed state: merged_into_id alone says it
        return
    from_state, from_category = ticket.status, engine.categories[ticket.status]
    enter_state(
        ticket, from_category=from_category, to_state=closed[0], to_category="closed", now=utcnow()
    )
    emit(
        TicketTransitioned(
            ticket_id=ticket.id,
            **by(actor),
            transition=MERGE_TRANSITION,
            from_state=from_state,
            to_state=closed[0],
            to_category="closed",
        )
    )


# -- the service -------------------------------------------------------------------------------


@rolls_back_on_error
def do_merge(actor: User, source_id: int, target_id: int) -> Ticket:
    """Merge ticket ``source_id`` into ``target_id`` (staff who see both); returns the target."""
    source = access_ticket_by_id(actor, source_id)
    if not policies.is_staff(actor) or not policies.may_change(actor):
        raise Forbidden("Only support staff merge tickets.")
    target = check_merge(actor, source, target_id)
    with _one_change():
        _move_conversation(source, target)
        _move_followers(actor, source, target)
        if engine_for(source).categories.get(source.status) != "closed":
            add_message(actor, source, f"Merged into #{target.id}.", channel="web")
        _close(actor, source)
        now = utcnow()
        source.merged_into_id = target.id
        source.updated_at = target.updated_at = now
        for ticket in (source, target):
            emit(
                TicketMerged(
                    ticket_id=ticket.id, **by(actor), source_id=source.id, target_id=target.id
                )
            )
    return target
