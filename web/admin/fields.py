"""Admin console: custom ticket fields (list, add, edit, reorder, retire options, deactivate,
delete). Forms redirect on success or re-render with the input kept and each error at its
field; ``autocrm.fields.definitions`` checks admin rights and audits.

Options are edited as lines of text, in order: ``value`` or ``value | Label``, and a line
ending in ``(retired)`` is a retired option (kept on tickets, offered no more).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for

from autocrm.errors import DomainError, NotFound
from autocrm.fields import definitions
from autocrm.fields.models import FieldType, FieldVisibility, TicketField
from autocrm.people.models import User
from web.forms import form_errors
from web.session import admin_required

bp = Blueprint("admin_fields", __name__, url_prefix="/admin/fields")

TYPE_LABELS = {
    FieldType.TEXT: "Text",
    FieldType.LONG_TEXT: "Long text",
    FieldType.NUMBER: "Number",
    FieldType.DECIMAL: "Decimal",
    FieldType.DATE: "Date",
    FieldType.CHECKBOX: "Checkbox",
    FieldType.DROPDOWN: "Dropdown",
    FieldType.MULTI_SELECT: "Multi-select",
}
VISIBILITY_LABELS = {
    FieldVisibility.STAFF: "Staff only",
    FieldVisibility.CUSTOMER_VISIBLE: "Customers see it",
    FieldVisibility.CUSTOMER_EDITABLE: "Customers see and set it",
}
RETIRED = "(retired)"
EMPTY_FORM: dict[str, Any] = {
    "key": "",
    "label": "",
    "type": "text",
    "options": "",
    "help_text": "",
    "visibility": "staff",
    "required_to_solve": "",
    "active": "on",
}


def options_text(options: list[dict[str, Any]]) -> str:
    lines = []
    for option in options:
        line = option["value"]
        if option["label"] != option["value"]:
            line += f" | {option['label']}"
        lines.append(f"{line} {RETIRED}" if option.get("retired") else line)
    return "\n".join(lines)


def parse_options(text: str) -> list[dict[str, Any]]:
    options = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        retired = line.endswith(RETIRED)
        line = line.removesuffix(RETIRED).strip() if retired else line
        value, _, label = line.partition("|")
        options.append({"value": value.strip(), "label": label.strip(), "retired": retired})
    return options


def _form() -> dict[str, Any]:
    return {name: request.form.get(name, "").strip() for name in EMPTY_FORM}


def _fields(form: dict[str, Any], *, creating: bool) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "label": form["label"],
        "help_text": form["help_text"],
        "visibility": form["visibility"],
        "required_to_solve": bool(form["required_to_solve"]),
        "active": bool(form["active"]),
    }
    kind = form["type"]
    if creating:
        fields |= {"key": form["key"], "type": kind}
    if kind in (FieldType.DROPDOWN, FieldType.MULTI_SELECT) or form["options"]:
        fields["options"] = parse_options(form["options"])
    return fields


def _current(field: TicketField) -> dict[str, Any]:
    return {
        "key": field.key,
        "label": field.label,
        "type": field.type.value,
        "options": options_text(field.options),
        "help_text": field.help_text,
        "visibility": field.visibility.value,
        "required_to_solve": "on" if field.required_to_solve else "",
        "active": "on" if field.active else "",
    }


def _render(template: str, user: User, status: int = 200, **context: Any) -> tuple[str, int]:
    html = render_template(
        template,
        user=user,
        type_labels={t.value: label for t, label in TYPE_LABELS.items()},
        visibility_labels={v.value: label for v, label in VISIBILITY_LABELS.items()},
        **context,
    )
    return html, status


@bp.route("", methods=["GET", "POST"], endpoint="index")
@admin_required
def index(user: User) -> Any:
    form, errors = dict(EMPTY_FORM), {}
    if request.method == "POST":
        form = _form()
        try:
            created = definitions.do_create_field(user, _fields(form, creating=True))
        except DomainError as exc:
            errors = form_errors(exc)
        else:
            flash(f"Field “{created.label}” added.", "success")
            return redirect(url_for(".index"))
    return _render(
        "admin/fields.html",
        user,
        422 if errors else 200,
        items=definitions.list_fields(user, include_inactive=True),
        form=form,
        errors=errors,
    )


def _detail_page(
    user: User,
    field_id: int,
    *,
    form: dict[str, Any] | None = None,
    errors: dict[str, Any] | None = None,
    status: int = 200,
) -> tuple[str, int]:
    field = definitions.access_field_by_id(user, field_id)
    return _render(
        "admin/fields_detail.html",
        user,
        status,
        field=field,
        form=form or _current(field),
        errors=errors or {},
    )


@bp.get("/<int:field_id>")
@admin_required
def detail(user: User, field_id: int) -> tuple[str, int]:
    return _detail_page(user, field_id)


@bp.post("/<int:field_id>")
@admin_required
def update(user: User, field_id: int) -> Any:
    field = definitions.access_field_by_id(user, field_id)
    form = {**_form(), "key": field.key, "type": field.type.value}
    try:
        definitions.do_update_field(user, field_id, _fields(form, creating=False))
    except DomainError as exc:
        if isinstance(exc, NotFound) and not exc.errors:
            raise
        return _detail_page(
            user, field_id, form=form, errors=form_errors(exc), status=exc.status_code
        )
    flash("Field saved.", "success")
    return redirect(url_for(".detail", field_id=field_id))


@bp.post("/<int:field_id>/move")
@admin_required
def move(user: User, field_id: int) -> Any:
    """One place up or down in the order forms and pages show the fields in."""
    order = [f.id for f in definitions.list_fields(user, include_inactive=True)]
    if field_id not in order:
        raise NotFound("No such field.")
    at = order.index(field_id)
    to = at - 1 if request.form.get("direction") == "up" else at + 1
    if 0 <= to < len(order):
        order[at], order[to] = order[to], order[at]
        definitions.do_reorder_fields(user, order)
    return redirect(url_for(".index"))


@bp.post("/<int:field_id>/delete")
@admin_required
def delete(user: User, field_id: int) -> Any:
    try:
        definitions.do_delete_field(user, field_id)
    except DomainError as exc:
        if isinstance(exc, NotFound) and not exc.errors:
            raise
        flash(exc.message, "error")
        return redirect(url_for(".detail", field_id=field_id))
    flash("Field deleted.", "success")
    return redirect(url_for(".index"))
