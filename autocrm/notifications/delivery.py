"""Delivering queued emails: the handler of ``email.requested`` outbox events.

``notifications.emails`` writes an ``EmailMessage`` and an ``email.requested`` event in the
transaction that decided to send it (a customer's email: when its window ends, by the beat's
``emails.do_request_due_emails``); a worker handles the event after commit, here.

Guarantees:
- Sent at most once per ``sent_at``: the email row is locked while it is sent, and an email
  whose ``sent_at`` committed is never sent again, whichever event (or redelivery) asks.
  The one gap every SMTP client has remains: if the server accepted the email and the commit
  of ``sent_at`` then fails, the retry sends it again. Its Message-ID is the same on every
  attempt (derived from the row), so the copy is recognizable as a duplicate.
- A failed send is retried: the handler records the attempt and the error, then raises, so the
  event stays unprocessed and the outbox sweep (``outbox.relay_pending``, after
  ``outbox.REPUBLISH_AFTER``) publishes it again. The attempt is recorded in its own short
  transaction after the handler's is rolled back (``RetryLater.after_rollback``): the
  handler's transaction is lost anyway when it raises, and on SQLite a second connection
  could not write while it holds the write lock.
- The email is sent while its event's transaction is open (that lock is what stops two
  deliveries of one event from both sending). On SQLite that transaction holds the database's
  write lock, so a slow SMTP server delays other writers by up to ``AUTOCRM_SMTP_TIMEOUT``.
- Retrying stops when the server refuses the email for good (``mail.PermanentFailure``) or
  after ``MAX_ATTEMPTS`` tries; the event is then processed and the email keeps ``last_error``.
"""

from __future__ import annotations

import logging

from flask import current_app
from sqlalchemy import select, update

from autocrm.columns import utcnow
from autocrm.events.handlers import RetryLater
from autocrm.events.kinds import EmailRequested
from autocrm.extensions import db
from autocrm.files import links
from autocrm.mail import threading
from autocrm.mail.mailer import Mailer, PermanentFailure
from autocrm.notifications.models import EmailMessage
from autocrm.people.models import User

log = logging.getLogger(__name__)

EVENT_KIND = "email.requested"
# With the sweep re-publishing every 30-45 s, about a quarter of an hour of SMTP outage.
MAX_ATTEMPTS = 25
MAX_ERROR_LENGTH = 2000


class DeliveryFailed(RetryLater):
    """Sending failed in a way worth retrying; the event stays unprocessed."""


def message_id_for(email: EmailMessage) -> str:
    return threading.email_message_id(email)


def current_mailer() -> Mailer:
    return current_app.extensions["mailer"]


def deliver_email(event: EmailRequested) -> None:
    """Send the email an ``email.requested`` event names, unless it went out already."""
    # Locked and re-read even if this session holds it: what counts is the committed sent_at.
    email = db.session.get(
        EmailMessage, event.email_id, with_for_update=True, populate_existing=True
    )
    if email is None:
        log.warning("event %s: email %r vanished", event.id, event.email_id)
        return
    if email.sent_at is not None:
        return
    if email.attempts >= MAX_ATTEMPTS:
        log.warning("email %s: given up after %d attempts", email.id, email.attempts)
        return
    recipient = db.session.scalar(select(User).where(User.email == email.to_address))
    if recipient is not None and recipient.email_bounced_at is not None:
        _give_up(email, PermanentFailure(f"the address bounced on {recipient.email_bounced_at}"))
        return
    to_customer = recipient is None or not recipient.role.is_staff
    sender, headers = threading.outgoing_headers(email, to_customer=to_customer)
    attached, linked = threading.outgoing_files(email)
    try:
        current_mailer().send(
            email.to_address,
            threading.thread_subject(email) if sender else email.subject,
            links.with_file_links(email.body, linked, recipient),
            message_id=message_id_for(email),
            sender=sender,
            headers=headers,
            attachments=threading.file_contents(attached),
        )
    except PermanentFailure as exc:
        _give_up(email, exc)
        return
    except Exception as exc:  # transport errors vary (OSError, SMTPException...): all retried
        if email.attempts + 1 >= MAX_ATTEMPTS:
            _give_up(email, exc)
            return
        failed_id, error = email.id, exc
        raise DeliveryFailed(
            f"email {failed_id}: {exc}",
            after_rollback=lambda: _record_failed_attempt(failed_id, error),
        ) from exc
    email.attempts += 1
    email.sent_at = utcnow()


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:MAX_ERROR_LENGTH]


def _give_up(email: EmailMessage, exc: BaseException) -> None:
    """Record the failure with the event's transaction: the event is done, the email unsent."""
    email.attempts += 1
    email.last_error = _describe(exc)
    log.error("email %s to %s not sent, giving up: %s", email.id, email.to_address, exc)


def _record_failed_attempt(email_id: int, exc: BaseException) -> None:
    db.session.execute(
        update(EmailMessage)
        .where(EmailMessage.id == email_id, EmailMessage.sent_at.is_(None))
        .values(attempts=EmailMessage.attempts + 1, last_error=_describe(exc))
    )
    db.session.commit()
    log.warning("email %s not sent, will retry: %s", email_id, exc)
