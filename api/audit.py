"""The audit log of admin changes (admins only): who changed which user, team or workflow."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import fields, validate

from api.auth import current_actor, require_bearer
from api.errors import ErrorSchema
from api.schemas import Id, StrictSchema
from autocrm.audit import services as audit
from autocrm.listing import PageRequest

blp = Blueprint("audit", __name__, url_prefix="/api/audit", description="Admin audit log.")
blp.before_request(require_bearer)


class AuditListArgsSchema(StrictSchema):
    actor_id = Id(strict=False, metadata={"description": "Changes made by this user."})
    target_type = fields.String(
        validate=validate.OneOf(list(audit.TARGET_TYPES)),
        metadata={"description": "What kind of thing was changed."},
    )
    target_id = Id(strict=False, metadata={"description": "With target_type: that one thing."})
    action = fields.String(
        validate=validate.OneOf(sorted(audit.ACTIONS)),
        metadata={"description": "What was done, e.g. `user.deactivated`."},
    )
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))
    cursor = fields.String(validate=validate.Length(max=500))


class AuditEntrySchema(ma.Schema):
    id = fields.Integer()
    created_at = fields.DateTime()
    actor_id = fields.Integer(allow_none=True)
    actor_name = fields.Function(
        lambda entry: entry.actor.name if entry.actor else None, allow_none=True
    )
    action = fields.String()
    target_type = fields.String()
    target_id = fields.Integer(allow_none=True)
    target_label = fields.String(metadata={"description": "The target's name at the time."})
    changes = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.Raw(allow_none=True)),
        metadata={
            "description": "Each changed field as `[before, after]`; secrets are never listed.",
            "example": {"role": ["agent", "admin"]},
        },
    )


class AuditPageSchema(ma.Schema):
    items = fields.List(fields.Nested(AuditEntrySchema))
    next_cursor = fields.String(
        allow_none=True,
        metadata={"description": "Pass as `cursor` for older entries; null on the last page."},
    )


@blp.route("")
class AuditEntries(MethodView):
    @blp.arguments(AuditListArgsSchema, location="query", unknown=ma.RAISE)
    @blp.response(200, AuditPageSchema)
    @blp.alt_response(403, schema=ErrorSchema, description="Admins only.")
    def get(self, args: dict[str, Any]) -> Any:
        """Admin changes, newest first, optionally filtered by actor, target or action."""
        page = PageRequest(limit=args.pop("limit"), cursor=args.pop("cursor", None), sort="-id")
        return audit.list_entries(current_actor(), page, audit.AuditFilters(**args))
