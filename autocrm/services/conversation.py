"""The conversation on a ticket (public replies and internal notes) and the requester's feedback."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from autocrm import outbox, policies, realtime
from autocrm.errors import Conflict, Forbidden, InvalidInput, NotFound
from autocrm.extensions import db
from autocrm.models import Feedback, Message, Ticket, User, utcnow
from autocrm.security import read_feedback_token
from autocrm.services import kb
from autocrm.services.tickets import (
    access_ticket_by_id,
    business_seconds_since_created,
    record,
)
from autocrm.services.transaction import rolls_back_on_error
from autocrm.services.workflows import engine_for

MAX_MESSAGES_PAGE = 200


def list_messages(
    actor: User, ticket_id: int, *, after: int | None = None, limit: int = 100
) -> tuple[list[Message], bool]:
    """Messages in order, those after message id ``after``; and whether more follow."""
    ticket = access_ticket_by_id(actor, ticket_id)
    stmt = select(Message).where(Message.ticket_id == ticket.id)
    if not policies.can_see_internal_notes(actor):
        stmt = stmt.where(Message.internal.is_(False))
    if after is not None:
        stmt = stmt.where(Message.id > after)
    limit = max(1, min(limit, MAX_MESSAGES_PAGE))
    rows = list(db.session.scalars(stmt.order_by(Message.id).limit(limit + 1)))
    return rows[:limit], len(rows) > limit


@rolls_back_on_error
def do_add_message(actor: User, ticket_id: int, body: str, *, internal: bool = False) -> Message:
    ticket = access_ticket_by_id(actor, ticket_id)
    if internal and not policies.can_see_internal_notes(actor):
        raise InvalidInput(
            "Customers cannot write internal notes.",
            {"internal": ["Only staff may write internal notes."]},
        )
    if engine_for(ticket).categories[ticket.status] == "closed":
        raise Conflict(
            "This ticket is closed; reopen it to reply.",
            {"ticket": ["Closed tickets take no new messages."]},
        )
    if not internal and policies.is_staff(actor):
        kb.check_public_links(body)
    message = Message(ticket_id=ticket.id, author_id=actor.id, body=body, internal=internal)
    db.session.add(message)
    db.session.flush()
    now = utcnow()
    touch = {"updated_at": now}
    if not internal and policies.is_staff(actor) and ticket.first_responded_at is None:
        touch["first_responded_at"] = now
        touch["first_response_business_seconds"] = business_seconds_since_created(ticket, now)
    # A plain UPDATE, not the versioned ORM flush: replies never conflict with field edits.
    db.session.execute(
        update(Ticket).where(Ticket.id == ticket.id).values(**touch),
        execution_options={"synchronize_session": False},
    )
    realtime.publish_message(message, ticket)
    outbox.record_event(
        "message.created",
        {
            "ticket_id": ticket.id,
            "message_id": message.id,
            "author_id": actor.id,
            "internal": internal,
            "author_role": actor.role.value,
        },
        ticket_id=ticket.id,
    )
    db.session.commit()
    return message


@rolls_back_on_error
def do_give_feedback(actor: User, ticket_id: int, rating: int, comment: str = "") -> Feedback:
    ticket = access_ticket_by_id(actor, ticket_id)
    if not policies.can_give_feedback(actor, ticket):
        raise Forbidden("Only the requester may rate a ticket.")
    if engine_for(ticket).categories[ticket.status] not in {"solved", "closed"}:
        raise Conflict(
            "Feedback is possible once the ticket is solved.",
            {"ticket": [f"Ticket is {ticket.status}."]},
        )
    if db.session.scalar(select(Feedback.id).where(Feedback.ticket_id == ticket.id)):
        raise Conflict("This ticket has been rated already.", {"ticket": ["Already rated."]})
    feedback = Feedback(ticket_id=ticket.id, author_id=actor.id, rating=rating, comment=comment)
    try:
        with db.session.begin_nested():
            db.session.add(feedback)
    except IntegrityError as exc:  # a concurrent rating won the unique constraint
        raise Conflict(
            "This ticket has been rated already.", {"ticket": ["Already rated."]}
        ) from exc
    record(ticket, actor, "feedback.created", rating=rating)
    db.session.commit()
    return feedback


def feedback_for(actor: User, ticket_id: int) -> Feedback | None:
    """The rating given on a ticket the actor may see, if any."""
    ticket = access_ticket_by_id(actor, ticket_id)
    return db.session.scalar(select(Feedback).where(Feedback.ticket_id == ticket.id))


def access_feedback_link(token: str) -> tuple[User, Ticket]:
    """The requester and ticket a link names; NotFound for a forged or expired link, or an
    account or ticket that is gone or deactivated."""
    claims = read_feedback_token(token)
    if claims is None:
        raise NotFound("This feedback link is invalid or has expired.")
    ticket_id, requester_id = claims
    requester = db.session.get(User, requester_id)
    if requester is None or not requester.active:
        raise NotFound("This feedback link is invalid or has expired.")
    ticket = access_ticket_by_id(requester, ticket_id)
    if ticket.requester_id != requester.id:
        raise NotFound("This feedback link is invalid or has expired.")
    return requester, ticket
