"""Which email tells a person of a notification, what it says, and when it is requested.

- Staff get one email per notification, requested at once (``email.requested``).
- A customer's emails about one ticket wait for the ticket's window
  (``AUTOCRM_CUSTOMER_EMAIL_WINDOW`` seconds from the first change): changes made meanwhile
  merge into the waiting email as a digest, and ``do_request_due_emails`` (the beat) requests
  it once the window ends. A change after that starts a new email.
- A notification that grows by a merge updates its email while the email is unsent; once it
  is sent nothing more is queued for it: one email per notification at most.

Every email about a ticket ends with a link to it: the portal for customers, the agent
workspace for staff.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import select

from autocrm.columns import utcnow
from autocrm.events.emit import emit
from autocrm.events.kinds import EmailRequested
from autocrm.extensions import db
from autocrm.notifications import texts
from autocrm.notifications.models import EmailMessage, Notification
from autocrm.people.models import User
from autocrm.tickets.models import Ticket
from autocrm.transaction import rolls_back_on_error

BATCH = 200


def ticket_link(user: User, ticket_id: int, message_id: int | None = None) -> str:
    """Where ``user`` opens the ticket: the agent workspace for staff, the portal otherwise;
    at the message ``message_id`` when the news is about one note (a mention)."""
    base = current_app.config["AUTOCRM_BASE_URL"].rstrip("/")
    area = "agent" if user.role.is_staff else "portal"
    anchor = f"#message-{message_id}" if message_id is not None else ""
    return f"{base}/{area}/tickets/{ticket_id}{anchor}"


def queue_email(
    to_address: str, subject: str, body: str, *, dedupe_key: str, ticket_id: int | None = None
) -> EmailMessage:
    """An email requested now: a worker sends it after commit."""
    email = EmailMessage(
        to_address=to_address,
        subject=subject[:250],
        body=body,
        dedupe_key=dedupe_key,
        ticket_id=ticket_id,
    )
    db.session.add(email)
    db.session.flush()
    emit(EmailRequested(email_id=email.id))
    return email


def email_notification(user: User, note: Notification, ticket: Ticket | None) -> None:
    """Queue the email that tells ``user`` of ``note`` (which has none yet)."""
    window = current_app.config.get("AUTOCRM_CUSTOMER_EMAIL_WINDOW", 0)
    if ticket is None or user.role.is_staff or window <= 0:
        email = queue_email(
            user.email,
            note.title,
            _with_link(note.body, user, note.ticket_id, note.message_id),
            dedupe_key=note.dedupe_key,
            ticket_id=note.ticket_id,
        )
    else:
        email = _wait_for_window(user, note, ticket, utcnow() + timedelta(seconds=window))
    note.email_id = email.id


def notification_changed(user: User, note: Notification) -> None:
    """``note`` says more after a merge: its email says so too, unless it went out already."""
    if note.email_id is None:
        return
    email = db.session.get(
        EmailMessage, note.email_id, with_for_update=True, populate_existing=True
    )
    if email is None or email.sent_at is not None:
        return
    if email.digest is None:
        email.subject = note.title[:250]
        email.body = _with_link(note.body, user, note.ticket_id, note.message_id)
        return
    email.digest = [
        _entry(note) if entry["notification_id"] == note.id else entry for entry in email.digest
    ]
    _render_digest(email, user)


def _with_link(body: str, user: User, ticket_id: int | None, message_id: int | None = None) -> str:
    if ticket_id is None:
        return body
    link = f"View the ticket: {ticket_link(user, ticket_id, message_id)}"
    return f"{body.rstrip()}\n\n{link}\n" if body.strip() else f"{link}\n"


def _entry(note: Notification) -> dict[str, Any]:
    said = texts.blocks(note.parts) if note.parts else [note.body]
    return {"notification_id": note.id, "title": note.title, "blocks": said}


def _wait_for_window(
    user: User, note: Notification, ticket: Ticket, send_after: datetime
) -> EmailMessage:
    """The customer's waiting email about ``ticket``, with ``note`` added (a new one if none
    waits: the first change of a window)."""
    waiting = db.session.scalar(
        select(EmailMessage)
        .where(
            EmailMessage.ticket_id == ticket.id,
            EmailMessage.to_address == user.email,
            EmailMessage.send_after.is_not(None),
        )
        .with_for_update()
    )
    if waiting is None:
        waiting = EmailMessage(
            to_address=user.email,
            dedupe_key=note.dedupe_key,
            ticket_id=ticket.id,
            send_after=send_after,
            digest=[],
            subject="",
            body="",
        )
        db.session.add(waiting)
    waiting.digest = [*(waiting.digest or []), _entry(note)]
    _render_digest(waiting, user)
    db.session.flush()
    return waiting


def _render_digest(email: EmailMessage, user: User) -> None:
    """Subject and body from the digest's entries: one entry reads like any notification;
    several list each change in order under the ticket's name."""
    entries = email.digest or []
    if len(entries) == 1:
        [entry] = entries
        email.subject = entry["title"][:250]
        email.body = _with_link("\n\n".join(entry["blocks"]), user, email.ticket_id)
        return
    ticket = db.session.get(Ticket, email.ticket_id) if email.ticket_id else None
    subject = ticket.subject if ticket else ""
    sections = [f'There are {len(entries)} updates on your ticket #{email.ticket_id} "{subject}".']
    told: list[str] = []
    for entry in entries:
        said = texts.said_once(entry["blocks"], told)  # a reply quoted again by a later change
        told += said
        sections.append("\n\n".join([f"== {entry['title']} ==", *said]))
    email.subject = f"Updates on [#{email.ticket_id}] {subject}"[:250]
    email.body = _with_link("\n\n".join(sections), user, email.ticket_id)


@rolls_back_on_error
def do_request_due_emails(now: datetime | None = None, limit: int = BATCH) -> int:
    """Beat: request the waiting customer emails whose window has ended, oldest first (a
    batch; the next tick takes the rest). Claimed with SKIP LOCKED on PostgreSQL, so a merge
    holding one is not waited for and two sweeps never request one email twice; a requested
    email waits no more (``send_after`` cleared), so a later change starts a new one."""
    moment = now or utcnow()
    due = db.session.scalars(
        select(EmailMessage)
        .where(EmailMessage.send_after.is_not(None), EmailMessage.send_after <= moment)
        .order_by(EmailMessage.send_after)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    for email in due:
        email.send_after = None
        emit(EmailRequested(email_id=email.id))
    db.session.commit()
    return len(due)
