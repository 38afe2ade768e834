"""Request forms (``autocrm.fields.forms``): what a customer picks when asking. Everyone reads
the active ones; admins create, change, retire and delete them. A ticket names its form in
``form`` (``/api/tickets``)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from api import schemas
from api.auth import current_actor, require_bearer
from api.errors import ErrorSchema
from autocrm.fields import forms
from autocrm.fields.models import RequestForm
from autocrm.people.models import User

blp = Blueprint(
    "request_forms",
    __name__,
    url_prefix="/api/request-forms",
    description="Request forms: the fields asked (each required or optional) and the team a "
    "ticket goes to, picked when opening a ticket (`form`).",
)
blp.before_request(require_bearer)


PLAIN = ("id", "key", "name", "description", "active", "position", "team_id", "created_at")


def _views(actor: User, found: list[RequestForm]) -> list[dict[str, Any]]:
    teams = forms.team_names(found)
    return [
        {
            **{name: getattr(form, name) for name in PLAIN},
            "team_name": teams.get(form.team_id) if form.team_id else None,
            "fields": forms.form_items(actor, form),
        }
        for form in found
    ]


def _view(form: RequestForm) -> dict[str, Any]:
    return _views(current_actor(), [form])[0]


@blp.route("")
class RequestFormCollection(MethodView):
    @blp.arguments(schemas.RequestFormListArgsSchema, location="query")
    @blp.response(200, schemas.RequestFormListSchema)
    def get(self, args: dict[str, Any]) -> Any:
        """The active forms in order; `include_retired` (admins) adds the retired ones."""
        actor = current_actor()
        found = forms.list_forms(actor, include_retired=args["include_retired"])
        return {"items": _views(actor, found)}

    @blp.arguments(schemas.RequestFormCreateSchema)
    @blp.response(201, schemas.RequestFormSchema)
    @blp.alt_response(403, schema=ErrorSchema, description="Admins only.")
    @blp.alt_response(422, schema=ErrorSchema, description="A taken name or key, unknown field.")
    def post(self, body: dict[str, Any]) -> Any:
        """Add a form (admin)."""
        return _view(forms.do_create_form(current_actor(), body))


@blp.route("/<id:form_id>")
class RequestFormItem(MethodView):
    @blp.response(200, schemas.RequestFormSchema)
    @blp.alt_response(404, schema=ErrorSchema, description="No such form.")
    def get(self, form_id: int) -> Any:
        """One form (admin)."""
        return _view(forms.access_form_by_id(current_actor(), form_id))

    @blp.arguments(schemas.RequestFormUpdateSchema)
    @blp.response(200, schemas.RequestFormSchema)
    @blp.alt_response(403, schema=ErrorSchema, description="Admins only.")
    @blp.alt_response(422, schema=ErrorSchema, description="Bad input.")
    def patch(self, body: dict[str, Any], form_id: int) -> Any:
        """Change a form (admin): name, description, team, fields, position; `active: false`
        retires it (tickets keep it). The key is fixed."""
        return _view(forms.do_update_form(current_actor(), form_id, body))

    @blp.response(200, schemas.DeletedSchema)
    @blp.alt_response(403, schema=ErrorSchema, description="Admins only.")
    @blp.alt_response(422, schema=ErrorSchema, description="Tickets were filed with it.")
    def delete(self, form_id: int) -> Any:
        """Delete a form no ticket was filed with (admin); otherwise retire it."""
        forms.do_delete_form(current_actor(), form_id)
        return {"id": form_id, "deleted": True}
