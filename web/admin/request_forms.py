"""Admin console: request forms (list, add, edit, retire, delete). What a customer picks when
asking; each names the fields asked, in order, required or optional, and the team its tickets
go to. Forms redirect on success or re-render with the input kept and each error at its
field; ``autocrm.fields.forms`` checks admin rights and audits.

The fields are a table of every ticket field with "Not asked / Optional / Required" and an
order number each, so the page works without JavaScript.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for

from autocrm.errors import DomainError, NotFound
from autocrm.fields import definitions, forms
from autocrm.fields.models import RequestForm
from autocrm.listing import PageRequest
from autocrm.people import teams
from autocrm.people.models import User
from web.admin.fields import TYPE_LABELS, VISIBILITY_LABELS
from web.forms import form_errors
from web.session import admin_required

bp = Blueprint("admin_forms", __name__, url_prefix="/admin/forms")

ASK_CHOICES = {"": "Not asked", "optional": "Optional", "required": "Required"}
TEXT_FIELDS = ("key", "name", "description", "team_id", "position", "active")
EMPTY_FORM: dict[str, Any] = {
    "key": "",
    "name": "",
    "description": "",
    "team_id": "",
    "position": "",
    "active": "on",
    "ask": {},
    "order": {},
}


def _posted() -> dict[str, Any]:
    form = {name: request.form.get(name, "").strip() for name in TEXT_FIELDS}
    form["ask"] = {
        k.removeprefix("ask."): v for k, v in request.form.items() if k.startswith("ask.")
    }
    form["order"] = {
        k.removeprefix("order."): v.strip()
        for k, v in request.form.items()
        if k.startswith("order.")
    }
    return form


def _number(text: str) -> int | str:
    """A number typed on the page, as the service takes it (text it refuses by name)."""
    return int(text) if text.isdigit() else text


def _items(form: dict[str, Any], field_order: list[str]) -> list[dict[str, Any]]:
    """The asked fields in the order typed (blank: after the numbered ones, in field order)."""
    asked = [key for key in field_order if form["ask"].get(key) in ("optional", "required")]

    def rank(key: str) -> tuple[int, int]:
        typed = form["order"].get(key, "")
        return (int(typed) if typed.isdigit() else 10**6, field_order.index(key))

    return [{"key": k, "required": form["ask"][k] == "required"} for k in sorted(asked, key=rank)]


def _fields(form: dict[str, Any], field_order: list[str], *, creating: bool) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "name": form["name"],
        "description": form["description"],
        "active": bool(form["active"]),
        "team_id": _number(form["team_id"]) if form["team_id"] else None,
        "fields": _items(form, field_order),
    }
    if form["position"]:
        fields["position"] = _number(form["position"])
    if creating:
        fields["key"] = form["key"]
    return fields


def _current(found: RequestForm) -> dict[str, Any]:
    return {
        "key": found.key,
        "name": found.name,
        "description": found.description,
        "team_id": str(found.team_id or ""),
        "position": str(found.position),
        "active": "on" if found.active else "",
        "ask": {i["key"]: "required" if i.get("required") else "optional" for i in found.items},
        "order": {i["key"]: str(n) for n, i in enumerate(found.items, start=1)},
    }


def _render(template: str, user: User, status: int = 200, **context: Any) -> tuple[str, int]:
    fields = definitions.list_fields(user, include_inactive=True)
    html = render_template(
        template,
        user=user,
        all_fields=fields,
        field_labels={f.key: f.label for f in fields},
        type_labels={t.value: label for t, label in TYPE_LABELS.items()},
        visibility_labels={v.value: label for v, label in VISIBILITY_LABELS.items()},
        ask_choices=ASK_CHOICES,
        teams=sorted(
            teams.list_teams(user, PageRequest(limit=200)).items, key=lambda t: t.name.lower()
        ),
        **context,
    )
    return html, status


def _field_order(user: User) -> list[str]:
    return [f.key for f in definitions.list_fields(user, include_inactive=True)]


@bp.route("", methods=["GET", "POST"], endpoint="index")
@admin_required
def index(user: User) -> Any:
    form, errors = dict(EMPTY_FORM), {}
    if request.method == "POST":
        form = _posted()
        try:
            created = forms.do_create_form(user, _fields(form, _field_order(user), creating=True))
        except DomainError as exc:
            errors = form_errors(exc)
        else:
            flash(f"Form “{created.name}” added.", "success")
            return redirect(url_for(".index"))
    items = forms.list_forms(user, include_retired=True)
    return _render(
        "admin/request_forms.html",
        user,
        422 if errors else 200,
        items=items,
        team_names=forms.team_names(items),
        form=form,
        errors=errors,
    )


def _detail_page(
    user: User,
    form_id: int,
    *,
    form: dict[str, Any] | None = None,
    errors: dict[str, Any] | None = None,
    status: int = 200,
) -> tuple[str, int]:
    found = forms.access_form_by_id(user, form_id)
    return _render(
        "admin/request_forms_detail.html",
        user,
        status,
        found=found,
        form=form or _current(found),
        errors=errors or {},
    )


@bp.get("/<int:form_id>")
@admin_required
def detail(user: User, form_id: int) -> tuple[str, int]:
    return _detail_page(user, form_id)


@bp.post("/<int:form_id>")
@admin_required
def update(user: User, form_id: int) -> Any:
    found = forms.access_form_by_id(user, form_id)
    form = {**_posted(), "key": found.key}
    try:
        forms.do_update_form(user, form_id, _fields(form, _field_order(user), creating=False))
    except DomainError as exc:
        if isinstance(exc, NotFound) and not exc.errors:
            raise
        return _detail_page(
            user, form_id, form=form, errors=form_errors(exc), status=exc.status_code
        )
    flash("Form saved.", "success")
    return redirect(url_for(".detail", form_id=form_id))


@bp.post("/<int:form_id>/delete")
@admin_required
def delete(user: User, form_id: int) -> Any:
    try:
        forms.do_delete_form(user, form_id)
    except DomainError as exc:
        if isinstance(exc, NotFound) and not exc.errors:
            raise
        flash(exc.message, "error")
        return redirect(url_for(".detail", form_id=form_id))
    flash("Form deleted.", "success")
    return redirect(url_for(".index"))
