"""Uploading, attaching, finding, reading and deleting attachments.

- ``do_upload``: each file's type is read from its first bytes and refused when denied (422
  naming the file) before anything is stored; its bytes stream to storage in chunks, a file
  over ``AUTOCRM_MAX_UPLOAD_BYTES`` is refused (413 naming the file) and nothing of it kept.
- ``attach``: inside the transaction of the ticket or message being created, the actor's own
  unattached uploads become its files (``AUTOCRM_MAX_ATTACHMENTS`` of them, at most
  ``AUTOCRM_MAX_ATTACHMENTS_BYTES`` together). One conditional UPDATE claims them, so an upload
  sent with two messages at once ends up on one of them.
- ``access_attachment_by_id``: the attachment if the actor may see what it is attached to
  (``policies.can_view_attachment``); anything else is "not found".
- ``do_remove_unsent_uploads``: beat removes uploads never sent within a day.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import IO, Any

from flask import current_app
from sqlalchemy import func, select, update

from autocrm import aftercommit, policies
from autocrm.audit import services as audit
from autocrm.columns import utcnow
from autocrm.errors import DomainError, Forbidden, InvalidInput, NotFound
from autocrm.extensions import db
from autocrm.files import scanning, types
from autocrm.files import storage as blobs
from autocrm.files.models import MAX_FILENAME, Attachment
from autocrm.kb.models import Article
from autocrm.mail.models import InboundEmail
from autocrm.people.models import User
from autocrm.tickets.models import Message, Ticket
from autocrm.transaction import rolls_back_on_error

log = logging.getLogger(__name__)


class TooLarge(DomainError):
    status_code = 413


@dataclass(frozen=True)
class Upload:
    """A file as it arrived: the name the client gave and a readable binary stream."""

    filename: str
    stream: IO[bytes]


def limits() -> dict[str, int]:
    config = current_app.config
    return {
        "max_file_bytes": config["AUTOCRM_MAX_UPLOAD_BYTES"],
        "max_files": config["AUTOCRM_MAX_ATTACHMENTS"],
        "max_total_bytes": config["AUTOCRM_MAX_ATTACHMENTS_BYTES"],
    }


def human_size(size: int) -> str:
    if size < 1024:
        return f"{size} bytes"
    if size < 2**20:
        return f"{size / 1024:.0f} KB"
    return f"{size / 2**20:.1f} MB".replace(".0 MB", " MB")


_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff<>:\"/\\|?*]")


def clean_filename(raw: str) -> str:
    """The name to keep and show: no folders, control characters or characters file systems
    refuse, at most ``MAX_FILENAME`` characters (the ending kept)."""
    name = unicodedata.normalize("NFC", raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE_NAME.sub("_", name).strip(" .")
    if not name:
        return "file"
    if len(name) > MAX_FILENAME:
        stem, dot, ending = name.rpartition(".")
        if dot and 0 < len(ending) <= 16:
            return stem[: MAX_FILENAME - len(ending) - 1] + "." + ending
        return name[:MAX_FILENAME]
    return name


# -- uploading -----------------------------------------------------------------------------------


def _head(stream: IO[bytes]) -> bytes:
    head = b""
    while len(head) < types.HEAD_BYTES:
        chunk = stream.read(types.HEAD_BYTES - len(head))
        if not chunk:
            break
        head += chunk
    return head


def _known_size(stream: IO[bytes]) -> int | None:
    """The stream's size when it can tell without reading (a spooled upload can)."""
    try:
        if not stream.seekable():
            return None
        here = stream.tell()
        size = stream.seek(0, 2)
        stream.seek(here)
    except (OSError, AttributeError, ValueError):
        return None
    return size


def _too_large(name: str, limit: int) -> TooLarge:
    return TooLarge(
        f"{name} is too large: files may be at most {human_size(limit)}.",
        {"files": [f"{name}: larger than {human_size(limit)}."]},
        limit_bytes=limit,
    )


def _limited(head: bytes, stream: IO[bytes], name: str, limit: int) -> Iterator[bytes]:
    """The file's bytes in chunks, raising ``TooLarge`` as soon as they pass ``limit``."""
    size = len(head)
    if size > limit:
        raise _too_large(name, limit)
    yield head
    while chunk := stream.read(blobs.CHUNK_BYTES):
        size += len(chunk)
        if size > limit:
            raise _too_large(name, limit)
        yield chunk


@dataclass
class CheckedUpload:
    name: str
    content_type: str
    head: bytes
    stream: IO[bytes]


def check_uploads(uploads: Sequence[Upload]) -> list[CheckedUpload]:
    """Every file's name and type, before any is stored: InvalidInput naming each refused file,
    TooLarge for one whose size is known to be over the limit."""
    bounds = limits()
    if not uploads:
        raise InvalidInput("Choose a file to upload.", {"files": ["No file was sent."]})
    if len(uploads) > bounds["max_files"]:
        raise InvalidInput(
            f"Send at most {bounds['max_files']} files at once.",
            {"files": [f"{len(uploads)} files; at most {bounds['max_files']}."]},
        )
    denied = types.deny_list(current_app.config["AUTOCRM_UPLOAD_DENY_TYPES"])
    checked, refusals = [], []
    for upload in uploads:
        name = clean_filename(upload.filename)
        size = _known_size(upload.stream)
        if size is not None and size > bounds["max_file_bytes"]:
            raise _too_large(name, bounds["max_file_bytes"])
        head = _head(upload.stream)
        content_type = types.detect(head)
        reason = types.refusal(name, content_type, denied)
        if reason:
            refusals.append(reason)
        checked.append(CheckedUpload(name, content_type, head, upload.stream))
    if refusals:
        raise InvalidInput(" ".join(refusals), {"files": refusals})
    return checked


@rolls_back_on_error
def do_upload(actor: User, uploads: Sequence[Upload]) -> list[Attachment]:
    """Store the files and record them as the actor's unattached uploads."""
    if not policies.may_change(actor):
        raise Forbidden("This token may only read.")
    rows = store(actor, check_uploads(uploads))
    db.session.commit()
    return rows


def store(actor: User, checked: Sequence[CheckedUpload]) -> list[Attachment]:
    """In the caller's transaction: checked files stored, as ``actor``'s unattached uploads."""
    storage = blobs.current()
    limit = limits()["max_file_bytes"]
    rows = []
    for item in checked:
        stored = storage.put(_limited(item.head, item.stream, item.name, limit))
        rows.append(
            Attachment(
                uploader_id=actor.id,
                filename=item.name,
                content_type=item.content_type,
                size=stored.size,
                sha256=stored.sha256,
            )
        )
    db.session.add_all(rows)
    scanning.queue_scans(rows)
    db.session.flush()
    return rows


# -- attaching -----------------------------------------------------------------------------------


def check_attachment_ids(ids: Iterable[int]) -> list[int]:
    unique = list(dict.fromkeys(ids))
    most = limits()["max_files"]
    if len(unique) > most:
        raise InvalidInput(
            f"Attach at most {most} files to one message.",
            {"attachment_ids": [f"{len(unique)} files; at most {most}."]},
        )
    return unique


def attach(
    actor: User,
    ids: Iterable[int],
    *,
    ticket_id: int | None = None,
    message_id: int | None = None,
    article_id: int | None = None,
) -> list[Attachment]:
    """In the caller's transaction: the actor's unattached uploads ``ids`` become the files of
    the ticket's description (``message_id`` None), of that message, or of an article."""
    unique = check_attachment_ids(ids)
    if not unique:
        return []
    mine = (
        Attachment.id.in_(unique),
        Attachment.uploader_id == actor.id,
        Attachment.ticket_id.is_(None),
        Attachment.article_id.is_(None),
    )
    total = db.session.scalar(select(func.coalesce(func.sum(Attachment.size), 0)).where(*mine))
    most = limits()["max_total_bytes"]
    if total and total > most:
        raise InvalidInput(
            f"Files on one message may add up to at most {human_size(most)}.",
            {"attachment_ids": [f"{human_size(int(total))} together; at most {human_size(most)}."]},
        )
    claimed = db.session.execute(
        update(Attachment)
        .where(*mine)
        .values(ticket_id=ticket_id, message_id=message_id, article_id=article_id)
        .returning(Attachment.id),
        execution_options={"synchronize_session": False},
    )
    found = {row[0] for row in claimed}
    if missing := [i for i in unique if i not in found]:
        raise InvalidInput(
            "Some files cannot be attached: they are not your uploads, or are attached already.",
            {"attachment_ids": [f"No upload {i} of yours is waiting to be sent." for i in missing]},
        )
    # Read anew: the UPDATE above left uploads this session already holds (an email's files,
    # stored and attached in one transaction) with their old ticket and message, and a change
    # committed with commit_keeping_loaded does not expire them.
    found_now = select(Attachment).where(Attachment.id.in_(unique))
    attached = list(db.session.scalars(found_now.execution_options(populate_existing=True)))
    scanning.note_quarantined(attached)
    return attached


# -- reading -------------------------------------------------------------------------------------


def access_attachment_by_id(actor: User | None, attachment_id: int) -> Attachment:
    """``actor`` None: an anonymous reader (a public article's files only)."""
    attachment = db.session.get(Attachment, attachment_id)
    if attachment is None or not _visible(actor, attachment):
        raise NotFound(f"Attachment {attachment_id} not found.")
    return attachment


def _visible(actor: User | None, attachment: Attachment) -> bool:
    ticket = db.session.get(Ticket, attachment.ticket_id) if attachment.ticket_id else None
    message = db.session.get(Message, attachment.message_id) if attachment.message_id else None
    article = db.session.get(Article, attachment.article_id) if attachment.article_id else None
    return policies.can_view_attachment(
        actor,
        attachment,
        ticket=ticket,
        internal=bool(message and message.internal),
        article=article,
    )


def read(attachment: Attachment, *, thumbnail: bool = False) -> Iterator[bytes]:
    """The file's bytes (its thumbnail's, when asked and there is one), in chunks."""
    key = attachment.thumbnail_sha256 if thumbnail and attachment.thumbnail_sha256 else None
    try:
        return blobs.current().open(key or attachment.sha256)
    except KeyError:
        raise blobs.StorageUnavailable(
            "This file is missing from storage.", {"files": [f"{attachment.filename}: missing."]}
        ) from None


# -- storage used ------------------------------------------------------------------------------


def storage_usage(actor: User, top: int = 20) -> dict[str, Any]:
    """For admins: files and bytes in total (as attached, and as stored once per content),
    uploads not sent yet, and the tickets using the most."""
    if not policies.can_view_storage_usage(actor):
        raise Forbidden("Only admins see storage use.")
    files_, attached_bytes = db.session.execute(
        select(func.count(Attachment.id), func.coalesce(func.sum(Attachment.size), 0))
    ).one()
    distinct = select(Attachment.sha256, func.max(Attachment.size).label("size")).group_by(
        Attachment.sha256
    )
    stored = db.session.scalar(select(func.coalesce(func.sum(distinct.subquery().c.size), 0)))
    unsent = db.session.scalar(
        select(func.count(Attachment.id)).where(
            Attachment.ticket_id.is_(None), Attachment.article_id.is_(None)
        )
    )
    per_ticket = db.session.execute(
        select(Attachment.ticket_id, func.count(Attachment.id), func.sum(Attachment.size))
        .where(Attachment.ticket_id.is_not(None))
        .group_by(Attachment.ticket_id)
        .order_by(func.sum(Attachment.size).desc(), Attachment.ticket_id)
        .limit(top)
    ).all()
    return {
        "files": int(files_),
        "bytes": int(attached_bytes),
        "stored_bytes": int(stored or 0),
        "unsent_files": int(unsent or 0),
        "tickets": [
            {"ticket_id": ticket_id, "files": int(count), "bytes": int(size)}
            for ticket_id, count, size in per_ticket
        ],
    }


# -- deleting ------------------------------------------------------------------------------------


@rolls_back_on_error
def do_delete(actor: User, attachment_id: int) -> None:
    """Delete an attachment (audited when it was attached); its bytes go once no row uses them."""
    attachment = access_attachment_by_id(actor, attachment_id)
    if not policies.can_delete_attachment(actor, attachment):
        raise Forbidden(
            "Only admins may delete a file that has been sent.",
            {"attachment": ["Attached already."]},
        )
    if attachment.attached or attachment.uploader_id != actor.id:
        audit.record(
            actor,
            "attachment.deleted",
            attachment,
            {
                "ticket_id": [attachment.ticket_id, None],
                "message_id": [attachment.message_id, None],
            },
        )
    keys = {key for key in (attachment.sha256, attachment.thumbnail_sha256) if key}
    db.session.delete(attachment)
    db.session.flush()
    aftercommit.add("files.delete_blobs", sorted(keys - _keys_in_use(keys)))
    db.session.commit()


UNSENT_LIFETIME = timedelta(days=1)


@rolls_back_on_error
def do_remove_unsent_uploads(older_than: timedelta = UNSENT_LIFETIME, batch_size: int = 500) -> int:
    """Beat: remove uploads nobody attached within ``older_than``, and their bytes when no other
    attachment uses them. Returns how many were removed; safe to run again or concurrently."""
    removed = 0
    cutoff = utcnow() - older_than
    while True:
        stale = db.session.scalars(
            select(Attachment)
            .where(
                Attachment.created_at < cutoff,
                Attachment.ticket_id.is_(None),
                Attachment.article_id.is_(None),
            )
            .order_by(Attachment.id)
            .limit(batch_size)
        ).all()
        if not stale:
            return removed
        keys = {a.sha256 for a in stale} | {a.thumbnail_sha256 for a in stale if a.thumbnail_sha256}
        for attachment in stale:
            db.session.delete(attachment)
        db.session.flush()
        aftercommit.add("files.delete_blobs", sorted(keys - _keys_in_use(keys)))
        db.session.commit()
        removed += len(stale)


def _keys_in_use(keys: set[str]) -> set[str]:
    if not keys:
        return set()
    used = set(db.session.scalars(select(Attachment.sha256).where(Attachment.sha256.in_(keys))))
    thumbnails = select(Attachment.thumbnail_sha256).where(Attachment.thumbnail_sha256.in_(keys))
    # Received emails keep their raw bytes in the same store (``autocrm.mail.models``).
    emails = select(InboundEmail.raw_sha256).where(InboundEmail.raw_sha256.in_(keys))
    return used | set(db.session.scalars(emails)) | {k for k in db.session.scalars(thumbnails) if k}


def _delete_blobs(batches: list[list[str]]) -> None:
    """After commit: a failure leaves an unused blob behind, never a row without its bytes."""
    storage = blobs.current()
    for keys in batches:
        for key in keys:
            try:
                storage.delete(key)
            except blobs.StorageUnavailable:
                log.warning("could not delete blob %s; it stays unused", key)


def install() -> None:
    aftercommit.register("files.delete_blobs", _delete_blobs)
