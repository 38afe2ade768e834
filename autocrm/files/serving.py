"""Sending a file to a browser or API client without letting it act as a page of ours.

Every download is ``Content-Disposition: attachment`` except raster images (shown inline, as
thumbnails and full size), always with ``X-Content-Type-Options: nosniff`` and a CSP that
sandboxes the response and lets it load nothing: an HTML or SVG file opened anyway runs no
script with our origin. The bytes stream from storage in chunks. A file the malware scan
withholds (waiting, failed, or infected: ``scanning.check_servable``) is not sent at all.
"""

from __future__ import annotations

from urllib.parse import quote

from flask import Response
from werkzeug.utils import secure_filename

from autocrm.files import scanning, types
from autocrm.files import services as files
from autocrm.files.models import Attachment

SANDBOX_CSP = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox"


def _disposition(kind: str, name: str) -> str:
    """``kind; filename=...`` with an ASCII fallback and the UTF-8 name (RFC 6266)."""
    ascii_name = secure_filename(name) or "file"
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"


def send(attachment: Attachment, *, thumbnail: bool = False) -> Response:
    """The file as a response; a DomainError while its malware scan withholds it."""
    scanning.check_servable(attachment)
    inline = types.is_inline_image(attachment.content_type)
    use_thumbnail = thumbnail and attachment.thumbnail_sha256 is not None
    chunks = files.read(attachment, thumbnail=use_thumbnail)
    content_type = "image/jpeg" if use_thumbnail else attachment.content_type
    response = Response(chunks, mimetype=content_type, direct_passthrough=True)
    if not use_thumbnail:
        response.content_length = attachment.size
    response.headers["Content-Disposition"] = _disposition(
        "inline" if inline else "attachment", attachment.filename
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = SANDBOX_CSP
    response.headers["Cache-Control"] = "private, max-age=3600"
    response.headers["Cross-Origin-Resource-Policy"] = "same-origin"
    return response
