"""Which ticket an email belongs to, and the headers that keep our replies in one thread.

A reply is matched, in this order, by
1. its ``In-Reply-To``/``References`` against the Message-IDs we sent (``autocrm.email.<id>.
   <digest>@...``, the ``EmailMessage`` row they name) and the ones we received;
2. a signed reply address (``support+t<ticket>-<signature>@...``), for mailboxes whose mail
   server delivers sub-addresses (``Mailbox.plus_addressing``);
3. a ``[#<ticket>]`` token in its subject.
The caller then accepts the match only from the ticket's requester or a follower.

Going out, an email about an email-channel ticket comes from its mailbox, answers the latest
message of the thread (``In-Reply-To``) and lists the thread (``References``), so Gmail,
Outlook and Thunderbird show one conversation; it carries the files of the public replies
since the previous email to that address (``outgoing_files``), within ``MAX_ATTACHED_BYTES``;
any other email about a ticket links them instead (signed, expiring: ``autocrm.files.links``).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Sequence
from email.utils import formataddr

from flask import current_app
from sqlalchemy import select

from autocrm.extensions import db
from autocrm.files import services as files
from autocrm.files.models import Attachment
from autocrm.mail.mailer import message_id_header
from autocrm.mail.models import InboundEmail, Mailbox
from autocrm.notifications.models import EmailMessage
from autocrm.people.models import User
from autocrm.tickets.models import Message, Ticket

MAX_ID = 2**31 - 1
OUR_MESSAGE_ID = re.compile(r"^autocrm\.email\.(\d{1,10})\.([0-9a-f]{16})@", re.IGNORECASE)
REPLY_TOKEN = re.compile(r"^[^+@]+\+t(\d{1,10})-([0-9a-f]{16})@", re.IGNORECASE)
SUBJECT_TOKEN = re.compile(r"\[#(\d{1,10})\]")
# Files attached to one outgoing email at most (bigger ones are one link away: the ticket).
MAX_ATTACHED_BYTES = 20 * 2**20
# References kept on a reply: the thread's first message and the latest ones (RFC 5322
# allows trimming the middle; very long headers are refused by some servers).
MAX_REFERENCES = 20


def email_message_id(email: EmailMessage) -> str:
    """The local part of an email's Message-ID: the same on every attempt at one email,
    different for every email anywhere (the dedupe key names the causing event)."""
    digest = hashlib.sha256(email.dedupe_key.encode()).hexdigest()[:16]
    return f"autocrm.email.{email.id}.{digest}"


def _signature(ticket_id: int) -> str:
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, f"reply-address:{ticket_id}".encode(), hashlib.sha256).hexdigest()[:16]


def reply_address(mailbox: Mailbox, ticket_id: int) -> str:
    """Where a reply about ``ticket_id`` goes: the mailbox, with a signed sub-address when its
    mail server delivers them."""
    if not mailbox.plus_addressing:
        return mailbox.address
    local, _, domain = mailbox.address.partition("@")
    return f"{local}+t{ticket_id}-{_signature(ticket_id)}@{domain}"


# Merges chain only through tickets merged before their target was (a merged ticket is never
# a target), so a few hops reach the end; the bound guards against a cycle all the same.
MAX_MERGE_HOPS = 5


def _in_range(raw: str) -> int | None:
    number = int(raw)
    return number if 0 < number <= MAX_ID else None


def _ticket_of_message_id(ref: str) -> int | None:
    if ours := OUR_MESSAGE_ID.match(ref):
        email_id = _in_range(ours.group(1))
        email = db.session.get(EmailMessage, email_id) if email_id else None
        if email is not None and hmac.compare_digest(
            email_message_id(email), f"autocrm.email.{ours.group(1)}.{ours.group(2).lower()}"
        ):
            return email.ticket_id
        return None
    return db.session.scalar(
        select(InboundEmail.ticket_id)
        .where(InboundEmail.message_id == ref[:255], InboundEmail.ticket_id.is_not(None))
        .order_by(InboundEmail.id.desc())
        .limit(1)
    )


def _ticket_of_reply_address(addresses: Iterable[str]) -> int | None:
    for address in addresses:
        match = REPLY_TOKEN.match(address)
        ticket_id = _in_range(match.group(1)) if match else None
        if match and ticket_id and hmac.compare_digest(_signature(ticket_id), match[2].lower()):
            return ticket_id
    return None


def ticket_id_for(references: Sequence[str], recipients: Iterable[str], subject: str) -> int | None:
    """The ticket a received email answers, by the three clues in order (``references``:
    In-Reply-To first, then References newest first); None when none names one. A ticket
    merged into another (``tickets.merging``) stands for the one it was merged into."""
    ticket_id = _clue(references, recipients, subject)
    for _ in range(MAX_MERGE_HOPS):
        merged_into = (
            db.session.scalar(select(Ticket.merged_into_id).where(Ticket.id == ticket_id))
            if ticket_id
            else None
        )
        if merged_into is None:
            break
        ticket_id = merged_into
    return ticket_id


def _clue(references: Sequence[str], recipients: Iterable[str], subject: str) -> int | None:
    for ref in references:
        if ticket_id := _ticket_of_message_id(ref):
            return ticket_id
    if ticket_id := _ticket_of_reply_address(recipients):
        return ticket_id
    if match := SUBJECT_TOKEN.search(subject):
        return _in_range(match.group(1))
    return None


# -- going out ----------------------------------------------------------------------------------


def _thread_ids(mailbox: Mailbox, ticket: Ticket, to_address: str, before: int) -> list[str]:
    """The Message-IDs of the thread as ``to_address`` has seen it, oldest first: what we
    received on the ticket and what we sent them before email ``before``."""
    received = db.session.execute(
        select(InboundEmail.received_at, InboundEmail.message_id).where(
            InboundEmail.ticket_id == ticket.id, InboundEmail.message_id.is_not(None)
        )
    ).all()
    sent = db.session.scalars(
        select(EmailMessage).where(
            EmailMessage.ticket_id == ticket.id,
            EmailMessage.to_address == to_address,
            EmailMessage.sent_at.is_not(None),
            EmailMessage.id < before,
        )
    ).all()
    timeline = [(row.received_at, f"<{row.message_id}>") for row in received]
    timeline += [
        (email.sent_at, message_id_header(email_message_id(email), mailbox.address))
        for email in sent
    ]
    return [ref for _, ref in sorted(timeline, key=lambda item: item[0])]


def _mailbox_of(email: EmailMessage) -> Mailbox | None:
    if email.ticket_id is None:
        return None
    ticket = db.session.get(Ticket, email.ticket_id)
    if ticket is None or ticket.mailbox_id is None:
        return None
    mailbox = db.session.get(Mailbox, ticket.mailbox_id)
    return mailbox if mailbox is not None and mailbox.active else None


def outgoing_headers(
    email: EmailMessage, *, to_customer: bool
) -> tuple[str | None, dict[str, str]]:
    """The sender and threading headers of an email about an email-channel ticket (None and
    nothing for any other email): from its mailbox, replying into the customer's thread."""
    mailbox = _mailbox_of(email)
    if mailbox is None or not to_customer:
        return None, {}
    ticket = db.session.get_one(Ticket, email.ticket_id)
    headers = {"Reply-To": reply_address(mailbox, ticket.id)}
    thread = _thread_ids(mailbox, ticket, email.to_address, email.id)
    if thread:
        kept = thread if len(thread) <= MAX_REFERENCES else [thread[0], *thread[-19:]]
        headers["In-Reply-To"] = thread[-1]
        headers["References"] = " ".join(kept)
    return formataddr(
        (mailbox.team.name if mailbox.team else mailbox.name, mailbox.address)
    ), headers


def thread_subject(email: EmailMessage) -> str:
    """An email-channel ticket's emails keep one subject, "Re: [#id] subject", so mail clients
    that also thread by subject (Gmail) keep them together; other emails keep theirs."""
    mailbox = _mailbox_of(email)
    if mailbox is None:
        return email.subject
    ticket = db.session.get_one(Ticket, email.ticket_id)
    return f"Re: [#{ticket.id}] {ticket.subject}"[:250]


def outgoing_files(email: EmailMessage) -> tuple[list[Attachment], list[Attachment]]:
    """The files of the public replies written since the previous email to this address (not
    the recipient's own), as (attached, linked): an email-channel ticket's email carries the
    servable ones within ``MAX_ATTACHED_BYTES``; the rest (every file, for other tickets) go
    as signed links (``autocrm.files.links``)."""
    since = db.session.scalar(
        select(EmailMessage.sent_at)
        .where(
            EmailMessage.ticket_id == email.ticket_id,
            EmailMessage.to_address == email.to_address,
            EmailMessage.sent_at.is_not(None),
            EmailMessage.id != email.id,
        )
        .order_by(EmailMessage.sent_at.desc())
        .limit(1)
    )
    stmt = (
        select(Attachment)
        .join(Message, Message.id == Attachment.message_id)
        .join(User, User.id == Message.author_id)
        .where(
            Message.ticket_id == email.ticket_id,
            Message.internal.is_(False),
            User.email != email.to_address,
        )
        .order_by(Attachment.id)
    )
    if since is not None:
        stmt = stmt.where(Message.created_at > since)
    candidates = list(db.session.scalars(stmt)) if email.ticket_id is not None else []
    attached: list[Attachment] = []
    linked: list[Attachment] = []
    total = 0
    may_attach = _mailbox_of(email) is not None
    for attachment in candidates:
        fits = total + attachment.size <= MAX_ATTACHED_BYTES
        if may_attach and fits and attachment.scan_status.servable:
            total += attachment.size
            attached.append(attachment)
        else:
            linked.append(attachment)
    return attached, linked


def file_contents(attachments: Iterable[Attachment]) -> list[tuple[str, str, bytes]]:
    """(name, type, bytes) of each file, as the mailer attaches them."""
    return [(a.filename, a.content_type, b"".join(files.read(a))) for a in attachments]
