"""The customer portal: their tickets, opening one, a ticket's live conversation, profile."""

from __future__ import annotations

from flask import Blueprint, render_template

from autocrm.models import User
from autocrm.services import tickets
from web.session import login_required

bp = Blueprint("portal", __name__, url_prefix="/portal")


@bp.get("/")
@login_required(staff=False)
def dashboard(user: User) -> str:
    return render_template("portal/dashboard.html", user=user)


@bp.get("/tickets/<int:ticket_id>")
@login_required(staff=False)
def ticket(user: User, ticket_id: int) -> str:
    item = tickets.access_ticket_by_id(user, ticket_id)
    return render_template("portal/ticket.html", user=user, ticket=item)
