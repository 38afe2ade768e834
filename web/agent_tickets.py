"""Agents open a ticket for a customer from the queue ("New ticket"): a phone call, a walk-in,
a forwarded email. The page posts to ``tickets.staff_intake``, which finds or creates the
customer by address; a refusal shows the form again with what was typed and each field's error.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from autocrm.errors import DomainError, InvalidInput
from autocrm.listing import PageRequest
from autocrm.people import teams
from autocrm.people.models import User
from autocrm.tickets import priority_cap, staff_intake
from autocrm.tickets.models import Priority
from web.forms import parse_id
from web.session import login_required

bp = Blueprint("agent_tickets", __name__, url_prefix="/agent")

EMPTY = {
    "email": "",
    "name": "",
    "subject": "",
    "description": "",
    "priority": Priority.NORMAL.label,
    "team_id": "",
    "channel": "phone",
}


def _page(
    user: User, form: dict[str, str], errors: dict[str, Any], status: int = 200
) -> tuple[str, int]:
    team_list = teams.list_teams(user, PageRequest(limit=200, sort="id")).items
    html = render_template(
        "agent/new_ticket.html",
        user=user,
        form=form,
        errors=errors,
        teams=sorted(team_list, key=lambda t: t.name.lower()),
        priorities=[p.label for p in priority_cap.allowed_priorities(user)],
        channels=staff_intake.CHANNELS,
    )
    return html, status


@bp.get("/tickets/new")
@login_required(staff=True)
def new_ticket(user: User) -> tuple[str, int]:
    team_id = user.team_ids[0] if len(user.team_ids) == 1 else ""
    return _page(user, {**EMPTY, "team_id": str(team_id)}, {})


@bp.post("/tickets/new")
@login_required(staff=True)
def create_ticket(user: User) -> Response | tuple[str, int]:
    form = {key: request.form.get(key, "") for key in EMPTY}
    try:
        team_id = parse_id(form["team_id"]) if form["team_id"] else None
        if form["team_id"] and team_id is None:
            raise InvalidInput("Unknown team.", {"team_id": ["Choose a team from the list."]})
        ticket = staff_intake.do_open_for_customer(
            user,
            staff_intake.StaffTicket(
                email=form["email"],
                name=form["name"],
                subject=form["subject"],
                description=form["description"],
                priority=form["priority"],
                team_id=team_id,
                channel=form["channel"],
            ),
        )
    except DomainError as exc:
        return _page(user, form, exc.errors or {"form": [exc.message]}, exc.status_code)
    flash(f"Ticket #{ticket.id} opened for {ticket.requester.name}.", "success")
    return redirect(url_for("workspace.ticket", ticket_id=ticket.id))
