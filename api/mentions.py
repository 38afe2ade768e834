"""@mentions: the colleagues a staff member may mention in an internal note on a ticket.

A note mentions someone as ``@[Full Name](user:<id>)`` in its ``body`` (``POST
/api/tickets/<id>/messages`` with ``internal: true``); ``autocrm.tickets.mentions`` is the rule.
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import fields, validate

from api.auth import current_actor, require_bearer
from api.errors import ErrorSchema
from api.schemas import StrictSchema
from autocrm.tickets import conversation, mentions

blp = Blueprint(
    "mentions",
    __name__,
    url_prefix="/api/tickets",
    description="Colleagues to @mention in an internal note.",
)
blp.before_request(require_bearer)


class MentionableArgsSchema(StrictSchema):
    q = fields.String(
        load_default="",
        validate=validate.Length(max=mentions.MAX_QUERY),
        metadata={"description": "Part of a name or email address; blank: anyone."},
    )


class MentionableSchema(ma.Schema):
    id = fields.Integer()
    name = fields.String()
    email = fields.String()
    role = fields.Function(lambda u: u.role.value, metadata={"enum": ["agent", "admin"]})
    mention = fields.Function(
        mentions.syntax,
        metadata={"description": "The text that mentions them in a note's body."},
    )


@blp.route("/<id:ticket_id>/mentionable")
class Mentionable(MethodView):
    @blp.arguments(MentionableArgsSchema, location="query", unknown=ma.RAISE)
    @blp.response(200, MentionableSchema(many=True))
    @blp.alt_response(403, schema=ErrorSchema, description="Only staff mention colleagues.")
    @blp.alt_response(404, schema=ErrorSchema, description="No such ticket, or not one you see.")
    def get(self, args: dict[str, Any], ticket_id: int) -> Any:
        """Active staff who may see the ticket (and so read its notes), whose name or email
        contains ``q``, by name, at most ten; never yourself."""
        return conversation.list_mentionable(current_actor(), ticket_id, args["q"])
