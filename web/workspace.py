"""The agent's ticket workspace: conversation, notes, canned responses, workflow actions."""

from __future__ import annotations

from flask import Blueprint, render_template

from autocrm.models import User
from autocrm.services import tickets
from web.session import login_required

bp = Blueprint("workspace", __name__, url_prefix="/agent/tickets")


@bp.get("/<int:ticket_id>")
@login_required(staff=True)
def ticket(user: User, ticket_id: int) -> str:
    item = tickets.access_ticket_by_id(user, ticket_id)
    return render_template("agent/ticket.html", user=user, ticket=item)
