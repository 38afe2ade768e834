"""Staff open a ticket for a customer: a phone call, someone at the desk, an email forwarded
from a personal inbox. The requester is the person with the address given, or a new customer
made by the one path every door uses (``people.intake.find_or_create_customer``); the ticket is
theirs, opened by the agent, who is the trail's actor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from autocrm import policies
from autocrm.errors import Forbidden, InvalidInput
from autocrm.extensions import db
from autocrm.fields import forms
from autocrm.fields.models import RequestForm
from autocrm.people import users
from autocrm.people.intake import find_or_create_customer
from autocrm.people.models import User
from autocrm.tickets import priority_cap
from autocrm.tickets import services as tickets
from autocrm.tickets.models import Priority, Ticket
from autocrm.transaction import rolls_back_on_error

# The doors staff take a request in by, as stored in ``Ticket.channel``, and what people read.
CHANNELS = {
    "phone": "Phone",
    "walk-in": "Walk-in",
    "email-forward": "Forwarded email",
    "staff": "Other",
}
SOURCE = "ticket opened by staff"
MAX_DESCRIPTION = 50_000


@dataclass(frozen=True)
class StaffTicket:
    """What the agent typed (the page's form)."""

    email: str
    name: str
    subject: str
    description: str
    priority: str  # a Priority label
    team_id: int | None
    channel: str
    form: str | None = None  # a request form's id or key: its team when none is chosen
    fields: dict[str, Any] = field(default_factory=dict)  # custom field values, as the API's


def check_staff_ticket(form: StaffTicket) -> Priority:
    """InvalidInput naming every field that cannot be used; the priority otherwise."""
    errors: dict[str, list[str]] = {}
    try:
        users.check_email(users.normalize_email(form.email))
    except InvalidInput:
        errors["email"] = ["Enter the customer's address, like name@example.com."]
    if form.name.strip():
        try:
            users.check_name(form.name)
        except InvalidInput as exc:
            errors["name"] = exc.errors["name"]
    if not form.subject.strip():
        errors["subject"] = ["Say in a few words what it is about."]
    elif len(form.subject) > 200:
        errors["subject"] = ["Use at most 200 characters."]
    if not form.description.strip():
        errors["description"] = ["Write down what the customer needs."]
    elif len(form.description) > MAX_DESCRIPTION:
        errors["description"] = [f"Use at most {MAX_DESCRIPTION} characters."]
    if form.channel not in CHANNELS:
        errors["channel"] = ["Choose how the request came in."]
    priority = None
    try:
        priority = Priority.from_label(form.priority)
    except KeyError:
        errors["priority"] = ["Choose a priority."]
    if errors or priority is None:
        raise InvalidInput("Please correct the marked fields.", errors)
    return priority


def _check_form_and_fields(
    actor: User, form: StaffTicket
) -> tuple[Priority, RequestForm | None, dict[str, Any]]:
    """``check_staff_ticket`` and the request form's fields together: every error at once."""
    errors: dict[str, list[str]] = {}
    priority, request_form, custom = Priority.NORMAL, None, {}
    try:
        priority = check_staff_ticket(form)
    except InvalidInput as exc:
        errors.update(exc.errors)
    try:
        request_form = forms.check_ticket_form(form.form)
        custom = forms.check_form_values(actor, request_form, form.fields)
    except InvalidInput as exc:
        errors.update(exc.errors)
    if errors:
        raise InvalidInput("Please correct the marked fields.", errors)
    return priority, request_form, custom


@rolls_back_on_error
def do_open_for_customer(actor: User, form: StaffTicket) -> Ticket:
    """A new ticket of the customer with ``form.email`` (made now if nobody has it), opened by
    staff ``actor``; with a request form, its fields are checked (required ones filled) and its
    team takes the ticket when none was chosen."""
    if not policies.is_staff(actor):
        raise Forbidden("Only staff open tickets for customers.")
    priority, request_form, custom = _check_form_and_fields(actor, form)
    priority_cap.check_priority_allowed(actor, priority)
    tickets.check_fields_allowed(actor, ["requester_id", "team_id"], creating=True)
    requester = find_or_create_customer(form.email, form.name, SOURCE, equal_time=False)
    if not requester.active:
        raise InvalidInput(
            "This person's account is deactivated.",
            {"email": ["This account is deactivated: reactivate it first, or use another."]},
        )
    db.session.flush()
    ticket = tickets.create_ticket(
        actor,
        requester,
        subject=form.subject,
        description=form.description,
        priority=priority,
        channel=form.channel,
        team_id=form.team_id
        if form.team_id is not None or request_form is None
        else request_form.team_id,
        custom_fields=custom,
        form_id=request_form.id if request_form is not None else None,
    )
    db.session.commit()
    return ticket
