"""Macro endpoints: managing macros (``autocrm.macros.services``), and previewing and applying
one on a ticket (``autocrm.macros.applying``): staff only."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from api import schemas
from api.auth import current_actor, require_bearer
from api.errors import ErrorSchema
from api.etags import expected_version, with_etag
from autocrm.macros import applying
from autocrm.macros import services as macros
from autocrm.tickets import representation

blp = Blueprint(
    "macros",
    __name__,
    url_prefix="/api/macros",
    description="Macros: a reply text with placeholders plus ticket changes (priority, team, "
    "assignee, tags, a transition), personal, shared with a team or with every agent.",
)
blp.before_request(require_bearer)
ticket_blp = Blueprint(
    "ticket_macros",
    __name__,
    url_prefix="/api/tickets",
    description="Previewing and applying a macro on a ticket.",
)
ticket_blp.before_request(require_bearer)

NOT_FOUND = "No such macro, or not one you may see (someone else's personal macro, another team's)."
STAFF_ONLY = "Only staff use macros."


@blp.route("")
class MacroCollection(MethodView):
    @blp.response(200, schemas.MacroListSchema)
    @blp.alt_response(403, schema=ErrorSchema, description=STAFF_ONLY)
    def get(self) -> Any:
        """The macros you may use: your personal ones, your teams' and the global ones (admins:
        every team's), by title."""
        return {"items": macros.list_macros(current_actor())}

    @blp.arguments(schemas.MacroCreateSchema)
    @blp.response(201, schemas.MacroSchema)
    @blp.alt_response(403, schema=ErrorSchema, description=STAFF_ONLY)
    @blp.alt_response(
        422,
        schema=ErrorSchema,
        description="A field is wrong (named): a blank title, no text and no change, a team "
        "that is not yours, global from a non-admin, an unknown transition or assignee.",
    )
    def post(self, body: dict[str, Any]) -> Any:
        """Make a macro: a reply text, changes, or both."""
        return macros.do_create_macro(current_actor(), **body)


@blp.route("/<id:macro_id>")
class MacroItem(MethodView):
    @blp.response(200, schemas.MacroSchema)
    @blp.alt_response(404, schema=ErrorSchema, description=NOT_FOUND)
    def get(self, macro_id: int) -> Any:
        """One macro."""
        return macros.access_macro_by_id(current_actor(), macro_id)

    @blp.arguments(schemas.MacroUpdateSchema)
    @blp.response(200, schemas.MacroSchema)
    @blp.alt_response(403, schema=ErrorSchema, description="Global macros: admins only.")
    @blp.alt_response(404, schema=ErrorSchema, description=NOT_FOUND)
    @blp.alt_response(422, schema=ErrorSchema, description="A field is wrong (named).")
    def patch(self, body: dict[str, Any], macro_id: int) -> Any:
        """Change a macro; fields left out keep their value (``actions`` is replaced whole)."""
        return macros.do_update_macro(current_actor(), macro_id, **body)

    @blp.response(200, schemas.DeletedSchema)
    @blp.alt_response(403, schema=ErrorSchema, description="Global macros: admins only.")
    @blp.alt_response(404, schema=ErrorSchema, description=NOT_FOUND)
    def delete(self, macro_id: int) -> Any:
        """Delete a macro."""
        macros.do_delete_macro(current_actor(), macro_id)
        return {"id": macro_id, "deleted": True}


@ticket_blp.route("/<id:ticket_id>/macros/<id:macro_id>/preview")
class MacroPreview(MethodView):
    @ticket_blp.response(200, schemas.MacroPreviewSchema)
    @ticket_blp.alt_response(403, schema=ErrorSchema, description=STAFF_ONLY)
    @ticket_blp.alt_response(404, schema=ErrorSchema, description="No such ticket or macro.")
    def post(self, ticket_id: int, macro_id: int) -> Any:
        """What applying the macro would do now: the reply as it will read, each change in
        words, and which are not possible (``possible: false`` with the ``reason``). Changes
        nothing."""
        return applying.preview_by_id(current_actor(), ticket_id, macro_id)


@ticket_blp.route("/<id:ticket_id>/macros/<id:macro_id>/apply")
class MacroApply(MethodView):
    @ticket_blp.arguments(schemas.MacroApplySchema)
    @ticket_blp.response(200, schemas.TicketDetailSchema)
    @ticket_blp.alt_response(403, schema=ErrorSchema, description=STAFF_ONLY)
    @ticket_blp.alt_response(404, schema=ErrorSchema, description="No such ticket or macro.")
    @ticket_blp.alt_response(
        409,
        schema=ErrorSchema,
        description="A stale version, or a change not possible now (`errors.macro` says which "
        "and why); nothing was applied.",
    )
    @ticket_blp.alt_response(422, schema=ErrorSchema, description="Invalid input (named).")
    def post(self, body: dict[str, Any], ticket_id: int, macro_id: int) -> Any:
        """Apply the macro, all of it or nothing, in one change: the public reply (or the
        edited ``body``), the field changes and the transition. Audited as ``macro.applied``."""
        actor = current_actor()
        version = expected_version(body, "version")
        ticket = applying.do_apply_macro(
            actor,
            ticket_id,
            macro_id,
            expected_version=version,
            body=body.get("body"),
            channel="api",
        )
        view = representation.ticket_view(ticket, representation.audience_of(actor))
        return with_etag(view, ticket.version)
