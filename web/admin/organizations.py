"""Admin console: organizations of customers (list, create, edit, delete) and their members
(add by email, make or unmake manager, remove). Forms redirect on success or re-render with
the input kept and each error at its field; the services check admin rights and audit."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for

from autocrm.errors import DomainError, NotFound
from autocrm.people import organizations
from autocrm.people.models import Organization, User
from web.forms import form_errors
from web.session import admin_required

bp = Blueprint("admin_organizations", __name__, url_prefix="/admin/organizations")

EMPTY_FORM = {"name": "", "domains": "", "notes": "", "auto_join": "on"}


def _form() -> dict[str, str]:
    return {key: request.form.get(key, "").strip() for key in EMPTY_FORM}


def _fields(form: dict[str, str]) -> dict[str, Any]:
    """The form as service fields: domains separated by commas, spaces or lines."""
    return {
        "name": form["name"],
        "domains": form["domains"].replace(",", " ").split(),
        "notes": form["notes"],
        "auto_join": bool(form["auto_join"]),
    }


def _current(organization: Organization) -> dict[str, str]:
    return {
        "name": organization.name,
        "domains": ", ".join(organization.domains),
        "notes": organization.notes,
        "auto_join": "on" if organization.auto_join else "",
    }


@bp.route("", methods=["GET", "POST"], endpoint="index")
@admin_required
def index(user: User) -> Any:
    form, errors = dict(EMPTY_FORM), {}
    if request.method == "POST":
        form = _form()
        try:
            created = organizations.do_create_organization(user, **_fields(form))
        except DomainError as exc:
            errors = form_errors(exc)
        else:
            flash(f"Organization {created.name} created.", "success")
            return redirect(url_for(".detail", organization_id=created.id))
    html = render_template(
        "admin/organizations.html",
        user=user,
        items=organizations.list_organizations(user),
        counts=organizations.member_counts(),
        form=form,
        errors=errors,
    )
    return html, 422 if errors else 200


def _page(
    user: User,
    organization_id: int,
    *,
    form: dict[str, str] | None = None,
    errors: dict[str, Any] | None = None,
    member_email: str = "",
    status: int = 200,
) -> tuple[str, int]:
    organization = organizations.access_organization_by_id(user, organization_id)
    html = render_template(
        "admin/organizations_detail.html",
        user=user,
        organization=organization,
        form=form or _current(organization),
        errors=errors or {},
        member_email=member_email,
    )
    return html, status


def _refused(user: User, organization_id: int, exc: DomainError, **kept: Any) -> Any:
    if isinstance(exc, NotFound) and not exc.errors:
        raise exc
    return _page(user, organization_id, errors=form_errors(exc), status=exc.status_code, **kept)


@bp.get("/<int:organization_id>")
@admin_required
def detail(user: User, organization_id: int) -> tuple[str, int]:
    return _page(user, organization_id)


@bp.post("/<int:organization_id>")
@admin_required
def update(user: User, organization_id: int) -> Any:
    form = _form()
    try:
        organizations.do_update_organization(user, organization_id, _fields(form))
    except DomainError as exc:
        return _refused(user, organization_id, exc, form=form)
    flash("Organization saved.", "success")
    return redirect(url_for(".detail", organization_id=organization_id))


@bp.post("/<int:organization_id>/delete")
@admin_required
def delete(user: User, organization_id: int) -> Any:
    organizations.do_delete_organization(user, organization_id)
    flash("Organization deleted; its customers stay, in no organization.", "success")
    return redirect(url_for(".index"))


@bp.post("/<int:organization_id>/members")
@admin_required
def member_add(user: User, organization_id: int) -> Any:
    email = request.form.get("email", "").strip()
    try:
        customer = organizations.customer_by_email(email)
        organizations.do_add_member(
            user, organization_id, customer.id, manager=bool(request.form.get("manager"))
        )
    except DomainError as exc:
        return _refused(user, organization_id, exc, member_email=email)
    flash("Member added.", "success")
    return redirect(url_for(".detail", organization_id=organization_id, _anchor="members"))


@bp.post("/<int:organization_id>/members/<int:member_id>/manager")
@admin_required
def member_manager(user: User, organization_id: int, member_id: int) -> Any:
    manager = request.form.get("manager") == "1"
    try:
        organizations.do_add_member(user, organization_id, member_id, manager=manager)
    except DomainError as exc:
        return _refused(user, organization_id, exc)
    flash("Manager set." if manager else "No longer a manager.", "success")
    return redirect(url_for(".detail", organization_id=organization_id, _anchor="members"))


@bp.post("/<int:organization_id>/members/<int:member_id>/remove")
@admin_required
def member_remove(user: User, organization_id: int, member_id: int) -> Any:
    organizations.do_remove_member(user, organization_id, member_id)
    flash("Member removed.", "success")
    return redirect(url_for(".detail", organization_id=organization_id, _anchor="members"))
