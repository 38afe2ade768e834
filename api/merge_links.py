"""Merging a duplicate ticket into another, and linking related tickets (staff)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from api import schemas
from api.auth import current_actor, require_bearer
from api.errors import ErrorSchema
from autocrm.tickets import links, merging, representation

blp = Blueprint(
    "merge_links",
    __name__,
    url_prefix="/api/tickets",
    description="Merge duplicate tickets; link related ones both ways.",
)
blp.before_request(require_bearer)

NOT_FOUND = "No such ticket, or not one you may see."


@blp.route("/<id:ticket_id>/merge")
class TicketMerge(MethodView):
    @blp.arguments(schemas.TicketMergeSchema)
    @blp.response(200, schemas.TicketDetailSchema)
    @blp.alt_response(403, schema=ErrorSchema, description="Only staff merge tickets.")
    @blp.alt_response(404, schema=ErrorSchema, description=NOT_FOUND)
    @blp.alt_response(
        409,
        schema=ErrorSchema,
        description="This ticket was already merged, or the target is closed or merged.",
    )
    @blp.alt_response(
        422, schema=ErrorSchema, description="``into`` is this ticket, or no ticket you see."
    )
    def post(self, body: dict[str, Any], ticket_id: int) -> Any:
        """Merge this ticket into ``into``: its conversation, files, followers and emails move
        there, and it is closed with a note. Returns the target ticket."""
        target = merging.do_merge(current_actor(), ticket_id, body["into"])
        return representation.ticket_view(target, "staff")


@blp.route("/<id:ticket_id>/links")
class TicketLinks(MethodView):
    @blp.response(200, schemas.LinkedTicketSchema(many=True))
    @blp.alt_response(404, schema=ErrorSchema, description=NOT_FOUND)
    def get(self, ticket_id: int) -> Any:
        """The tickets linked to this one that you may see."""
        return links.list_linked(current_actor(), ticket_id)

    @blp.arguments(schemas.TicketLinkAddSchema)
    @blp.response(201, schemas.LinkedTicketSchema)
    @blp.alt_response(403, schema=ErrorSchema, description="Only staff link tickets.")
    @blp.alt_response(404, schema=ErrorSchema, description=NOT_FOUND)
    @blp.alt_response(409, schema=ErrorSchema, description="Already linked.")
    @blp.alt_response(
        422, schema=ErrorSchema, description="``linked_id`` is this ticket, or none you see."
    )
    def post(self, body: dict[str, Any], ticket_id: int) -> Any:
        """Link this ticket to ``linked_id``, both ways. Returns the linked ticket."""
        return links.do_link(current_actor(), ticket_id, body["linked_id"])


@blp.route("/<id:ticket_id>/links/<id:linked_id>")
class TicketLink(MethodView):
    @blp.response(200, schemas.TicketLinkRemovedSchema)
    @blp.alt_response(403, schema=ErrorSchema, description="Only staff unlink tickets.")
    @blp.alt_response(404, schema=ErrorSchema, description="No such ticket, or not linked.")
    def delete(self, ticket_id: int, linked_id: int) -> Any:
        """Remove the link between the two tickets."""
        links.do_unlink(current_actor(), ticket_id, linked_id)
        return {"ticket_id": ticket_id, "linked_id": linked_id, "deleted": True}
