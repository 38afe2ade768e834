"""The customer page agents open from a ticket's requester (``autocrm.people.customers``):
details, organization, tickets, and the name and notes agents edit. The form re-renders with
what was typed and each error at its field, or redirects when saved."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for

from autocrm.errors import DomainError, NotFound
from autocrm.people import customers
from autocrm.people.models import User
from web.session import login_required

bp = Blueprint("customers", __name__, url_prefix="/agent/customers")


def _page(
    user: User,
    customer_id: int,
    *,
    form: dict[str, str] | None = None,
    errors: dict[str, Any] | None = None,
    status: int = 200,
) -> tuple[str, int]:
    customer = customers.access_customer_by_id(user, customer_id)
    html = render_template(
        "agent/customer.html",
        user=user,
        customer=customer,
        tickets=customers.tickets_of(user, customer),
        form=form or {"name": customer.name, "notes": customer.notes},
        errors=errors or {},
    )
    return html, status


@bp.get("/<int:customer_id>")
@login_required(staff=True)
def detail(user: User, customer_id: int) -> tuple[str, int]:
    return _page(user, customer_id)


@bp.post("/<int:customer_id>")
@login_required(staff=True)
def update(user: User, customer_id: int) -> Any:
    form = {key: request.form.get(key, "") for key in ("name", "notes")}
    try:
        customers.do_update_customer(user, customer_id, name=form["name"], notes=form["notes"])
    except DomainError as exc:
        if isinstance(exc, NotFound) and not exc.errors:
            raise
        errors = exc.errors or {"_form": [exc.message]}
        return _page(user, customer_id, form=form, errors=errors, status=exc.status_code)
    flash("Customer saved.", "success")
    return redirect(url_for(".detail", customer_id=customer_id))
