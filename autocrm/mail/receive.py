"""Receiving email: the one service every way mail arrives by calls (IMAP polling, the MTA
pipe ``flask mail-in``, a provider's webhook).

``do_receive_email(mailbox, raw, via=...)`` records the message (``InboundEmail``, its raw
bytes in file storage) and, in the same transaction, what it becomes:
- nothing, for mail that must never become a ticket: auto-replies, bulk and list mail,
  bounces (the bouncing address is marked so we stop writing to it), mail from our own
  mailboxes (status ``ignored``);
- a message on the ticket it answers (``threading``), from its requester or a follower;
- otherwise a new ticket in the mailbox's team, its sender the requester (the one customer
  path, ``intake.find_or_create_customer``) and the addresses in Cc its followers;
- a failed message kept for an admin (``failed``, with the reason) when it cannot be read, is
  too large, comes from a blocked sender, passes the per-sender hourly limit, or the change
  is refused. ``do_retry`` runs a failed one again; ``do_discard`` drops it.

The same message delivered twice (same Message-ID, or the same bytes) is recorded once: the
second delivery returns the first record and changes nothing.
"""

from __future__ import annotations

import hashlib
import io
import logging
from datetime import timedelta

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from autocrm import policies
from autocrm.columns import utcnow
from autocrm.engine.versions import engine_for
from autocrm.errors import DomainError, NotFound
from autocrm.extensions import db
from autocrm.files import services as files
from autocrm.files import storage as blobs
from autocrm.mail import parsing, threading
from autocrm.mail.models import InboundEmail, InboundStatus, Mailbox
from autocrm.people.intake import find_or_create_customer
from autocrm.people.models import User
from autocrm.tickets import conversation, followers
from autocrm.tickets import services as tickets
from autocrm.tickets.models import Ticket

log = logging.getLogger(__name__)

CHANNEL = "email"
NO_TEXT = "(This email had no text.)"


class _Duplicate(Exception):
    """The message was recorded already (a concurrent delivery won the unique key)."""


def _message_key(parsed: parsing.ParsedEmail | None, sha256: str) -> str:
    if parsed is not None and parsed.message_id:
        return parsed.message_id[:255]
    return f"sha256:{sha256}"


def _store_raw(raw: bytes) -> str:
    """The raw bytes in file storage (content-addressed: storing them again stores nothing)."""
    return blobs.current().put([raw]).sha256


def read_raw(inbound: InboundEmail) -> bytes:
    return b"".join(blobs.current().open(inbound.raw_sha256))


def read_parsed(inbound: InboundEmail) -> parsing.ParsedEmail | None:
    """The email read again from its raw bytes (its full text and files), None if it cannot
    be read."""
    try:
        return parsing.parse_email(read_raw(inbound).replace(b"\r\n", b"\n"))
    except parsing.UnparseableEmail:
        return None


def do_receive_email(
    mailbox: Mailbox, raw: bytes, *, via: str, retrying: bool = False
) -> InboundEmail:
    """Record one email and what it became; returns its record (the earlier one for a message
    received before). Raises only when the database or storage is unreachable: the caller
    leaves the message where it is (IMAP), or asks the MTA to try again later (pipe).
    ``retrying``: an admin asked for it again, past the per-sender limit."""
    # The same message comes with CRLF line ends from IMAP and LF ones from a pipe: read and
    # recognize it by one form, keep it as it came.
    canonical = raw.replace(b"\r\n", b"\n")
    sha256 = hashlib.sha256(canonical).hexdigest()
    raw_key = _store_raw(raw)
    parsed: parsing.ParsedEmail | None = None
    failure = ""
    if len(raw) > current_app.config["AUTOCRM_MAIL_MAX_BYTES"]:
        failure = f"Too large: {files.human_size(len(raw))}."
    else:
        try:
            parsed = parsing.parse_email(canonical)
        except parsing.UnparseableEmail as exc:
            failure = f"Cannot be read as an email: {exc}"
    inbound = _new_record(mailbox, parsed, raw, sha256, raw_key, via)
    earlier = _recorded(mailbox.id, inbound.message_key)
    if earlier is not None:
        return earlier
    if failure:
        return _keep_failed(inbound, failure)
    assert parsed is not None
    try:
        return _process(mailbox, inbound, parsed, retrying=retrying)
    except _Duplicate:
        db.session.rollback()
        return _recorded(mailbox.id, inbound.message_key) or inbound
    except blobs.StorageUnavailable:
        db.session.rollback()
        raise  # not the email's fault: the caller tries again later
    except DomainError as exc:
        db.session.rollback()
        record = _new_record(mailbox, parsed, raw, sha256, raw_key, via)
        return _keep_failed(record, _refusal(exc))


def _refusal(exc: DomainError) -> str:
    """What a refused change said, for the admin who reads the failed mail."""
    details = "; ".join(
        f"{field}: {' '.join(map(str, said))}" for field, said in exc.errors.items()
    )
    return f"{exc.message} ({details})" if details else exc.message


def _new_record(
    mailbox: Mailbox,
    parsed: parsing.ParsedEmail | None,
    raw: bytes,
    sha256: str,
    raw_key: str,
    via: str,
) -> InboundEmail:
    return InboundEmail(
        mailbox_id=mailbox.id,
        message_key=_message_key(parsed, sha256),
        message_id=parsed.message_id[:255] if parsed and parsed.message_id else None,
        sender=parsed.sender.email[:254] if parsed else "",
        subject=parsed.subject[:250] if parsed else "",
        via=via,
        raw_sha256=raw_key,
        raw_size=len(raw),
        status=InboundStatus.PROCESSED,
        reason="",
        received_at=utcnow(),
    )


def _recorded(mailbox_id: int, message_key: str) -> InboundEmail | None:
    return db.session.scalar(
        select(InboundEmail).where(
            InboundEmail.mailbox_id == mailbox_id, InboundEmail.message_key == message_key
        )
    )


def _add(inbound: InboundEmail) -> None:
    try:
        with db.session.begin_nested():
            db.session.add(inbound)
    except IntegrityError as exc:  # the same message, delivered at the same time
        raise _Duplicate from exc


def _keep_failed(inbound: InboundEmail, reason: str) -> InboundEmail:
    inbound.status = InboundStatus.FAILED
    inbound.reason = reason
    try:
        _add(inbound)
    except _Duplicate:
        db.session.rollback()
        return _recorded(inbound.mailbox_id, inbound.message_key) or inbound
    db.session.commit()
    log.warning("email %s kept as failed: %s", inbound.message_key, reason)
    return inbound


def _process(
    mailbox: Mailbox, inbound: InboundEmail, parsed: parsing.ParsedEmail, *, retrying: bool
) -> InboundEmail:
    """In one transaction: the record and the ticket change the email makes."""
    _add(inbound)
    if reason := _ignored_because(parsed):
        inbound.status, inbound.reason = InboundStatus.IGNORED, reason
    elif reason := _refused_because(parsed, retrying=retrying):
        inbound.status, inbound.reason = InboundStatus.FAILED, reason
    else:
        inbound.ticket_id = _ticket_change(mailbox, inbound, parsed)
    db.session.commit()
    return inbound


def _our_addresses() -> set[str]:
    return set(db.session.scalars(select(Mailbox.address)))


def _ignored_because(parsed: parsing.ParsedEmail) -> str:
    """Why this email must never become a ticket (loops, auto-replies, bounces), or ""."""
    if parsed.auto == "bounce":
        _mark_bounced(parsed.bounced)
        return "A bounce (delivery status notification): " + (
            ", ".join(parsed.bounced) or "no failed address named"
        )
    if parsed.auto:
        return f"Automatic mail ({parsed.auto}): never answered, never a ticket."
    if parsed.sender.email in _our_addresses():
        return "Sent by one of our own mailboxes: a mail loop."
    return ""


def _mark_bounced(addresses: list[str]) -> None:
    for user in db.session.scalars(select(User).where(User.email.in_(addresses))):
        user.email_bounced_at = user.email_bounced_at or utcnow()


def _refused_because(parsed: parsing.ParsedEmail, *, retrying: bool) -> str:
    """Why an admin must look at this email before it becomes a ticket change, or ""."""
    limit = current_app.config["AUTOCRM_MAIL_SENDER_HOURLY_LIMIT"]
    recent = db.session.scalar(
        select(func.count()).where(
            InboundEmail.sender == parsed.sender.email,
            InboundEmail.received_at >= utcnow() - timedelta(hours=1),
        )
    )
    if not retrying and recent is not None and recent > limit:
        return f"{parsed.sender.email} sent more than {limit} emails in the last hour."
    blocked = db.session.scalar(
        select(User.id).where(User.email == parsed.sender.email, User.active.is_(False))
    )
    if blocked is not None:
        return f"{parsed.sender.email} is blocked (the account is deactivated)."
    return ""


def _ticket_change(mailbox: Mailbox, inbound: InboundEmail, parsed: parsing.ParsedEmail) -> int:
    """The message this email adds to the ticket it answers, or the ticket it opens."""
    sender = find_or_create_customer(
        parsed.sender.email, parsed.sender.name, "email", equal_time=False
    )
    answered = _answered_ticket(parsed, sender)
    attachment_ids, notes = _store_attachments(sender, parsed)
    if answered is not None:
        conversation.add_message(
            sender,
            answered,
            _text(parsed.reply_text, notes),
            attachment_ids=attachment_ids,
            channel=CHANNEL,
            inbound_email_id=inbound.id,
        )
        return answered.id
    ticket = tickets.create_ticket(
        sender,
        sender,
        subject=parsing.strip_subject_prefixes(parsed.subject)[:200] or "(no subject)",
        description=_text(parsed.reply_text, notes),
        channel=CHANNEL,
        attachment_ids=attachment_ids,
        team_id=mailbox.team_id,
        mailbox_id=mailbox.id,
    )
    ours = _our_addresses()
    copied = [a for a in parsed.cc if a.email not in ours and a.email != sender.email]
    followers.add_followers(
        ticket,
        [find_or_create_customer(a.email, a.name, "email cc", equal_time=False) for a in copied],
        actor=sender,
    )
    return ticket.id


def _answered_ticket(parsed: parsing.ParsedEmail, sender: User) -> Ticket | None:
    """The open ticket this email answers, if its sender takes part in it (the requester or a
    follower); a closed one gets a new ticket instead."""
    references = [*parsed.in_reply_to, *reversed(parsed.references)]
    recipients = [a.email for a in [*parsed.to, *parsed.cc]]
    ticket_id = threading.ticket_id_for(references, recipients, parsed.subject)
    ticket = db.session.get(Ticket, ticket_id) if ticket_id else None
    if ticket is None:
        return None
    taking_part = ticket.requester_id == sender.id or sender.id in {
        user.id for user in followers.followers_of(ticket.id)
    }
    if not taking_part or engine_for(ticket).categories[ticket.status] == "closed":
        return None
    return ticket


def _store_attachments(sender: User, parsed: parsing.ParsedEmail) -> tuple[list[int], list[str]]:
    """The email's files stored as the sender's uploads, within the limits of any upload; the
    ones refused are named in the message (they stay in the original email)."""
    bounds = files.limits()
    kept: list[int] = []
    notes: list[str] = []
    total = 0
    for part in parsed.attachments:
        if not part.content:  # an empty part: nothing to keep
            continue
        upload = files.Upload(part.filename, io.BytesIO(part.content))
        if len(kept) >= bounds["max_files"]:
            notes.append(f"{part.filename}: more than {bounds['max_files']} files in one email")
            continue
        if total + len(part.content) > bounds["max_total_bytes"]:
            notes.append(f"{part.filename}: the files add up to more than one message takes")
            continue
        try:
            [stored] = files.store(sender, files.check_uploads([upload]))
        except DomainError as exc:
            notes.append(f"{part.filename}: {exc}")
            continue
        kept.append(stored.id)
        total += stored.size
    return kept, notes


def _text(text: str, notes: list[str]) -> str:
    body = text.strip() or NO_TEXT
    if notes:
        listed = "\n".join(f"- {note}" for note in notes)
        body += f"\n\nNot attached (they are in the original email):\n{listed}"
    limit = conversation.MAX_MESSAGE_LENGTH
    if len(body) > limit:
        cut = "\n\n[... the rest is in the original email]"
        body = body[: limit - len(cut)].rstrip() + cut
    return body


# -- failed mail, for admins ---------------------------------------------------------------------


def do_retry(inbound: InboundEmail) -> InboundEmail:
    """Run a failed email again (after an admin fixed the cause): its record is replaced by
    what it becomes now."""
    mailbox, raw, via = inbound.mailbox, read_raw(inbound), inbound.via
    db.session.delete(inbound)
    db.session.flush()
    return do_receive_email(mailbox, raw, via=via, retrying=True)


def do_discard(inbound: InboundEmail) -> None:
    inbound.status = InboundStatus.DISCARDED
    db.session.commit()


def first_email_of(ticket: Ticket) -> int | None:
    """The email a ticket was opened by."""
    return db.session.scalar(
        select(InboundEmail.id)
        .where(InboundEmail.ticket_id == ticket.id)
        .order_by(InboundEmail.id)
        .limit(1)
    )


def access_original(actor: User, inbound_id: int) -> InboundEmail:
    """An email as received, for staff who may see the ticket it went to (the full original
    of a message whose quoted history was trimmed)."""
    inbound = db.session.get(InboundEmail, inbound_id)
    if inbound is None or inbound.ticket_id is None or not policies.is_staff(actor):
        raise NotFound(f"Email {inbound_id} not found.")
    tickets.access_ticket_by_id(actor, inbound.ticket_id)
    return inbound
