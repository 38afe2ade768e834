"""Macro pages: managing macros (``/agent/macros``; the old ``/agent/canned`` addresses
redirect here) and, in the ticket workspace, previewing one on a ticket and applying it.

The workspace's picker works without JavaScript (``?macro=<id>`` shows the preview and puts a
text-only macro's reply in the reply box); ``static/js/workspace.js`` fetches the preview
fragment instead of reloading. A macro with changes is applied by one POST with the ticket's
version; a text-only one goes into the reply box, to be edited and sent.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from autocrm import policies
from autocrm.errors import DomainError, NotFound
from autocrm.macros import applying
from autocrm.macros import services as macros
from autocrm.macros.models import Macro, MacroScope
from autocrm.people import users
from autocrm.people.models import User
from autocrm.tickets.models import Priority
from web.forms import parse_id
from web.session import login_required

bp = Blueprint("macro_pages", __name__, url_prefix="/agent")


# -- the picker in the ticket workspace -------------------------------------------------------


def preview_context(user: User, ticket_id: int, macro_id: int) -> dict[str, Any]:
    """What ``agent/_ws_macro_preview.html`` shows (NotFound for a macro or ticket the user
    may not see)."""
    return {"preview": applying.preview_by_id(user, ticket_id, macro_id)}


@bp.get("/tickets/<int:ticket_id>/macros/<int:macro_id>/preview")
@login_required(staff=True)
def preview(user: User, ticket_id: int, macro_id: int) -> Any:
    """The preview as an HTML fragment, for the workspace's script."""
    try:
        context = preview_context(user, ticket_id, macro_id)
    except DomainError as exc:
        return render_template("agent/_ws_macro_error.html", message=exc.message), exc.status_code
    return render_template("agent/_ws_macro_preview.html", **context)


@bp.get("/tickets/<int:ticket_id>/macros/<int:macro_id>.json")
@bp.get("/tickets/<int:ticket_id>/canned/<int:macro_id>.json")  # the canned responses' address
@login_required(staff=True)
def preview_json(user: User, ticket_id: int, macro_id: int) -> Any:
    """A macro's reply with the placeholders filled in for this ticket, and its changes."""
    try:
        plan = applying.preview_by_id(user, ticket_id, macro_id)
    except DomainError as exc:
        return jsonify({"ok": False, "error": exc.message}), exc.status_code
    changes = [
        {"field": c.field, "description": c.description, "possible": c.possible, "reason": c.reason}
        for c in plan.changes
    ]
    return jsonify(
        {"ok": True, "body": plan.body, "text_only": plan.macro.text_only, "changes": changes}
    )


@bp.post("/tickets/<int:ticket_id>/macros/<int:macro_id>/apply")
@login_required(staff=True)
def apply(user: User, ticket_id: int, macro_id: int) -> Response:
    version = parse_id(request.form.get("version"))
    try:
        applying.do_apply_macro(user, ticket_id, macro_id, expected_version=version)
    except NotFound:
        raise
    except DomainError as exc:
        flash(exc.message, "error")
        return redirect(url_for("workspace.ticket", ticket_id=ticket_id, macro=macro_id))
    flash("Macro applied.", "success")
    return redirect(url_for("workspace.ticket", ticket_id=ticket_id))


# -- managing macros ---------------------------------------------------------------------------


def _tags(raw: str | None) -> list[str]:
    return [t.strip() for t in (raw or "").replace(";", ",").split(",") if t.strip()]


def _form() -> dict[str, Any]:
    """What the management form sent, as ``do_create_macro`` takes it (bad ids stay strings
    and are reported by the service)."""
    shared = request.form.get("shared_with", "personal")
    scope, team_id = shared, None
    if shared.startswith("team:"):
        scope, team_id = MacroScope.TEAM.value, parse_id(shared.removeprefix("team:")) or -1
    actions: dict[str, Any] = {}
    if request.form.get("priority"):
        actions["priority"] = request.form["priority"]
    if request.form.get("team_id"):
        actions["team_id"] = parse_id(request.form["team_id"]) or -1
    assignee = request.form.get("assignee", "")
    if assignee:
        actions["assignee_id"] = (
            None
            if assignee == "none"
            else assignee
            if assignee == macros.ME
            else parse_id(assignee)
        )
    for key in ("add_tags", "remove_tags"):
        if _tags(request.form.get(key)):
            actions[key] = _tags(request.form.get(key))
    if request.form.get("transition"):
        actions["transition"] = request.form["transition"]
    return {
        "title": request.form.get("title", ""),
        "body": request.form.get("body", ""),
        "scope": scope,
        "team_id": team_id,
        "actions": actions,
    }


def _form_of(macro: Macro) -> dict[str, Any]:
    return {
        "title": macro.title,
        "body": macro.body,
        "scope": macro.scope.value,
        "team_id": macro.team_id,
        "actions": macro.actions,
    }


def _shared_with(form: dict[str, Any]) -> str:
    return f"team:{form['team_id']}" if form["scope"] == "team" else str(form["scope"])


def _choices(user: User) -> dict[str, Any]:
    staff = users.active_staff()
    return {
        "team_choices": macros.manageable_teams(user),
        "all_teams": macros.team_choices_for_changes(user),
        "share_with_everyone": policies.can_share_macro_with_everyone(user),
        "staff": staff,
        "priorities": [p.label for p in Priority],
        "transitions": macros.transition_names(),
        "placeholders": macros.PLACEHOLDERS,
        "shared_with": _shared_with,
        "me": macros.ME,
    }


def _default_form() -> dict[str, Any]:
    return {"title": "", "body": "", "scope": "personal", "team_id": None, "actions": {}}


def _render_list(
    user: User, *, form: dict[str, Any] | None = None, errors: Any = None, status: int = 200
) -> tuple[str, int]:
    html = render_template(
        "agent/macros.html",
        user=user,
        macros=macros.list_macros(user),
        can_manage=lambda m: policies.can_manage_macro(user, m),
        form=form or _default_form(),
        errors=errors or {},
        **_choices(user),
    )
    return html, status


@bp.get("/macros")
@login_required(staff=True)
def index(user: User) -> tuple[str, int]:
    return _render_list(user)


@bp.post("/macros")
@login_required(staff=True)
def create(user: User) -> Any:
    form = _form()
    try:
        macros.do_create_macro(user, **form)
    except DomainError as exc:
        flash(exc.message, "error")
        return _render_list(user, form=form, errors=exc.errors, status=exc.status_code)
    flash("Macro saved.", "success")
    return redirect(url_for(".index"))


def _render_edit(
    user: User, macro: Macro, form: dict[str, Any], errors: Any, status: int = 200
) -> tuple[str, int]:
    html = render_template(
        "agent/macro_edit.html", user=user, macro=macro, form=form, errors=errors, **_choices(user)
    )
    return html, status


@bp.get("/macros/<int:macro_id>/edit")
@login_required(staff=True)
def edit(user: User, macro_id: int) -> Any:
    macro = macros.access_macro_by_id(user, macro_id)
    if not policies.can_manage_macro(user, macro):
        flash("Only admins may change macros shared with everyone.", "error")
        return redirect(url_for(".index"))
    return _render_edit(user, macro, _form_of(macro), {})


@bp.post("/macros/<int:macro_id>/edit")
@login_required(staff=True)
def update(user: User, macro_id: int) -> Any:
    form = _form()
    try:
        macros.do_update_macro(user, macro_id, **form)
    except NotFound:
        raise
    except DomainError as exc:
        flash(exc.message, "error")
        macro = macros.access_macro_by_id(user, macro_id)
        return _render_edit(user, macro, form, exc.errors, exc.status_code)
    flash("Macro saved.", "success")
    return redirect(url_for(".index"))


@bp.post("/macros/<int:macro_id>/delete")
@login_required(staff=True)
def delete(user: User, macro_id: int) -> Any:
    try:
        macros.do_delete_macro(user, macro_id)
    except NotFound:
        raise
    except DomainError as exc:
        flash(exc.message, "error")
        return redirect(url_for(".index"))
    flash("Macro deleted.", "success")
    return redirect(url_for(".index"))


# -- the canned responses' old addresses ------------------------------------------------------


@bp.get("/canned")
def canned_list() -> Response:
    return redirect(url_for(".index"), code=301)


@bp.get("/canned/<int:macro_id>/edit")
def canned_edit(macro_id: int) -> Response:
    return redirect(url_for(".edit", macro_id=macro_id), code=301)
