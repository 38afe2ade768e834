"""Custom ticket field definitions (``autocrm.fields.definitions``): staff read them all,
customers the customer-visible ones; admins create, change, reorder and delete them. The
values are a ticket's ``fields`` (``/api/tickets``)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from api import schemas
from api.auth import current_actor, require_bearer
from api.errors import ErrorSchema
from autocrm.fields import definitions

blp = Blueprint(
    "ticket_fields",
    __name__,
    url_prefix="/api/ticket-fields",
    description="Custom ticket fields: admins define them; tickets carry their values in "
    "`fields`, filtered with `field.<key>=<value>`.",
)
blp.before_request(require_bearer)


@blp.route("")
class TicketFieldCollection(MethodView):
    @blp.arguments(schemas.TicketFieldListArgsSchema, location="query")
    @blp.response(200, schemas.TicketFieldListSchema)
    def get(self, args: dict[str, Any]) -> Any:
        """The active fields in order: staff get all, customers the customer-visible ones.
        `include_inactive` (admins) adds the deactivated ones."""
        actor = current_actor()
        return {"items": definitions.list_fields(actor, include_inactive=args["include_inactive"])}

    @blp.arguments(schemas.TicketFieldCreateSchema)
    @blp.response(201, schemas.TicketFieldSchema)
    @blp.alt_response(403, schema=ErrorSchema, description="Admins only.")
    @blp.alt_response(422, schema=ErrorSchema, description="A taken key, bad options, ...")
    def post(self, body: dict[str, Any]) -> Any:
        """Add a field (admin). No migration or restart: tickets take values for it at once."""
        return definitions.do_create_field(current_actor(), body)


@blp.route("/order")
class TicketFieldOrder(MethodView):
    @blp.arguments(schemas.TicketFieldOrderSchema)
    @blp.response(200, schemas.TicketFieldListSchema)
    @blp.alt_response(403, schema=ErrorSchema, description="Admins only.")
    def put(self, body: dict[str, Any]) -> Any:
        """Put the fields in this order (admin); those not named follow, in their order."""
        return {"items": definitions.do_reorder_fields(current_actor(), body["field_ids"])}


@blp.route("/<id:field_id>")
class TicketFieldItem(MethodView):
    @blp.response(200, schemas.TicketFieldSchema)
    @blp.alt_response(404, schema=ErrorSchema, description="No such field.")
    def get(self, field_id: int) -> Any:
        """One field (admin)."""
        return definitions.access_field_by_id(current_actor(), field_id)

    @blp.arguments(schemas.TicketFieldUpdateSchema)
    @blp.response(200, schemas.TicketFieldSchema)
    @blp.alt_response(403, schema=ErrorSchema, description="Admins only.")
    @blp.alt_response(422, schema=ErrorSchema, description="Bad input; an option in use removed.")
    def patch(self, body: dict[str, Any], field_id: int) -> Any:
        """Change a field (admin): label, help, visibility, options (reorder, add, retire),
        required to solve, active. The key and type are fixed."""
        return definitions.do_update_field(current_actor(), field_id, body)

    @blp.response(200, schemas.DeletedSchema)
    @blp.alt_response(403, schema=ErrorSchema, description="Admins only.")
    @blp.alt_response(422, schema=ErrorSchema, description="Tickets hold values of it.")
    def delete(self, field_id: int) -> Any:
        """Delete a field no ticket has a value for (admin); otherwise deactivate it."""
        definitions.do_delete_field(current_actor(), field_id)
        return {"id": field_id, "deleted": True}
