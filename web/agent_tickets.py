"""Agents open a ticket for a customer from the queue ("New ticket"): a phone call, a walk-in,
a forwarded email. The page posts to ``tickets.staff_intake``, which finds or creates the
customer by address; a refusal shows the form again with what was typed and each field's error.
A request form may be chosen first (``?form=<key>`` links): the page then asks its fields.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from autocrm.errors import DomainError, InvalidInput
from autocrm.fields import forms
from autocrm.listing import PageRequest
from autocrm.people import teams
from autocrm.people.models import User
from autocrm.tickets import priority_cap, staff_intake
from autocrm.tickets.models import Priority
from web import custom_fields
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
    user: User,
    form: dict[str, str],
    errors: dict[str, Any],
    status: int = 200,
    *,
    choice: custom_fields.FormChoice,
) -> tuple[str, int]:
    team_list = teams.list_teams(user, PageRequest(limit=200, sort="id")).items
    asked = forms.asked_fields(user, choice.chosen) if choice.chosen else []
    html = render_template(
        "agent/new_ticket.html",
        user=user,
        form=form,
        errors=errors,
        teams=sorted(team_list, key=lambda t: t.name.lower()),
        priorities=[p.label for p in priority_cap.allowed_priorities(user)],
        channels=staff_intake.CHANNELS,
        choice=choice,
        cf_rows=custom_fields.asked_rows(asked),
    )
    return html, status


@bp.get("/tickets/new")
@login_required(staff=True)
def new_ticket(user: User) -> tuple[str, int]:
    """``?form=<key>``: opened with a request form, its fields asked and its team chosen."""
    choice = custom_fields.choose_form(user)
    team_id: Any = user.team_ids[0] if len(user.team_ids) == 1 else ""
    if choice.chosen is not None and choice.chosen.team_id is not None:
        team_id = choice.chosen.team_id
    errors = {"form": [choice.error]} if choice.error else {}
    return _page(user, {**EMPTY, "team_id": str(team_id)}, errors, choice=choice)


@bp.post("/tickets/new")
@login_required(staff=True)
def create_ticket(user: User) -> Response | tuple[str, int]:
    form = {key: request.form.get(key, "") for key in EMPTY}
    choice = custom_fields.choose_form(user)
    asked = forms.asked_fields(user, choice.chosen) if choice.chosen else []
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
                form=choice.chosen.key if choice.chosen else None,
                fields=custom_fields.asked_form_values(asked),
            ),
        )
    except DomainError as exc:
        errors = exc.errors or {"form": [exc.message]}
        return _page(user, form, errors, exc.status_code, choice=choice)
    flash(f"Ticket #{ticket.id} opened for {ticket.requester.name}.", "success")
    return redirect(url_for("workspace.ticket", ticket_id=ticket.id))
