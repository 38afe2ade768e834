"""Thumbnails of attached images, made by a worker after the message or ticket is sent.

``make_thumbnails`` is an event handler (``autocrm.events.handlers``) of ``ticket.created``
and ``message.created``: for each raster image sent with it that has no thumbnail yet, it
stores a small JPEG (at most ``THUMBNAIL_SIZE``), turned upright by its EXIF orientation and
carrying no EXIF or other metadata (where a phone keeps its location), and records its key. A
second run finds the thumbnails made and does nothing. An image over ``MAX_IMAGE_PIXELS``
(a decompression bomb: a small file that decodes to gigabytes) or one Pillow cannot read gets
no thumbnail, and the page goes on showing the original scaled down.
"""

from __future__ import annotations

import io
import logging
import tempfile
import warnings
from typing import IO

from PIL import Image, ImageOps, UnidentifiedImageError
from sqlalchemy import select

from autocrm.events.kinds import MessageCreated, TicketChange, TicketCreated
from autocrm.extensions import db
from autocrm.files import storage as blobs
from autocrm.files import types
from autocrm.files.models import Attachment

log = logging.getLogger(__name__)
THUMBNAIL_SIZE = (480, 480)
# 40 megapixels: any camera's photo or screenshot, far below what would exhaust a worker.
MAX_IMAGE_PIXELS = 40_000_000
SPOOL_BYTES = 2 * 2**20


def make_thumbnails(event: TicketChange) -> None:
    """A handler: thumbnails of the images sent with a new ticket or message."""
    stmt = select(Attachment).where(
        Attachment.thumbnail_sha256.is_(None),
        Attachment.content_type.in_(types.INLINE_TYPES),
    )
    if isinstance(event, MessageCreated):
        stmt = stmt.where(Attachment.message_id == event.message_id)
    elif isinstance(event, TicketCreated):
        stmt = stmt.where(Attachment.ticket_id == event.ticket_id, Attachment.message_id.is_(None))
    else:
        return
    for attachment in db.session.scalars(stmt.order_by(Attachment.id)):
        key = thumbnail_of(attachment)
        if key is not None:
            attachment.thumbnail_sha256 = key


def thumbnail_of(attachment: Attachment) -> str | None:
    """Store the attachment's thumbnail; its key, or None when the image cannot have one."""
    storage = blobs.current()
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as original:
        for chunk in storage.open(attachment.sha256):
            original.write(chunk)
        original.seek(0)
        try:
            small = shrink(original)
        except (Image.DecompressionBombError, UnidentifiedImageError, OSError, ValueError) as exc:
            log.warning("no thumbnail for attachment %s: %s", attachment.id, exc)
            return None
    return storage.put(iter([small])).sha256


def shrink(image_file: IO[bytes]) -> bytes:
    """A JPEG of at most ``THUMBNAIL_SIZE``, upright, without metadata. Raises
    ``Image.DecompressionBombError`` for an image over ``MAX_IMAGE_PIXELS``."""
    with warnings.catch_warnings():
        # Pillow only warns between the limit and twice it: refuse all of that range.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
        try:
            with Image.open(image_file) as image:
                image.draft("RGB", THUMBNAIL_SIZE)  # JPEG: decode at a smaller scale
                upright = ImageOps.exif_transpose(image)
                upright.thumbnail(THUMBNAIL_SIZE)
                out = io.BytesIO()
                upright.convert("RGB").save(out, "JPEG", quality=82, optimize=True)
        except Image.DecompressionBombWarning as exc:
            raise Image.DecompressionBombError(str(exc)) from exc
    return out.getvalue()
