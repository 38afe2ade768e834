"""Who hears about a ticket event, as which notification, and what it says.

``notify`` is a handler (``autocrm.events.handlers.HANDLERS``) for the ticket events people
are told about; the telling itself is ``services.notify``, which makes what one change tells
one person a single notification. What is said is in the words people see: a state's label
from the ticket's workflow version, never its internal name, and always a body saying what
changed (with the latest public reply when a status change follows one).

Followers (``autocrm.tickets.followers``) hear what their side hears: a customer follower
what the requester does (public replies, status changes), a staff follower every reply and
status change, as long as they may still see the ticket. Of an internal note only the
colleagues it @mentions hear (``tickets.mentions``), once each, linked to the note itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from autocrm import policies
from autocrm.engine.versions import engine_for
from autocrm.events.kinds import (
    MessageCreated,
    TicketAssigned,
    TicketChange,
    TicketCreated,
    TicketMerged,
    TicketTransitioned,
)
from autocrm.extensions import db
from autocrm.notifications import services
from autocrm.people.models import User
from autocrm.tickets import mentions
from autocrm.tickets.followers import followers_of
from autocrm.tickets.models import Message, Ticket

QUOTE_LIMIT = 2000


@dataclass(frozen=True)
class Notice:
    """One thing to tell some people."""

    kind: str
    recipients: list[User]
    title: str
    body: str
    quote: str = ""
    message_id: int | None = None  # the note it is about: its link opens the ticket there


def notify(event: TicketChange) -> None:
    """A handler: notify the people a ticket event concerns (never the person who caused it)."""
    ticket = db.session.get_one(Ticket, event.ticket_id)
    for notice in notices(ticket, event):
        for user in dict.fromkeys(notice.recipients):
            if user is None or user.id == event.actor_id:
                continue
            services.notify(
                user,
                notice.kind,
                ticket=ticket,
                title=notice.title,
                body=notice.body,
                quote=notice.quote,
                dedupe_key=event.id,
                message_id=notice.message_id,
            )


def notices(ticket: Ticket, event: TicketChange) -> list[Notice]:
    ref = f"[#{ticket.id}] {ticket.subject}"
    if isinstance(event, TicketCreated):
        return _created(ticket, ref)
    if isinstance(event, TicketAssigned) and ticket.assignee is not None:
        return [
            Notice("assigned", [ticket.assignee], f"{ref} was assigned to you", _opened(ticket))
        ]
    if isinstance(event, MessageCreated) and not event.internal:
        return _reply(ticket, ref, event)
    if isinstance(event, MessageCreated):
        return _mentioned(ticket, ref, event)
    if isinstance(event, TicketTransitioned):
        return [_status(ticket, ref, event)]
    if isinstance(event, TicketMerged):
        return _merged(ticket, ref, event)
    return []


def _merged(ticket: Ticket, ref: str, event: TicketMerged) -> list[Notice]:
    """The source's requester hears where their request went on; the target's, when someone
    else, that another request joined theirs. As a status change: it is the kind of news a
    requester chose to hear of."""
    source = db.session.get_one(Ticket, event.source_id)
    if ticket.id == event.source_id:
        title = f"{ref} was merged into #{event.target_id}"
        body = f"Your request continues on ticket #{event.target_id}; you follow it now."
        return [Notice("status_changed", [source.requester], title, body)]
    if ticket.requester_id == source.requester_id:
        return []
    title = f"Ticket #{source.id} was merged into {ref}"
    body = f'The request "{source.subject}" by {source.requester.name} now continues here.'
    return [Notice("status_changed", [ticket.requester], title, body)]


def _team_members(ticket: Ticket) -> list[User]:
    if ticket.team is None:
        return []
    return [m.user for m in ticket.team.memberships]


def _followers(ticket: Ticket) -> tuple[list[User], list[User]]:
    """The ticket's customer followers, and its staff followers who may still see it."""
    customers: list[User] = []
    staff: list[User] = []
    for user in followers_of(ticket.id):
        if not policies.is_staff(user):
            customers.append(user)
        elif policies.can_view_ticket(user, ticket):
            staff.append(user)
    return customers, staff


def _opened(ticket: Ticket) -> str:
    return f"{ticket.requester.name} wrote:\n\n{ticket.description}".rstrip()


def _created(ticket: Ticket, ref: str) -> list[Notice]:
    """Its assignee (set at creation, or by assignment in the same change) hears once that a
    new ticket is theirs; with nobody assigned, the team hears of it."""
    if ticket.assignee is not None:
        title = f"New ticket {ref}, assigned to you"
        return [Notice("assigned", [ticket.assignee], title, _opened(ticket))]
    return [Notice("ticket_created", _team_members(ticket), f"New ticket {ref}", _opened(ticket))]


def _reply(ticket: Ticket, ref: str, event: MessageCreated) -> list[Notice]:
    message = db.session.get_one(Message, event.message_id)
    text = _replied(message)
    title = f"New reply on {ref}"
    customers, staff_followers = _followers(ticket)
    if event.author_role == "customer":
        staff = [ticket.assignee] if ticket.assignee else _team_members(ticket)
        # A follower's reply reaches the requester, and the requester's the followers.
        return [
            Notice("customer_reply", staff + staff_followers, title, text),
            Notice("public_reply", [ticket.requester, *customers], title, text),
        ]
    return [Notice("public_reply", [ticket.requester, *customers, *staff_followers], title, text)]


def _mentioned(ticket: Ticket, ref: str, event: MessageCreated) -> list[Notice]:
    """The colleagues an internal note mentions, told what it says."""
    message = db.session.get_one(Message, event.message_id)
    people = mentions.recipients(ticket, message)
    if not people:
        return []
    title = f"{message.author.name} mentioned you on {ref}"
    said = _quoted(mentions.plain(message.body))
    text = f"{message.author.name} wrote in an internal note:\n\n{said}"
    return [Notice("mentioned", people, title, text, message_id=message.id)]


def _status(ticket: Ticket, ref: str, event: TicketTransitioned) -> Notice:
    labels = engine_for(ticket).state_labels
    to_label = labels.get(event.to_state) or event.to_state.replace("_", " ").capitalize()
    from_label = labels.get(event.from_state) or event.from_state.replace("_", " ").capitalize()
    text = f"Your ticket is now {to_label} (it was {from_label})."
    latest = _latest_public_staff_reply(ticket)
    quote = _replied(latest) if latest is not None else ""
    customers, staff = _followers(ticket)
    recipients = [ticket.requester, *customers, *staff]
    return Notice("status_changed", recipients, f"{ref} is now {to_label}", text, quote)


def _latest_public_staff_reply(ticket: Ticket) -> Message | None:
    return db.session.scalar(
        select(Message)
        .where(
            Message.ticket_id == ticket.id,
            Message.internal.is_(False),
            Message.author_id != ticket.requester_id,
        )
        .order_by(Message.id.desc())
        .limit(1)
    )


def _replied(message: Message) -> str:
    """A reply as notifications tell it (a reply told and a status quoting it read the same,
    so it is said once)."""
    return f"{message.author.name} replied:\n\n{_quoted(message.body)}"


def _quoted(body: str) -> str:
    body = body.strip()
    return body[:QUOTE_LIMIT].rstrip() + " [...]" if len(body) > QUOTE_LIMIT else body
