"""Notifying people: in-app notification records and emails, idempotent per event.

``notify`` is the one way to tell a user something. It writes a ``Notification`` and, unless
the user switched email off for that kind, an ``EmailMessage`` whose sending is itself an outbox
event (``email.requested``): the email goes out only if the decision committed, and the
``dedupe_key`` (the causing event and the recipient) keeps a redelivered event from notifying
or mailing twice.
"""

from __future__ import annotations

from typing import Any

from flask import current_app
from sqlalchemy import select

from autocrm import outbox, realtime
from autocrm.extensions import db
from autocrm.models import (
    NOTIFICATION_KINDS,
    EmailMessage,
    Message,
    Notification,
    NotificationPreference,
    OutboxEvent,
    Ticket,
    User,
)
from autocrm.security import issue_feedback_token


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
) -> Notification | None:
    """Tell ``user``; returns None when this ``dedupe_key`` was notified before or the user
    is deactivated."""
    if kind not in NOTIFICATION_KINDS:
        raise ValueError(f"unknown notification kind {kind!r}")
    key = f"{dedupe_key}:{user.id}:{kind}"
    if not user.active or db.session.scalar(
        select(Notification.id).where(Notification.dedupe_key == key)
    ):
        return None
    note = Notification(
        user_id=user.id,
        kind=kind,
        title=title[:200],
        body=body,
        ticket_id=ticket.id if ticket else None,
        dedupe_key=key,
    )
    db.session.add(note)
    if wants_email(user, kind):
        queue_email(user.email, title, body, dedupe_key=key)
    db.session.flush()
    realtime.publish_notification(note)
    outbox.record_event(
        "notification.created",
        {"notification_id": note.id, "user_id": user.id, "kind": kind},
        ticket_id=ticket.id if ticket else None,
    )
    return note


def queue_email(to_address: str, subject: str, body: str, *, dedupe_key: str) -> EmailMessage:
    email = EmailMessage(
        to_address=to_address, subject=subject[:250], body=body, dedupe_key=dedupe_key
    )
    db.session.add(email)
    db.session.flush()
    outbox.record_event("email.requested", {"email_id": email.id})
    return email


def _team_members(ticket: Ticket) -> list[User]:
    if ticket.team is None:
        return []
    return [m.user for m in ticket.team.memberships]


def _recipients(ticket: Ticket, kind: str, payload: dict[str, Any]) -> tuple[str, list[User]]:
    """Who hears about a ticket event, and as which notification kind."""
    if kind == "ticket.created":
        return "ticket_created", [ticket.assignee] if ticket.assignee else _team_members(ticket)
    if kind == "message.created" and not payload.get("internal"):
        if payload.get("author_role") == "customer":
            staff = [ticket.assignee] if ticket.assignee else _team_members(ticket)
            return "customer_reply", staff
        return "public_reply", [ticket.requester]
    if kind == "ticket.transitioned":
        return "status_changed", [ticket.requester]
    if kind == "ticket.assigned" and ticket.assignee is not None:
        return "assigned", [ticket.assignee]
    return "", []


def _describe(ticket: Ticket, kind: str, payload: dict[str, Any]) -> tuple[str, str]:
    ref = f"[#{ticket.id}] {ticket.subject}"
    if kind == "ticket_created":
        return f"New ticket {ref}", ticket.description
    if kind in ("public_reply", "customer_reply"):
        message = db.session.get(Message, payload.get("message_id"))
        return f"New reply on {ref}", message.body if message else ""
    if kind == "status_changed":
        return f"{ref} is now {ticket.status.replace('_', ' ')}", ""
    return f"{ref} was assigned to you", ticket.description


def route_event(ticket: Ticket, event: OutboxEvent) -> None:
    """Notify the people a ticket event concerns (never the person who caused it)."""
    kind, recipients = _recipients(ticket, event.kind, event.payload)
    actor_id = event.payload.get("actor_id") or event.payload.get("author_id")
    for user in recipients:
        if user is None or user.id == actor_id:
            continue
        title, body = _describe(ticket, kind, event.payload)
        notify(user, kind, ticket=ticket, title=title, body=body, dedupe_key=event.id)


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
