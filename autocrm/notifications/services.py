"""Notifying people: in-app notification records and emails, once per person per change.

``notify`` is the one way to tell a user something. It writes a ``Notification`` and, unless
the user switched email off for that kind, the email that tells of it (``emails``: at once for
staff, after the ticket's window for customers), whose sending is itself an outbox event
(``EmailRequested``): the email goes out only if the decision committed.

Two keys keep it to one:
- ``dedupe_key`` (the causing event, the recipient and the kind): a redelivered event notifies
  nobody twice;
- ``change_key`` (the change, the ticket, the recipient): everything one change tells one
  person about one ticket is one notification. Assignment and rules react to an event in its
  change (``causes.handling``), so "new ticket" and "assigned to you", or a reply and the
  status it caused, arrive together: the later part merges into the notification (the more
  important kind names it, each kind's text is kept) and updates its email while unsent,
  never queueing a second one.
"""

from __future__ import annotations

from flask import current_app
from sqlalchemy import select

from autocrm.events import causes
from autocrm.extensions import db
from autocrm.notifications import emails, texts
from autocrm.notifications.models import NOTIFICATION_KINDS, Notification, NotificationPreference
from autocrm.people.models import User
from autocrm.realtime import publish as realtime
from autocrm.security import issue_feedback_token
from autocrm.tickets.models import Ticket

# Kinds whose newer news replaces the older within one change (the state it ended in).
SUPERSEDING = frozenset({"status_changed"})


def wants_email(user: User, kind: str) -> bool:
    preference = db.session.get(NotificationPreference, (user.id, kind))
    return preference is None or preference.email


def notify(
    user: User,
    kind: str,
    *,
    title: str,
    body: str = "",
    ticket: Ticket | None = None,
    dedupe_key: str,
    quote: str = "",
    message_id: int | None = None,
) -> Notification | None:
    """Tell ``user`` (``quote``: the reply ``body`` follows, said once however often the
    change or the window repeats it; ``message_id``: the note it is about, where its link
    opens the ticket). Returns the new notification, or None when this
    ``dedupe_key`` was notified before, the user is deactivated, or it merged into what the
    same change told them about the same ticket."""
    if kind not in NOTIFICATION_KINDS:
        raise ValueError(f"unknown notification kind {kind!r}")
    key = f"{dedupe_key}:{user.id}:{kind}"
    if not user.active or db.session.scalar(
        select(Notification.id).where(Notification.dedupe_key == key)
    ):
        return None
    part = texts.part(title, body, quote)
    change_key = f"{causes.change_id()}:{ticket.id}:{user.id}" if ticket is not None else None
    if change_key is not None:
        earlier = db.session.scalar(
            select(Notification).where(Notification.change_key == change_key).with_for_update()
        )
        if earlier is not None:
            _merge(earlier, user, kind, part, message_id)
            return None
    note = Notification(
        user_id=user.id,
        kind=kind,
        title=part["title"],
        body=texts.render({kind: part})[2],
        ticket_id=ticket.id if ticket else None,
        message_id=message_id,
        dedupe_key=key,
        change_key=change_key,
        parts={kind: part},
    )
    db.session.add(note)
    db.session.flush()
    if wants_email(user, kind):
        emails.email_notification(user, note, ticket)
    realtime.publish_notification(note)
    return note


def _merge(
    note: Notification, user: User, kind: str, part: dict[str, str], message_id: int | None
) -> None:
    """Add ``part`` to what ``note`` says; nothing when it says it already (a redelivery)."""
    merged = texts.merged(note.parts.get(kind), part, superseding=kind in SUPERSEDING)
    if merged == note.parts.get(kind):
        return
    note.message_id = note.message_id or message_id
    note.parts = {**note.parts, kind: merged}
    note.kind, note.title, note.body = texts.render(note.parts)
    db.session.flush()
    if note.email_id is None and wants_email(user, kind):
        ticket = db.session.get(Ticket, note.ticket_id) if note.ticket_id else None
        emails.email_notification(user, note, ticket)
    else:
        emails.notification_changed(user, note)


def feedback_link(ticket: Ticket) -> str:
    token = issue_feedback_token(ticket.id, ticket.requester_id)
    return f"{current_app.config['AUTOCRM_BASE_URL'].rstrip('/')}/feedback/{token}"


def request_feedback(ticket: Ticket, *, dedupe_key: str) -> Notification | None:
    """Ask the requester to rate the help, with a link that works without a password."""
    body = (
        f'Your ticket #{ticket.id} "{ticket.subject}" was solved. How did we do?\n\n'
        f"Rate it here (no login needed): {feedback_link(ticket)}\n"
    )
    return notify(
        ticket.requester,
        "feedback_request",
        ticket=ticket,
        dedupe_key=dedupe_key,
        title=f"How did we do? [#{ticket.id}] {ticket.subject}",
        body=body,
    )
