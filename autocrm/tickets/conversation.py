"""The conversation on a ticket (public replies and internal notes) and the requester's feedback."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.attributes import set_committed_value

from autocrm import policies
from autocrm.columns import utcnow
from autocrm.engine.versions import engine_for
from autocrm.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound
from autocrm.events.emit import by, emit
from autocrm.events.kinds import FeedbackReceived, MessageCreated
from autocrm.extensions import db
from autocrm.files import services as files
from autocrm.kb import articles
from autocrm.people.models import User
from autocrm.requestguard import UNSTORABLE_TEXT, is_storable
from autocrm.security import read_feedback_token
from autocrm.sla import clocks as sla
from autocrm.tickets import mentions
from autocrm.tickets.models import Feedback, Message, Ticket
from autocrm.tickets.services import _one_change, access_ticket_by_id, fire_transition
from autocrm.tickets.state import business_seconds_since_created
from autocrm.transaction import rolls_back_on_error

MAX_MESSAGES_PAGE = 200
MAX_MESSAGE_LENGTH = 50_000


def check_message(body: str) -> None:
    """What anyone may send as a message, whichever door it comes in by (API, socket, pages,
    email): InvalidInput naming ``body`` otherwise."""
    if not body.strip():
        raise InvalidInput("Please write a message first.", {"body": ["Must not be blank."]})
    if len(body) > MAX_MESSAGE_LENGTH:
        raise InvalidInput(
            f"Please keep a message to at most {MAX_MESSAGE_LENGTH} characters.",
            {"body": [f"Longer than {MAX_MESSAGE_LENGTH} characters."]},
        )
    if not is_storable(body):
        raise InvalidInput("Invalid text in body.", {"body": [UNSTORABLE_TEXT]})


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


def list_mentionable(actor: User, ticket_id: int, q: str = "") -> list[User]:
    """Colleagues ``actor`` may mention in a note on the ticket (``mentions.mentionable``):
    staff only, since only staff write notes."""
    ticket = access_ticket_by_id(actor, ticket_id)
    if not policies.can_see_internal_notes(actor):
        raise Forbidden("Only staff mention colleagues (in internal notes).")
    return mentions.mentionable(ticket, q, exclude=actor.id)


@rolls_back_on_error
def do_add_message(
    actor: User,
    ticket_id: int,
    body: str,
    *,
    internal: bool = False,
    attachment_ids: Iterable[int] = (),
    channel: str = "web",
    transition: str | None = None,
) -> Message:
    """A reply or (staff) an internal note; ``attachment_ids``: the actor's own unattached
    uploads, which become its files (an internal note's are staff-only, like the note).

    ``transition``: a workflow transition fired with it ("reply and set Pending"), in the same
    transaction: if the workflow refuses it (409, 422), the message is not kept either, so the
    caller can offer the text again."""
    ticket = access_ticket_by_id(actor, ticket_id)
    # A closed ticket takes no message: "reply and reopen" reopens first, then replies.
    reopen_first = (
        transition is not None and engine_for(ticket).categories[ticket.status] == "closed"
    )
    with _one_change():
        if transition is not None and reopen_first:
            _fire_with_message(actor, ticket, transition)
        message = add_message(
            actor, ticket, body, internal=internal, attachment_ids=attachment_ids, channel=channel
        )
        if transition is not None and not reopen_first:
            _fire_with_message(actor, ticket, transition)
    return message


def _fire_with_message(actor: User, ticket: Ticket, transition: str) -> None:
    """``fire_transition``, its refusal naming the message's ``transition`` field."""
    try:
        fire_transition(actor, ticket, transition)
    except DomainError as exc:
        exc.errors = {"transition": exc.errors.get("name") or [exc.message]}
        raise


def add_message(
    actor: User,
    ticket: Ticket,
    body: str,
    *,
    internal: bool = False,
    attachment_ids: Iterable[int] = (),
    channel: str,
    inbound_email_id: int | None = None,
) -> Message:
    """In the caller's transaction: ``actor``'s message on ``ticket`` (which they may see)."""
    if internal and not policies.can_see_internal_notes(actor):
        raise InvalidInput(
            "Customers cannot write internal notes.",
            {"internal": ["Only staff may write internal notes."]},
        )
    if internal and policies.is_staff(actor):
        body = mentions.with_addresses_resolved(body)
    check_message(body)
    mentions.check_mentions(actor, ticket, body, internal=internal)
    if engine_for(ticket).categories[ticket.status] == "closed":
        raise Conflict(
            "This ticket is closed; reopen it to reply.",
            {"ticket": ["Closed tickets take no new messages."]},
        )
    if not internal and policies.is_staff(actor):
        articles.check_public_links(body)
    now = utcnow()
    message = Message(
        ticket_id=ticket.id,
        author_id=actor.id,
        body=body,
        internal=internal,
        channel=channel,
        inbound_email_id=inbound_email_id,
        created_at=now,
    )
    db.session.add(message)
    db.session.flush()
    if not files.attach(actor, attachment_ids, ticket_id=ticket.id, message_id=message.id):
        set_committed_value(message, "attachments", [])  # known: its render need not ask
    touch: dict[str, Any] = {"updated_at": now}
    if not internal:
        sla.on_public_reply(ticket, policies.is_staff(actor), now)
    if not internal and policies.is_staff(actor) and ticket.first_responded_at is None:
        touch["first_responded_at"] = now
        touch["first_response_business_seconds"] = business_seconds_since_created(ticket, now)
    # A plain UPDATE, not the versioned ORM flush: replies never conflict with field edits.
    db.session.execute(
        update(Ticket).where(Ticket.id == ticket.id).values(**touch),
        execution_options={"synchronize_session": False},
    )
    emit(
        MessageCreated(
            ticket_id=ticket.id,
            **by(actor),
            message_id=message.id,
            internal=internal,
            author_role=actor.role.value,
        )
    )
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
    emit(FeedbackReceived(ticket_id=ticket.id, **by(actor), rating=rating))
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
