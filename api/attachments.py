"""Attachment endpoints: upload files, then send their ids with a ticket or message; download;
delete an upload not sent yet (or, for admins, any)."""

from __future__ import annotations

from typing import Any

from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint
from flask_smorest.fields import Upload as UploadField
from marshmallow import fields

from api.auth import current_actor, require_bearer
from api.errors import ErrorSchema
from api.schemas import StrictSchema
from autocrm.files import services as files
from autocrm.files import serving
from autocrm.files.representation import AttachmentSchema
from autocrm.files.types import DEFAULT_DENY
from autocrm.requestguard import accepts_uploads

blp = Blueprint(
    "attachments", __name__, url_prefix="/api", description="Files on tickets and messages."
)
blp.before_request(require_bearer)

LIMITS = (
    "Limits (settings): each file at most `AUTOCRM_MAX_UPLOAD_BYTES` (20 MiB by default; "
    "larger: 413 naming the file), at most `AUTOCRM_MAX_ATTACHMENTS` files at once and on one "
    "message (10), together at most `AUTOCRM_MAX_ATTACHMENTS_BYTES` (50 MiB). The type is "
    "detected from the content; programs and scripts are refused (422 naming the file; "
    "`AUTOCRM_UPLOAD_DENY_TYPES`, by default " + ", ".join(DEFAULT_DENY) + ")."
)


FILE_RESPONSE = {
    "200": {
        "description": "The file, with its detected type: `Content-Disposition: attachment` "
        "(inline for raster images), `X-Content-Type-Options: nosniff`, a sandboxing CSP.",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}


class UploadFormSchema(StrictSchema):
    files = fields.List(
        UploadField(), required=True, metadata={"description": "One or more files."}
    )


class AttachmentListSchema(StrictSchema):
    items = fields.List(fields.Nested(AttachmentSchema))


class AttachmentDeletedSchema(StrictSchema):
    id = fields.Integer()
    deleted = fields.Boolean()


@blp.route("/uploads")
@accepts_uploads
class Uploads(MethodView):
    @blp.doc(description=LIMITS)
    @blp.arguments(UploadFormSchema, location="files")
    @blp.response(201, AttachmentListSchema)
    @blp.alt_response(413, schema=ErrorSchema, description="A file, or the request, too large.")
    @blp.alt_response(422, schema=ErrorSchema, description="A refused type, or too many files.")
    @blp.alt_response(503, schema=ErrorSchema, description="File storage is unavailable.")
    def post(self, form: dict[str, Any]) -> Any:
        """Upload files (`multipart/form-data`, field `files`, repeated). They are yours,
        unattached, until you send their ids as `attachment_ids` with a new ticket or message.
        """
        uploads = [
            files.Upload(item.filename or "", item.stream)
            for item in request.files.getlist("files")
        ]
        return {"items": files.do_upload(current_actor(), uploads)}


class TicketUsageSchema(StrictSchema):
    ticket_id = fields.Integer()
    files = fields.Integer()
    bytes = fields.Integer()


class StorageUsageSchema(StrictSchema):
    files = fields.Integer(metadata={"description": "Attachments, sent or not."})
    bytes = fields.Integer(metadata={"description": "Their sizes added up."})
    stored_bytes = fields.Integer(
        metadata={"description": "What storage holds: each content once, however often sent."}
    )
    unsent_files = fields.Integer(metadata={"description": "Uploads not sent yet."})
    tickets = fields.List(
        fields.Nested(TicketUsageSchema),
        metadata={"description": "The tickets whose files take the most, largest first (20)."},
    )


@blp.route("/attachments/usage")
class StorageUsage(MethodView):
    @blp.response(200, StorageUsageSchema)
    @blp.alt_response(403, schema=ErrorSchema, description="Admins only.")
    def get(self) -> Any:
        """Storage used by attachments, in total and by the largest tickets (admins)."""
        return files.storage_usage(current_actor())


@blp.route("/attachments/<id:attachment_id>")
class AttachmentItem(MethodView):
    @blp.doc(responses=FILE_RESPONSE)
    @blp.alt_response(404, schema=ErrorSchema, description="No such file, or not one you may see.")
    @blp.alt_response(
        409,
        schema=ErrorSchema,
        description="Withheld by the malware scan: still being scanned (`scan_status` "
        "pending: try again shortly) or could not be scanned (failed).",
    )
    @blp.alt_response(
        410, schema=ErrorSchema, description="Quarantined: the malware scan found something."
    )
    @blp.alt_response(503, schema=ErrorSchema, description="File storage is unavailable.")
    def get(self, attachment_id: int) -> Any:
        """Download a file you may see (the same rule as the message it is on). With
        `AUTOCRM_CLAMD_URL` set, a file is served only once ClamAV found it clean."""
        attachment = files.access_attachment_by_id(current_actor(), attachment_id)
        return serving.send(attachment)

    @blp.response(200, AttachmentDeletedSchema)
    @blp.alt_response(403, schema=ErrorSchema, description="Sent already (admins only).")
    @blp.alt_response(404, schema=ErrorSchema, description="No such file, or not one you may see.")
    def delete(self, attachment_id: int) -> Any:
        """Delete your upload before it is sent; admins may delete any file (audited)."""
        files.do_delete(current_actor(), attachment_id)
        return {"id": attachment_id, "deleted": True}
