"""Polling IMAP mailboxes: beat asks, a worker fetches.

``do_request_polls`` (beat, every few seconds) claims the active IMAP mailboxes whose last poll
is older than ``AUTOCRM_MAIL_POLL_INTERVAL`` (the due time lives in the database: a lost task
costs one interval, never a mailbox) and asks a worker to poll each. ``poll_mailbox`` fetches
a batch of messages and hands each to ``receive.do_receive_email``; a message is moved to the
processed folder (or deleted) only after what it became has committed, so a crash in between
leaves it on the server, and the next poll's delivery is recognized as a duplicate.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from flask import current_app
from sqlalchemy import or_, select

from autocrm.columns import utcnow
from autocrm.errors import DomainError
from autocrm.extensions import db
from autocrm.mail import imap, receive
from autocrm.mail.mailboxes import imap_settings
from autocrm.mail.models import Mailbox
from autocrm.transaction import rolls_back_on_error

log = logging.getLogger(__name__)

BATCH = 50
MAX_ERROR_LENGTH = 2000


@rolls_back_on_error
def do_request_polls() -> list[int]:
    """The IMAP mailboxes due for a poll, marked as polled now (so the next tick does not ask
    again while this poll runs)."""
    now = utcnow()
    due_before = now - timedelta(seconds=current_app.config["AUTOCRM_MAIL_POLL_INTERVAL"])
    mailboxes = db.session.scalars(
        select(Mailbox)
        .where(
            Mailbox.active,
            Mailbox.imap_host.is_not(None),
            or_(Mailbox.last_polled_at.is_(None), Mailbox.last_polled_at <= due_before),
        )
        .with_for_update(skip_locked=True)
    ).all()
    for mailbox in mailboxes:
        mailbox.last_polled_at = now
    db.session.commit()
    return [m.id for m in mailboxes]


def poll_mailbox(mailbox_id: int, limit: int = BATCH) -> int:
    """Receive up to ``limit`` messages waiting in the mailbox's folder; how many."""
    mailbox = db.session.get(Mailbox, mailbox_id)
    if mailbox is None or not mailbox.active or not mailbox.polls_imap:
        return 0
    received = 0
    try:
        settings = imap_settings(mailbox, current_app.config.get("AUTOCRM_MAIL_CA_FILE"))
        with imap.session(settings) as server:
            for uid, raw in server.fetch_new(limit):
                receive.do_receive_email(mailbox, raw, via="imap")
                server.mark_processed(uid)
                received += 1
    except (imap.ImapError, DomainError) as exc:
        db.session.rollback()
        _record_poll(mailbox_id, str(exc)[:MAX_ERROR_LENGTH])
        log.warning("mailbox %s: polling failed: %s", mailbox_id, exc)
        return received
    _record_poll(mailbox_id, None)
    return received


def _record_poll(mailbox_id: int, error: str | None) -> None:
    mailbox = db.session.get(Mailbox, mailbox_id)
    if mailbox is not None:
        mailbox.last_poll_error = error
        db.session.commit()
