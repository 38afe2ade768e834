"""Signed, expiring links to a ticket's files, for the emails that tell people of a reply.

A link names one file and the one person it was emailed to, signed with the secret key
(``itsdangerous``, its own salt). Opening it serves the file without logging in, as long as
- the signature holds (a forged or altered link: 404),
- the person is still active and may still see the file, by the same policy as every other
  download (``files.access_attachment_by_id``; someone removed as a follower, or a file moved to
  an internal note, is a 404),
- it is younger than ``AUTOCRM_FILE_LINK_TTL`` seconds; an older link is not refused outright:
  it becomes the ordinary download address, which asks the reader to log in.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from flask import current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer

from autocrm.errors import NotFound
from autocrm.extensions import db
from autocrm.files import services as files
from autocrm.files.models import Attachment
from autocrm.people.models import User


class LinkExpired(Exception):
    """A genuine link past its time: the file is still one login away."""

    def __init__(self, attachment_id: int) -> None:
        super().__init__(f"The link to attachment {attachment_id} has expired.")
        self.attachment_id = attachment_id


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="autocrm.file-link")


def link_for(attachment: Attachment, user: User) -> str:
    token = _serializer().dumps({"a": attachment.id, "u": user.id})
    return f"{current_app.config['AUTOCRM_BASE_URL'].rstrip('/')}/attachments/link/{token}"


def open_link(token: str) -> Attachment:
    """The file a link names, if its person may still have it; raises ``NotFound`` or
    ``LinkExpired``."""
    try:
        data, signed_at = _serializer().loads(token, return_timestamp=True)
    except BadSignature:
        raise NotFound("This link is not valid.") from None
    if not isinstance(data, dict) or not all(isinstance(data.get(k), int) for k in "au"):
        raise NotFound("This link is not valid.")
    if time.time() - signed_at.timestamp() > current_app.config["AUTOCRM_FILE_LINK_TTL"]:
        raise LinkExpired(data["a"])
    user = db.session.get(User, data["u"])
    if user is None or not user.active:
        raise NotFound("This link is not valid.")
    return files.access_attachment_by_id(user, data["a"])


def with_file_links(body: str, attachments: Sequence[Attachment], user: User | None) -> str:
    """An email's ``body`` followed by links to the files it does not carry (none: as is)."""
    if not attachments or user is None:
        return body
    days = max(1, current_app.config["AUTOCRM_FILE_LINK_TTL"] // 86400)
    lines = [f"Files (these links work for {days} day{'s' if days != 1 else ''}):"]
    for attachment in attachments:
        size = files.human_size(attachment.size)
        lines.append(f"- {attachment.filename} ({size}): {link_for(attachment, user)}")
    return body.rstrip() + "\n\n" + "\n".join(lines) + "\n"
