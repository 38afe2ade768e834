"""Custom ticket fields on the pages: the workspace's "Custom fields" panel (saved by a plain
form POST here), the portal's new-ticket form (customer-editable fields) and the values a
customer may see on their ticket. The checks and the saving are ``autocrm.fields`` and the
ticket services'; this module only turns form posts (``cf.<key>``) into values and back.

Request forms on the pages: the portal's and the help center's new-ticket pages first offer
the active forms (links with ``?form=<key>``, so no JavaScript is needed); once one is chosen
(``form`` in the query or the post) the page asks that form's fields, the required ones marked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, flash, redirect, request, url_for

from autocrm.errors import DomainError, NotFound
from autocrm.fields import forms, values
from autocrm.fields.models import FieldType, RequestForm, TicketField
from autocrm.people.models import User
from autocrm.tickets import services as tickets
from autocrm.tickets.models import Ticket
from web.session import login_required

bp = Blueprint("custom_fields", __name__)

PREFIX = "cf."
# ``?form=other``: none of the forms fits (the page asks what it asks without one).
NO_FORM = "other"


def form_values(user: User, *, editable_only: bool = False) -> dict[str, Any]:
    """The custom fields a page's form sent (``cf.<key>``), as the API would send them: only
    those the form showed (a checkbox left unticked is sent as nothing, so it counts too)."""
    sent = {k.removeprefix(PREFIX) for k in request.form if k.startswith(PREFIX)}
    shown = set(request.form.getlist("cf_shown"))
    result: dict[str, Any] = {}
    for definition in values.fields_for(user):
        if editable_only and not values.may_set(user, definition):
            continue
        if definition.key in sent or definition.key in shown:
            raw = request.form.getlist(PREFIX + definition.key)
            result[definition.key] = values.from_form(definition, raw)
    return result


@dataclass
class FormChoice:
    """The request forms a new-ticket page offers, and the one chosen (``picked``: a choice was
    made, possibly "none of these"); ``error``: the chosen one is unknown or retired."""

    offered: list[RequestForm] = field(default_factory=list)
    chosen: RequestForm | None = None
    picked: bool = False
    error: str = ""

    @property
    def must_pick(self) -> bool:
        """Whether the page is the picking step (forms exist, none chosen yet)."""
        return bool(self.offered) and not self.picked

    @property
    def ref(self) -> str:
        return self.chosen.key if self.chosen else (NO_FORM if self.picked else "")


def choose_form(user: User | None) -> FormChoice:
    """The choice the request names (``form`` in the query string or the posted form)."""
    choice = FormChoice(offered=forms.list_forms(user) if user else forms.active_forms())
    ref = (request.values.get("form") or "").strip()
    if not ref:
        return choice
    choice.picked = ref == NO_FORM
    if ref != NO_FORM:
        try:
            choice.chosen = forms.check_ticket_form(ref)
            choice.picked = True
        except DomainError as exc:
            choice.error = " ".join(exc.errors.get("form", [exc.message]))
    return choice


def asked_form_values(asked: list[tuple[TicketField, bool]]) -> dict[str, Any]:
    """What a page's form sent for the fields a request form asks (``cf.<key>``)."""
    return {
        definition.key: values.from_form(definition, request.form.getlist(PREFIX + definition.key))
        for definition, _ in asked
    }


def asked_rows(asked: list[tuple[TicketField, bool]]) -> list[dict[str, Any]]:
    """The controls of the fields a request form asks, what was typed kept on a re-render."""
    rows = []
    for definition, required in asked:
        raw = request.form.getlist(PREFIX + definition.key)
        if definition.type is FieldType.MULTI_SELECT:
            value: Any = raw
        else:
            value = raw[-1] if raw else None
        rows.append(
            {
                "field": definition,
                "key": definition.key,
                "type": definition.type.value,
                "value": value,
                "display": "",
                "editable": True,
                "required": required,
                "options": _options(definition, value),
            }
        )
    return rows


def _rows(ticket: Ticket | None, user: User, *, editable_only: bool) -> list[dict[str, Any]]:
    current = (ticket.custom_fields if ticket is not None else None) or {}
    rows = []
    for definition in values.fields_for(user):
        editable = values.may_set(user, definition)
        if editable_only and not editable:
            continue
        value = current.get(definition.key)
        rows.append(
            {
                "field": definition,
                "key": definition.key,
                "type": definition.type.value,
                "value": value,
                "display": values.display(definition, value),
                "editable": editable,
                "options": _options(definition, value),
            }
        )
    return rows


def _options(definition: TicketField, value: Any) -> list[dict[str, Any]]:
    """The options a form offers: the offered ones, and a retired one the ticket holds."""
    held = value if isinstance(value, list) else [value]
    return [o for o in definition.options if not o.get("retired") or o["value"] in held]


def _form_choices(ticket: Ticket) -> list[RequestForm]:
    """The forms a ticket may be moved to: the active ones, and the retired one it holds."""
    offered = forms.active_forms()
    if ticket.form_id is not None and all(f.id != ticket.form_id for f in offered):
        held = forms.find_form(ticket.form_id)
        offered += [held] if held is not None else []
    return offered


@bp.app_context_processor
def _helpers() -> dict[str, Any]:
    return {
        "custom_field_rows": _rows,
        "custom_field_types": FieldType,
        "request_form_choices": _form_choices,
    }


@bp.post("/agent/tickets/<int:ticket_id>/custom-fields")
@login_required(staff=True)
def save(user: User, ticket_id: int) -> Any:
    """The workspace panel's form: the values, at the version the page showed."""
    version = request.form.get("version", type=int)
    try:
        tickets.do_update_ticket(user, ticket_id, {"fields": form_values(user)}, version)
    except DomainError as exc:
        if isinstance(exc, NotFound):
            raise
        labels = {f.key: f.label for f in values.fields_for(user)}
        for name, messages in (exc.errors or {"": [exc.message]}).items():
            label = labels.get(name.removeprefix("fields."), "")
            flash(f"{label}: {' '.join(messages)}" if label else " ".join(messages), "error")
    else:
        flash("Custom fields saved.", "success")
    return redirect(url_for("workspace.ticket", ticket_id=ticket_id))


@bp.post("/agent/tickets/<int:ticket_id>/form")
@login_required(staff=True)
def change_form(user: User, ticket_id: int) -> Any:
    """The workspace's "Request form" control: the ticket's form, at the version the page
    showed (its team and values stay as they are)."""
    version = request.form.get("version", type=int)
    ref = request.form.get("form", "").strip() or None
    try:
        tickets.do_update_ticket(user, ticket_id, {"form": ref}, version)
    except DomainError as exc:
        if isinstance(exc, NotFound):
            raise
        flash(
            " ".join(m for ms in (exc.errors or {"": [exc.message]}).values() for m in ms), "error"
        )
    else:
        flash("Request form changed.", "success")
    return redirect(url_for("workspace.ticket", ticket_id=ticket_id))
