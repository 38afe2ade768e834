"""Admin console: workflows (versions, the draft editor, diagram, simulation, publishing) and
the SLA policy each workflow carries.

Pages work without JavaScript: the editor is one form of indexed fields (``workflow_form``)
that posts the whole draft; ``static/js/workflow_editor.js`` adds and removes rows in place and
switches between the form and the raw YAML/JSON view. Saving keeps the draft as entered even
when it is invalid (``drafts.do_save_draft``); the page then answers 422 and shows each
validation error at its field. Simulating is a GET (it changes nothing); publishing a POST.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for

from autocrm.engine import drafts, publishing, simulation
from autocrm.engine.models import Workflow
from autocrm.errors import Conflict, DomainError, InvalidInput
from autocrm.fields import values as field_values
from autocrm.people.models import User
from web.admin import workflow_form
from web.session import admin_required
from workflows import text as definition_text

bp = Blueprint("admin_workflows", __name__, url_prefix="/admin/workflows")

SVG = "image/svg+xml"
MAX_NAME = 80
MAX_TEXT = 5000
DEFAULT_SIMULATED = 50
VIEWS = ("form", "raw")
START_BUNDLED, START_EMPTY = "bundled", "empty"
# What an action's value field holds; actions missing here take no value.
ACTION_HINTS = {
    "transition": "transition name",
    "set_priority": "low, normal, high or urgent",
    "assign_team": "team id (a number)",
    "assign_agent": "user id (a number)",
    "add_tag": "the tag",
    "notify": "requester, assignee, team or team_lead",
    "call_webhook": "webhook id (a number, from Admin > Webhooks)",
    "set_field": "key=value of a ticket field, e.g. product=printer (Admin > Ticket fields)",
}
METRIC_LABELS = {"first_response": "First response", "resolution": "Resolution"}


# -- the list, and creating a workflow ------------------------------------------------------------


@bp.get("/")
@admin_required
def index(user: User) -> tuple[str, int]:
    return _render_index(user)


def _render_index(
    user: User,
    *,
    form: dict[str, str] | None = None,
    errors: dict[str, list[str]] | None = None,
    status: int = 200,
) -> tuple[str, int]:
    workflows = drafts.list_workflows(user)
    versions = drafts.list_versions(user)
    problems = {w.id: len(drafts.check_draft(user, w.id).errors) for w in workflows if w.has_draft}
    starts = [
        (f"version:{w.id}:{v.number}", f"{w.name}, version {v.number}")
        for w in workflows
        for v in versions.get(w.id, [])
    ]
    html = render_template(
        "admin/workflows.html",
        user=user,
        workflows=workflows,
        versions=versions,
        problems=problems,
        starts=starts,
        form=form or {"name": "", "description": "", "start": START_BUNDLED},
        errors=errors or {},
    )
    return html, status


@bp.post("/")
@admin_required
def create(user: User) -> Any:
    form = {key: request.form.get(key, "") for key in ("name", "description", "start")}
    try:
        name = form["name"].strip()
        _check_length("name", name, MAX_NAME)
        _check_length("description", form["description"], MAX_TEXT)
        workflow = drafts.do_create_workflow(
            user,
            name=name,
            description=form["description"].strip(),
            definition=_starting_definition(user, form["start"], name),
        )
    except InvalidInput as exc:
        return _render_index(user, form=form, errors=exc.errors, status=exc.status_code)
    flash(f"Workflow “{workflow.name}” created; edit its draft, then publish it.", "success")
    return redirect(url_for(".draft", workflow_id=workflow.id))


def _starting_definition(user: User, start: str, name: str) -> dict[str, Any] | None:
    if start == START_BUNDLED:
        return None  # do_create_workflow copies the bundled default
    if start == START_EMPTY:
        return drafts.empty_definition(name)
    kind, _, rest = start.partition(":")
    workflow_id, _, number = rest.partition(":")
    if kind == "version" and workflow_id.isdecimal() and number.isdecimal():
        try:
            version = drafts.access_version(user, int(workflow_id), int(number))
        except DomainError:
            pass
        else:
            return {**version.definition, "name": name}
    raise InvalidInput("Choose where the workflow starts.", {"start": ["Choose from the list."]})


def _check_length(field: str, value: str, limit: int) -> None:
    if len(value) > limit:
        raise InvalidInput(f"{field} is too long.", {field: [f"At most {limit} characters."]})


# -- published versions ---------------------------------------------------------------------------


@bp.get("/<int:workflow_id>/versions/<int:number>")
@admin_required
def version(user: User, workflow_id: int, number: int) -> str:
    item = drafts.access_version(user, workflow_id, number)
    summaries = drafts.list_versions(user, workflow_id).get(workflow_id, [])
    summary = next(s for s in summaries if s.number == number)
    return render_template(
        "admin/workflow_version.html",
        user=user,
        workflow=item.workflow,
        version=item,
        summary=summary,
        is_current=item.workflow.is_default and summaries[0].number == number,
        definition=item.definition,
        show_value=workflow_form.show_value,
        show_number=workflow_form.show_number,
        action_param=workflow_form.action_param,
        priorities=workflow_form.PRIORITIES,
        metrics=workflow_form.METRICS,
        weekdays=workflow_form.CHOICES["weekdays"],
    )


@bp.get("/<int:workflow_id>/versions/<int:number>/diagram.svg")
@admin_required
def version_diagram(user: User, workflow_id: int, number: int) -> Response:
    return Response(drafts.version_diagram(user, workflow_id, number), mimetype=SVG)


# -- the draft editor -----------------------------------------------------------------------------


@bp.get("/<int:workflow_id>/draft")
@admin_required
def draft(user: User, workflow_id: int) -> tuple[str, int]:
    workflow = drafts.access_workflow_by_id(user, workflow_id)
    view = request.args.get("view", "form")
    fmt = request.args.get("format", "yaml")
    return _render_stored_draft(
        user,
        workflow,
        view=view if view in VIEWS else "form",
        raw_format=fmt if fmt in definition_text.RAW_FORMATS else "yaml",
    )


def _render_stored_draft(user: User, workflow: Workflow, **shown: Any) -> tuple[str, int]:
    """The editor on the draft as stored (or the version a new draft starts from): the page
    itself, and the answer to input that could not be read as a definition at all."""
    start = drafts.draft_to_edit(user, workflow.id)
    return _render_editor(
        user, workflow, start.definition, saved=start.saved, based_on=start.based_on, **shown
    )


def _render_editor(
    user: User,
    workflow: Workflow,
    definition: Any,
    *,
    saved: bool = True,
    based_on: int | None = None,
    view: str = "form",
    raw_format: str = "yaml",
    raw_text: str | None = None,
    raw_errors: list[str] | None = None,
    form_errors: dict[str, list[str]] | None = None,
    status: int = 200,
) -> tuple[str, int]:
    form = workflow_form.form_from_definition(definition)
    errors = _definition_errors(user, workflow.id, definition)
    placed = workflow_form.place_errors({**errors, **(form_errors or {})}, form)
    html = render_template(
        "admin/workflow_draft.html",
        user=user,
        workflow=workflow,
        saved=saved,
        based_on=based_on,
        form=form,
        values=form.values,
        placed=placed,
        at=placed.at,
        errors=errors,
        view=view,
        raw_format=raw_format,
        raw_text=definition_text.dump_raw(definition, raw_format) if raw_text is None else raw_text,
        raw_errors=raw_errors or [],
        # Rule conditions may also read the admins' custom fields (``fields.<key>``).
        choices={
            **workflow_form.CHOICES,
            "fields": workflow_form.CHOICES["fields"]
            + tuple(f"fields.{key}" for key in field_values.defined_fields()),
        },
        action_hints=ACTION_HINTS,
    )
    return html, status


def _definition_errors(user: User, workflow_id: int, definition: Any) -> dict[str, list[str]]:
    if not isinstance(definition, dict):
        return {"_schema": ["The draft must be a mapping (name, states, transitions, ...)."]}
    return drafts.check_draft(user, workflow_id, definition).errors


@bp.post("/<int:workflow_id>/draft")
@admin_required
def save_draft(user: User, workflow_id: int) -> Any:
    workflow = drafts.access_workflow_by_id(user, workflow_id)
    try:
        definition = workflow_form.definition_from_form(request.form)
    except InvalidInput as exc:
        flash(exc.message, "error")
        return _render_stored_draft(user, workflow, form_errors=exc.errors, status=exc.status_code)
    return _saved(user, workflow, definition, view="form")


@bp.post("/<int:workflow_id>/draft/raw")
@admin_required
def save_raw(user: User, workflow_id: int) -> Any:
    workflow = drafts.access_workflow_by_id(user, workflow_id)
    text = request.form.get("raw", "")
    fmt = request.form.get("format", "yaml")
    fmt = fmt if fmt in definition_text.RAW_FORMATS else "yaml"
    try:
        definition = definition_text.parse_raw(text, fmt)
    except definition_text.DefinitionTextError as exc:
        return _render_stored_draft(
            user,
            workflow,
            view="raw",
            raw_format=fmt,
            raw_text=text,
            raw_errors=[str(exc)],
            status=422,
        )
    return _saved(user, workflow, definition, view="raw", raw_format=fmt, raw_text=text)


def _saved(
    user: User,
    workflow: Workflow,
    definition: dict[str, Any],
    *,
    view: str,
    raw_format: str = "yaml",
    raw_text: str | None = None,
) -> Any:
    check = drafts.do_save_draft(user, workflow.id, definition)
    if check.valid:
        flash("Draft saved. It is valid: simulate it, then publish.", "success")
        return redirect(url_for(".draft", workflow_id=workflow.id, view=view, format=raw_format))
    count = sum(len(messages) for messages in check.errors.values())
    flash(f"Draft saved as entered, with {_problems(count)} to fix before publishing.", "error")
    return _render_editor(
        user,
        workflow,
        check.draft,
        view=view,
        raw_format=raw_format,
        raw_text=raw_text,
        status=422,
    )


def _problems(count: int) -> str:
    return f"{count} problem" + ("" if count == 1 else "s")


@bp.get("/<int:workflow_id>/draft/diagram.svg")
@admin_required
def draft_diagram(user: User, workflow_id: int) -> Response:
    try:
        document = drafts.draft_diagram(user, workflow_id)
    except InvalidInput as exc:
        return Response(exc.message, status=exc.status_code, mimetype="text/plain")
    response = Response(document, mimetype=SVG)
    response.headers["Cache-Control"] = "no-store"  # the draft changes under the same URL
    return response


# -- simulating and publishing --------------------------------------------------------------------


@bp.get("/<int:workflow_id>/draft/review")
@admin_required
def review(user: User, workflow_id: int) -> tuple[str, int]:
    workflow = drafts.access_workflow_by_id(user, workflow_id)
    if "limit" not in request.args:
        return _render_review(user, workflow)
    raw_limit = request.args.get("limit", "")
    try:
        limit = _simulation_limit(raw_limit)
        report = simulation.simulate_draft(user, workflow_id, limit)
    except InvalidInput as exc:
        return _render_review(
            user,
            workflow,
            limit=raw_limit,
            simulate_errors=exc.errors.get("limit") or [exc.message],
            status=exc.status_code,
        )
    return _render_review(user, workflow, limit=raw_limit, report=report)


def _simulation_limit(raw: str) -> int:
    top = simulation.MAX_SIMULATED_TICKETS
    text = raw.strip()
    if not text.isdecimal() or not 1 <= int(text) <= top:
        raise InvalidInput(
            "Choose how many tickets to replay.", {"limit": [f"A whole number from 1 to {top}."]}
        )
    return int(text)


def _render_review(
    user: User,
    workflow: Workflow,
    *,
    limit: str = str(DEFAULT_SIMULATED),
    simulate_errors: list[str] | None = None,
    report: Any = None,
    publish: dict[str, Any] | None = None,
    publish_errors: dict[str, list[str]] | None = None,
    notice: str | None = None,
    status: int = 200,
) -> tuple[str, int]:
    draft = workflow.draft
    form = workflow_form.form_from_definition(draft)
    errors = _definition_errors(user, workflow.id, draft) if draft is not None else {}
    placed = workflow_form.place_errors(errors, form)
    diagram_error = None
    if draft is not None:
        try:
            drafts.draft_diagram(user, workflow.id)
        except InvalidInput as exc:
            diagram_error = exc.message
    in_flight = drafts.in_flight_states(user, workflow.id)
    states = [s["name"] for s in form.values["states"] if s["name"]]
    versions = drafts.list_versions(user, workflow.id).get(workflow.id, [])
    html = render_template(
        "admin/workflow_review.html",
        user=user,
        workflow=workflow,
        has_draft=draft is not None,
        placed=placed,
        diagram_error=diagram_error,
        next_number=(versions[0].number if versions else 0) + 1,
        limit=limit,
        max_limit=simulation.MAX_SIMULATED_TICKETS,
        simulate_errors=simulate_errors or [],
        report=report,
        subjects=_subjects(user, report),
        metric_labels=METRIC_LABELS,
        in_flight=in_flight,
        states=states,
        publish=publish or _default_publish(in_flight, states),
        publish_errors=publish_errors or {},
        notice=notice,
    )
    return html, status


def _subjects(user: User, report: Any) -> dict[int, str]:
    if report is None:
        return {}
    return drafts.ticket_subjects(user, [t.ticket_id for t in report.tickets])


def _default_publish(in_flight: dict[str, int], states: list[str]) -> dict[str, Any]:
    return {
        "note": "",
        "make_default": False,
        "move_tickets": False,
        "state_map": {state: state if state in states else "" for state in in_flight},
    }


@bp.post("/<int:workflow_id>/draft/publish")
@admin_required
def publish(user: User, workflow_id: int) -> Any:
    workflow = drafts.access_workflow_by_id(user, workflow_id)
    submitted = {
        "note": request.form.get("note", ""),
        "make_default": bool(request.form.get("make_default")),
        "move_tickets": bool(request.form.get("move_tickets")),
        "state_map": {
            key.removeprefix("state_map."): value.strip()
            for key, value in request.form.items()
            if key.startswith("state_map.") and 0 < len(key) - len("state_map.") <= 50
        },
    }
    try:
        _check_length("note", submitted["note"], MAX_TEXT)
        state_map = {
            state: target
            for state, target in submitted["state_map"].items()
            if target and len(target) <= 50
        }
        version = publishing.do_publish(
            user,
            workflow_id,
            note=submitted["note"].strip(),
            make_default=submitted["make_default"],
            state_map=state_map if submitted["move_tickets"] else None,
        )
    except (InvalidInput, Conflict) as exc:
        return _render_review(
            user,
            workflow,
            publish={**_default_publish({}, []), **submitted},
            publish_errors=exc.errors,
            notice=exc.message,
            status=exc.status_code,
        )
    flash(f"Published {workflow.name} version {version.number}.", "success")
    return redirect(url_for(".index", _anchor=f"workflow-{workflow_id}"))
