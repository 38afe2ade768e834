"""Ticket followers (CC): list, add and remove the people kept informed of a ticket."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from api import schemas
from api.auth import current_actor, require_bearer
from api.errors import ErrorSchema
from autocrm.tickets import followers

blp = Blueprint(
    "followers",
    __name__,
    url_prefix="/api/tickets",
    description="Ticket followers: who else hears of a ticket.",
)
blp.before_request(require_bearer)

NOT_FOUND = "No such ticket, or not one you may see."


@blp.route("/<id:ticket_id>/followers")
class TicketFollowers(MethodView):
    @blp.response(200, schemas.FollowerSchema(many=True))
    @blp.alt_response(404, schema=ErrorSchema, description=NOT_FOUND)
    def get(self, ticket_id: int) -> Any:
        """The ticket's followers, in the order they were added."""
        return followers.follower_views(current_actor(), ticket_id)

    @blp.arguments(schemas.FollowerAddSchema)
    @blp.response(201, schemas.FollowerSchema)
    @blp.alt_response(404, schema=ErrorSchema, description=NOT_FOUND)
    @blp.alt_response(
        422,
        schema=ErrorSchema,
        description="Unknown user, invalid email, staff added by a customer, the requester, "
        "or someone already following; the field is named.",
    )
    def post(self, body: dict[str, Any], ticket_id: int) -> Any:
        """Add a follower: staff by ``user_id`` or ``email``; customers a colleague by email."""
        actor = current_actor()
        user = followers.do_add_follower(actor, ticket_id, **body)
        return followers.follower_view(user, for_staff=actor.role.is_staff)


@blp.route("/<id:ticket_id>/followers/<id:user_id>")
class TicketFollower(MethodView):
    @blp.response(200, schemas.FollowerRemovedSchema)
    @blp.alt_response(403, schema=ErrorSchema, description="Only staff remove others.")
    @blp.alt_response(404, schema=ErrorSchema, description="No such ticket, or no such follower.")
    def delete(self, ticket_id: int, user_id: int) -> Any:
        """Remove a follower (staff), or unfollow (your own id)."""
        followers.do_remove_follower(current_actor(), ticket_id, user_id)
        return {"ticket_id": ticket_id, "user_id": user_id, "deleted": True}
