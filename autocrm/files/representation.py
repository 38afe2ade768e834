"""How an attachment looks to its readers: in the API, on the pages and in realtime events.

Two addresses, one per way of signing in: ``url`` for API clients (a bearer token) and
``page_url`` for the pages (the session cookie); both answer only to people who may see the
file. Paths are fixed here (not ``url_for``) so a worker can render them outside a request.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from marshmallow import Schema, fields

from autocrm.files import types
from autocrm.files.models import Attachment

API_PATH = "/api/attachments/{id}"
PAGE_PATH = "/attachments/{id}"


class AttachmentSchema(Schema):
    id = fields.Integer()
    name = fields.String(attribute="filename", metadata={"description": "As uploaded, cleaned."})
    content_type = fields.String(metadata={"description": "Detected from the content."})
    size = fields.Integer(metadata={"description": "Bytes."})
    is_image = fields.Function(
        lambda a: types.is_inline_image(a.content_type),
        metadata={"description": "A raster image, shown inline (never SVG)."},
    )
    url = fields.Function(
        lambda a: API_PATH.format(id=a.id),
        metadata={"description": "The download, with a bearer token."},
    )
    page_url = fields.Function(
        lambda a: PAGE_PATH.format(id=a.id),
        metadata={"description": "The download for the web pages (session cookie)."},
    )
    thumbnail_url = fields.Function(
        lambda a: PAGE_PATH.format(id=a.id) + "/thumbnail" if a.thumbnail_sha256 else None,
        allow_none=True,
        metadata={"description": "A small copy of an image (pages); null until one is made."},
    )
    scan_status = fields.Function(
        lambda a: a.scan_status.value,
        metadata={
            "description": "The malware scan: not_scanned (no scanner configured), pending, "
            "clean, infected (quarantined, never served) or failed (withheld)."
        },
    )
    created_at = fields.DateTime()


def render_attachments(attachments: Sequence[Attachment]) -> list[dict[str, Any]]:
    return AttachmentSchema(many=True).dump(attachments)
