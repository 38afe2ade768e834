"""Organization endpoints: admins manage organizations and their customers (see
``autocrm.people.organizations``); staff may read them."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from api import schemas
from api.auth import current_actor, require_bearer
from api.errors import ErrorSchema
from autocrm.people import organizations

blp = Blueprint(
    "organizations",
    __name__,
    url_prefix="/api/organizations",
    description="Organizations of customers.",
)
blp.before_request(require_bearer)


@blp.route("")
class OrganizationCollection(MethodView):
    @blp.response(200, schemas.OrganizationListSchema)
    @blp.alt_response(403, schema=ErrorSchema, description="Staff only.")
    def get(self) -> Any:
        """Every organization, by name (staff)."""
        return {"items": organizations.list_organizations(current_actor())}

    @blp.arguments(schemas.OrganizationCreateSchema)
    @blp.response(201, schemas.OrganizationSchema)
    @blp.alt_response(403, schema=ErrorSchema, description="Admins only.")
    def post(self, body: dict[str, Any]) -> Any:
        """Create an organization (admin). A domain already in another organization is
        refused (422 naming `domains`)."""
        return organizations.do_create_organization(current_actor(), **body)


@blp.route("/<id:organization_id>")
class OrganizationItem(MethodView):
    @blp.response(200, schemas.OrganizationSchema)
    @blp.alt_response(404, schema=ErrorSchema, description="No such organization.")
    def get(self, organization_id: int) -> Any:
        """One organization with its members (staff)."""
        return organizations.access_organization_by_id(current_actor(), organization_id)

    @blp.arguments(schemas.OrganizationUpdateSchema)
    @blp.response(200, schemas.OrganizationSchema)
    @blp.alt_response(403, schema=ErrorSchema, description="Admins only.")
    def patch(self, body: dict[str, Any], organization_id: int) -> Any:
        """Change an organization's name, domains, notes or auto-join flag (admin)."""
        return organizations.do_update_organization(current_actor(), organization_id, body)

    @blp.response(200, schemas.DeletedSchema)
    @blp.alt_response(403, schema=ErrorSchema, description="Admins only.")
    def delete(self, organization_id: int) -> Any:
        """Delete an organization (admin); its customers stay, in no organization."""
        organizations.do_delete_organization(current_actor(), organization_id)
        return {"id": organization_id, "deleted": True}


@blp.route("/<id:organization_id>/members")
class OrganizationMembers(MethodView):
    @blp.arguments(schemas.OrganizationMemberAddSchema)
    @blp.response(200, schemas.OrganizationSchema)
    @blp.alt_response(403, schema=ErrorSchema, description="Admins only.")
    def post(self, body: dict[str, Any], organization_id: int) -> Any:
        """Put a customer in the organization (moving them from another one), or set whether
        a member is its manager (admin)."""
        return organizations.do_add_member(
            current_actor(), organization_id, body["user_id"], manager=body["manager"]
        )


@blp.route("/<id:organization_id>/members/<id:user_id>")
class OrganizationMember(MethodView):
    @blp.response(200, schemas.OrganizationSchema)
    @blp.alt_response(403, schema=ErrorSchema, description="Admins only.")
    @blp.alt_response(404, schema=ErrorSchema, description="Not a member.")
    def delete(self, organization_id: int, user_id: int) -> Any:
        """Take a customer out of the organization (admin)."""
        return organizations.do_remove_member(current_actor(), organization_id, user_id)
