"""The customer page agents open from a ticket's requester (``autocrm.people.customers``):
details, organization, tickets, and the name and notes agents edit; and inviting a customer
(``autocrm.people.intake.do_invite_customer``). The forms re-render with what was typed and
each error at its field, or redirect when done."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for

from autocrm.errors import DomainError, NotFound
from autocrm.people import customers, intake
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


@bp.route("/invite", methods=["GET", "POST"])
@login_required(staff=True)
def invite(user: User) -> Any:
    if request.method == "GET":
        form = {"email": request.args.get("email", ""), "name": request.args.get("name", "")}
        return render_template("agent/customer_invite.html", user=user, form=form, errors={})
    form = {key: request.form.get(key, "") for key in ("email", "name")}
    try:
        customer = intake.do_invite_customer(user, form["email"], form["name"])
    except DomainError as exc:
        errors = exc.errors or {"_form": [exc.message]}
        html = render_template("agent/customer_invite.html", user=user, form=form, errors=errors)
        return html, exc.status_code
    flash(f"Invitation sent to {customer.email}.", "success")
    return redirect(url_for(".detail", customer_id=customer.id))


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
