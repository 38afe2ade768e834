"""Queue views (staff): the built-in views and saved ones (``autocrm.tickets.views``), and
the tickets of a view. A view's filters are the query parameters ``GET /api/tickets`` takes,
so ``GET /api/views/<id>/tickets`` and ``GET /api/tickets`` with those parameters agree."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import Blueprint

from api import schemas
from api.auth import current_actor, require_bearer
from api.errors import ErrorSchema
from autocrm.listing import Page, PageRequest
from autocrm.tickets import search, views
from autocrm.tickets import services as tickets

blp = Blueprint(
    "views",
    __name__,
    url_prefix="/api/views",
    description="Queue views (staff): built-in ones and saved ones (personal, team, global).",
)
blp.before_request(require_bearer)

NOT_FOUND = "No such view, or not one you may see (another team's, someone's personal one)."
FORBIDDEN = "Customers; a scope you may not use (global: admins; team: its members)."


def _raw(body: dict[str, Any]) -> dict[str, Any]:
    """The body with its filters back in their JSON form (the service validates that)."""
    if "filters" in body:
        body = {**body, "filters": schemas.ViewFiltersSchema().dump(body["filters"])}
    return body


@blp.route("")
class ViewCollection(MethodView):
    @blp.arguments(schemas.ViewListArgsSchema, location="query", unknown=ma.RAISE)
    @blp.response(200, schemas.ViewListSchema)
    @blp.alt_response(403, schema=ErrorSchema, description="Customers.")
    def get(self, args: dict[str, Any]) -> Any:
        """The built-in views, then the saved ones you see (global, your teams', yours)."""
        items = views.list_views(current_actor(), counts=args["counts"])
        return {"items": items, "default": views.DEFAULT_VIEW}

    @blp.arguments(schemas.ViewCreateSchema)
    @blp.response(201, schemas.ViewSchema)
    @blp.alt_response(403, schema=ErrorSchema, description=FORBIDDEN)
    def post(self, body: dict[str, Any]) -> Any:
        """Save a view (scope personal by default; a team view names `team_id`)."""
        return views.do_create_view(current_actor(), _raw(body))


@blp.route("/<id:view_id>")
class ViewItem(MethodView):
    @blp.arguments(schemas.ViewWriteSchema)
    @blp.response(200, schemas.ViewSchema)
    @blp.alt_response(403, schema=ErrorSchema, description=FORBIDDEN)
    @blp.alt_response(404, schema=ErrorSchema, description=NOT_FOUND)
    def patch(self, body: dict[str, Any], view_id: int) -> Any:
        """Change a saved view (its owner; a team view: the team's members; admins)."""
        return views.do_update_view(current_actor(), view_id, _raw(body))

    @blp.response(200, schemas.DeletedSchema)
    @blp.alt_response(403, schema=ErrorSchema, description=FORBIDDEN)
    @blp.alt_response(404, schema=ErrorSchema, description=NOT_FOUND)
    def delete(self, view_id: int) -> Any:
        """Delete a saved view."""
        views.do_delete_view(current_actor(), view_id)
        return {"id": view_id, "deleted": True}


@blp.route("/<string:view_id>")
class ViewByKey(MethodView):
    @blp.response(200, schemas.ViewSchema)
    @blp.alt_response(404, schema=ErrorSchema, description=NOT_FOUND)
    def get(self, view_id: str) -> Any:
        """One view: a built-in's key (`my_unsolved`) or a saved view's id."""
        return views.access_view(current_actor(), view_id)


@blp.route("/<string:view_id>/tickets")
class ViewTickets(MethodView):
    @blp.arguments(schemas.ViewTicketsArgsSchema, location="query", unknown=ma.RAISE)
    @blp.response(200, schemas.TicketPageSchema)
    @blp.alt_response(404, schema=ErrorSchema, description=NOT_FOUND)
    def get(self, args: dict[str, Any], view_id: str) -> Any:
        """The tickets of a view, in its sort, keyset-paginated (as `GET /api/tickets` with the
        view's filters as parameters)."""
        actor = current_actor()
        view = views.access_view(actor, view_id)
        page = PageRequest(limit=args["limit"], cursor=args.get("cursor"), sort=view.sort)
        found = tickets.list_tickets(actor, view.ticket_filters, page)
        if isinstance(found, search.SearchPage):
            hits = [search.TicketHit(t, found.snippets.get(t.id)) for t in found.items]
            return Page(hits, found.next_cursor)
        return found
