"""Ticket endpoints: CRUD, workflow transitions, conversation, feedback, audit trail, bulk."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import Response, jsonify, request
from flask.views import MethodView
from flask_smorest import Blueprint

from api import schemas
from api.auth import current_actor, require_bearer
from api.errors import ErrorSchema
from api.etags import expected_version, with_etag
from autocrm.listing import Page, PageRequest
from autocrm.tickets import conversation, representation, search
from autocrm.tickets import services as tickets

blp = Blueprint("tickets", __name__, url_prefix="/api/tickets", description="Tickets.")
blp.before_request(require_bearer)

NOT_FOUND = {"description": "No such ticket, or not one you may see."}


def _listed(found: Page[Any]) -> Response:
    """The page as ``TicketPageSchema`` documents it, serialized by
    ``representation.listed_items`` (equal to the schema's dump, at a fraction of its cost)."""
    snippets = found.snippets if isinstance(found, search.SearchPage) else None
    items = representation.listed_items(
        found.items, representation.audience_of(current_actor()), snippets
    )
    return jsonify({"items": items, "next_cursor": found.next_cursor})


def _field_filters() -> dict[str, str]:
    prefix = schemas.FIELD_FILTER_PREFIX
    return {k.removeprefix(prefix): v for k, v in request.args.items() if k.startswith(prefix)}


def _with_etag(ticket: Any) -> tuple[Any, dict[str, str]]:
    """The ticket as the caller may see it (the same representation ``ticket_updated`` sends)."""
    view = representation.ticket_view(ticket, representation.audience_of(current_actor()))
    return with_etag(view, view["version"])


@blp.route("")
class TicketCollection(MethodView):
    @blp.arguments(schemas.TicketListArgsSchema, location="query", unknown=ma.RAISE)
    @blp.response(200, schemas.TicketPageSchema)
    def get(self, args: dict[str, Any]) -> Any:
        """List the tickets you may see, newest first by default; keyset-paginated.

        Custom fields filter as `field.<key>=<value>` (repeat for several fields, all must
        hold): equal to the value, typed by the field (`true`/`false` for a checkbox,
        `YYYY-MM-DD` for a date); a multi-select field: containing that option. A key you may
        not see, or a value of the wrong type, is refused: 422 naming `field.<key>`."""
        page = PageRequest(
            limit=args.pop("limit"), cursor=args.pop("cursor", None), sort=args.pop("sort")
        )
        filters = tickets.TicketFilters(**args, custom_fields=_field_filters())
        columns = representation.LISTED_COLUMNS
        return _listed(tickets.list_tickets(current_actor(), filters, page, columns))

    @blp.arguments(schemas.TicketCreateSchema)
    @blp.response(201, schemas.TicketDetailSchema)
    @blp.alt_response(
        422, schema=ErrorSchema, description="Invalid fields, or staff-only fields from a customer."
    )
    def post(self, body: dict[str, Any]) -> Any:
        """Open a ticket. Customers open their own; staff may set requester, team, assignee."""
        return _with_etag(tickets.do_create_ticket(current_actor(), **body))


@blp.route("/<id:ticket_id>")
class TicketItem(MethodView):
    @blp.response(200, schemas.TicketDetailSchema)
    @blp.alt_response(404, schema=ErrorSchema, description=NOT_FOUND["description"])
    def get(self, ticket_id: int) -> Any:
        """One ticket; its ETag is its version."""
        return _with_etag(tickets.access_ticket_by_id(current_actor(), ticket_id))

    @blp.arguments(schemas.TicketUpdateSchema)
    @blp.response(200, schemas.TicketDetailSchema)
    @blp.alt_response(404, schema=ErrorSchema, description=NOT_FOUND["description"])
    @blp.alt_response(
        409, schema=ErrorSchema, description="Stale version: someone changed the ticket meanwhile."
    )
    def patch(self, body: dict[str, Any], ticket_id: int) -> Any:
        """Change priority, assignee, team or tags (staff), or custom `fields` (customers:
        the customer-editable ones)."""
        expected = expected_version(body, "version")
        return _with_etag(tickets.do_update_ticket(current_actor(), ticket_id, body, expected))


@blp.route("/<id:ticket_id>/transitions")
class TicketTransitions(MethodView):
    @blp.response(200, schemas.TransitionSchema(many=True))
    @blp.alt_response(404, schema=ErrorSchema, description=NOT_FOUND["description"])
    def get(self, ticket_id: int) -> Any:
        """The workflow transitions you may fire on this ticket now."""
        actor = current_actor()
        return tickets.allowed_transitions(actor, tickets.access_ticket_by_id(actor, ticket_id))

    @blp.arguments(schemas.TransitionRequestSchema)
    @blp.response(200, schemas.TicketDetailSchema)
    @blp.alt_response(404, schema=ErrorSchema, description=NOT_FOUND["description"])
    @blp.alt_response(
        409, schema=ErrorSchema, description="Not allowed now; the body lists allowed_transitions."
    )
    def post(self, body: dict[str, Any], ticket_id: int) -> Any:
        """Fire a named workflow transition (e.g. ``solve``)."""
        expected = expected_version(body, "version")
        ticket = tickets.do_transition(current_actor(), ticket_id, body["name"], expected)
        return _with_etag(ticket)


@blp.route("/<id:ticket_id>/messages")
class TicketMessages(MethodView):
    @blp.arguments(schemas.MessageListArgsSchema, location="query", unknown=ma.RAISE)
    @blp.response(200, schemas.MessagePageSchema)
    @blp.alt_response(404, schema=ErrorSchema, description=NOT_FOUND["description"])
    def get(self, args: dict[str, Any], ticket_id: int) -> Any:
        """The conversation, oldest first; ``after`` fetches what a client missed."""
        items, more = conversation.list_messages(current_actor(), ticket_id, **args)
        return {"items": representation.preload_authors(items), "has_more": more}

    @blp.arguments(schemas.MessageCreateSchema)
    @blp.response(201, schemas.MessageSchema)
    @blp.alt_response(404, schema=ErrorSchema, description=NOT_FOUND["description"])
    @blp.alt_response(
        409,
        schema=ErrorSchema,
        description="The ticket is closed, or `transition` is not allowed now (the body lists "
        "allowed_transitions); nothing was added.",
    )
    @blp.alt_response(
        422, schema=ErrorSchema, description="Invalid fields, or an unknown `transition`."
    )
    def post(self, body: dict[str, Any], ticket_id: int) -> Any:
        """Reply publicly, or (staff) add an internal note; optionally fire a workflow
        ``transition`` with it, all or nothing."""
        return conversation.do_add_message(current_actor(), ticket_id, **body, channel="api")


@blp.route("/<id:ticket_id>/events")
class TicketEvents(MethodView):
    @blp.response(200, schemas.TicketEventSchema(many=True))
    @blp.alt_response(404, schema=ErrorSchema, description=NOT_FOUND["description"])
    def get(self, ticket_id: int) -> Any:
        """The audit trail (customers see creation and status changes)."""
        return representation.trail_views(tickets.list_events(current_actor(), ticket_id))


@blp.route("/<id:ticket_id>/feedback")
class TicketFeedback(MethodView):
    @blp.arguments(schemas.FeedbackCreateSchema)
    @blp.response(201, schemas.FeedbackSchema)
    @blp.alt_response(403, schema=ErrorSchema, description="Only the requester may rate.")
    @blp.alt_response(404, schema=ErrorSchema, description=NOT_FOUND["description"])
    @blp.alt_response(409, schema=ErrorSchema, description="Not solved yet, or rated already.")
    def post(self, body: dict[str, Any], ticket_id: int) -> Any:
        """Rate the help you got (1-5), once the ticket is solved."""
        return conversation.do_give_feedback(current_actor(), ticket_id, **body)


@blp.route("/bulk")
class TicketBulk(MethodView):
    @blp.arguments(schemas.BulkRequestSchema)
    @blp.response(200, schemas.BulkResponseSchema)
    def post(self, body: dict[str, Any]) -> Any:
        """Assign, set priority or transition many tickets; each one succeeds or fails whole."""
        action = body["action"]
        value = body[schemas.BULK_VALUE_FIELD[action]]
        results = tickets.do_bulk(current_actor(), body["ticket_ids"], action, value)
        succeeded = sum(r.ok for r in results)
        return {"results": results, "succeeded": succeeded, "failed": len(results) - succeeded}
