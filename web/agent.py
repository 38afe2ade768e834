"""The agent's live ticket queue: views (built-in and saved, ``autocrm.tickets.views``) in a
sidebar with their counts, filters, sorting, bulk actions.

The page is the list ``tickets.list_tickets`` gives for the chosen view's filters narrowed by
the GET form's query parameters (the same filters as the REST API); queue.js keeps it live
from ``ticket_updated`` socket events by re-fetching changed rows from ``/agent/rows`` with
the same parameters, so a row is drawn by one template whichever way it arrives, and the
sidebar's counts from ``/agent/view-counts``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from autocrm import policies
from autocrm.columns import utcnow
from autocrm.errors import DomainError, Forbidden, InvalidInput, NotFound
from autocrm.listing import PageRequest
from autocrm.people import organizations, teams
from autocrm.people.models import User
from autocrm.tickets import queue, views
from autocrm.tickets import services as tickets
from autocrm.tickets.models import Priority, Ticket
from web import queue_export, queue_fields
from web.forms import parse_id
from web.session import login_required

bp = Blueprint("agent", __name__, url_prefix="/agent")

SORT_OPTIONS = views.SORTS
SCOPE_LABELS = {"personal": "Just me", "team": "My team", "global": "Everyone"}
SLA_LABELS = {
    "breached": "Overdue",
    "due_soon": "Due soon",
    "on_track": "On track",
    "none": "No running SLA",
}
BULK_ACTIONS = {"assign": "Assign to", "set_priority": "Set priority", "transition": "Transition"}
FILTER_KEYS = (
    "view",
    "q",
    "status",
    "priority",
    "assignee_id",
    "team_id",
    "organization_id",
    "tag",
    "sla",
    "sort",
)
PAGE_SIZE = 50
SLA_SCAN_PAGES = 10  # the SLA filter reads at most this many pages to fill one
MAX_ROW_IDS = 50
MAX_BULK = 500


@dataclass
class QueueQuery:
    """The GET form's parameters: what the user typed (to refill the form), what was wrong
    with it, and the filters it means."""

    values: dict[str, str]
    view: views.View
    errors: dict[str, str] = field(default_factory=dict)
    filters: tickets.TicketFilters = field(default_factory=tickets.TicketFilters)
    sla: str | None = None
    sort: str = "-updated_at"
    cursor: str | None = None
    # Custom fields: the form's field filters, the columns shown, the definitions.
    fields: queue_fields.QueueFields = field(default_factory=lambda: queue_fields.QueueFields({}))
    # The current workflow (its states for the status filter), read once for the request.
    workflow: queue.CompiledWorkflow | None = None

    @property
    def query_string(self) -> str:
        """The filters as a query string (no cursor): saved views and row fetches use it."""
        pairs = [(k, v) for k, v in self.values.items() if v and k in FILTER_KEYS]
        return urlencode(pairs + self.fields.query_pairs())

    @property
    def narrowed(self) -> bool:
        """Whether the form narrows the view (search included)."""
        mine = any(self.values[k] for k in FILTER_KEYS if k not in ("view", "sort"))
        return mine or bool(self.fields.filters)

    @property
    def narrowing(self) -> int:
        """How many of the "Filters" disclosure's fields narrow the view (it opens if any)."""
        mine = sum(bool(self.values[k]) for k in FILTER_KEYS if k not in ("view", "sort", "q"))
        return mine + len(self.fields.filters)

    @property
    def saveable_filters(self) -> dict[str, Any]:
        """The view's filters narrowed by the form, as a saved view holds them."""
        raw = views.raw_filters(self.filters)
        if self.sla:
            raw["sla"] = self.sla
        return raw


def parse_query(user: User, args: Mapping[str, Any], team_ids: list[int]) -> QueueQuery:
    """Map the form's parameters onto ``TicketFilters``; bad values become messages."""
    values = {key: str(args.get(key, "")).strip() for key in (*FILTER_KEYS, "cursor")}
    errors: dict[str, str] = {}
    try:
        default = views.SEARCH_VIEW if values["q"] else views.DEFAULT_VIEW
        view = views.access_view(user, values["view"] or default)
    except NotFound:
        errors["view"] = "Choose one of the views."
        view = views.access_view(user, views.DEFAULT_VIEW)
    workflow = queue.current_workflow()
    query = QueueQuery(values=values, view=view, errors=errors, sort=view.sort, workflow=workflow)
    query.fields = queue_fields.read(user, args, view.columns)
    errors.update(query.fields.errors)
    base = view.ticket_filters
    filters: dict[str, Any] = {}
    field_filters = {**base.custom_fields, **query.fields.filters}
    if query.fields.filters:
        filters["custom_fields"] = field_filters
    if field_filters:  # the view's own too: its field may have been deleted since
        errors.update(queue_fields.check_filters(user, field_filters, query.fields.definitions))
    states = set(workflow.categories)
    if values["status"]:
        if values["status"] in states:
            filters["status"] = [values["status"]]
        else:
            errors["status"] = f"Unknown status {values['status']!r}."
    if values["priority"]:
        try:
            filters["priority"] = [Priority.from_label(values["priority"])]
        except KeyError:
            errors["priority"] = "Priority must be low, normal, high or urgent."
    if values["assignee_id"]:
        if values["assignee_id"] == "none":
            filters["unassigned"], filters["assignee_id"] = True, None
        elif (assignee := parse_id(values["assignee_id"])) is not None:
            filters["assignee_id"], filters["unassigned"] = assignee, False
        else:
            errors["assignee_id"] = "Choose an assignee from the list."
    if values["team_id"]:
        team_id = parse_id(values["team_id"])
        if team_id is None or team_id not in team_ids:
            errors["team_id"] = "Choose one of your teams."
        else:
            filters["team_id"] = team_id
    if values["organization_id"]:
        organization_id = parse_id(values["organization_id"])
        if organization_id is None:
            errors["organization_id"] = "Choose an organization from the list."
        else:
            filters["organization_id"] = organization_id
    if values["tag"]:
        filters["tag"] = values["tag"].lower()
    if values["q"]:
        filters["q"] = values["q"]
    if values["sla"]:
        if values["sla"] in SLA_LABELS:
            query.sla = values["sla"]
        else:
            errors["sla"] = "Choose an SLA state from the list."
    if values["sort"]:
        if values["sort"] in _sort_options(query):
            query.sort = values["sort"]
        else:
            errors["sort"] = "Choose a sort order from the list."
    query.cursor = values["cursor"] or None
    query.filters = replace(base, **filters)
    try:
        tickets.check_filters(query.filters)
    except InvalidInput as exc:
        errors.update({name: messages[0] for name, messages in exc.errors.items()})
    return query


def _sort_options(query: QueueQuery) -> dict[str, str]:
    return {**SORT_OPTIONS, **queue_fields.sort_options(query.fields.definitions)}


def _team_choices(user: User) -> dict[int, str]:
    """Every team's name (agents see tickets of any team only as names); the filter offers
    the user's own teams, or all of them to an admin."""
    return {team.id: team.name for team in teams.list_teams(user, PageRequest(limit=200)).items}


def _filter_team_ids(user: User, names: dict[int, str]) -> list[int]:
    return list(names) if policies.is_admin(user) else user.team_ids


def _load(user: User, query: QueueQuery) -> tuple[list[Ticket], str | None]:
    """One page of the queue; with an SLA filter, pages are read until some match (at most
    SLA_SCAN_PAGES of them), since SLA state is computed here, not filtered in SQL."""
    cursor = query.cursor
    found: list[Ticket] = []
    for _ in range(SLA_SCAN_PAGES if query.sla else 1):
        page = tickets.list_tickets(
            user, query.filters, PageRequest(limit=PAGE_SIZE, cursor=cursor, sort=query.sort)
        )
        found.extend(_sla_matching(page.items, query.sla))
        cursor = page.next_cursor
        if cursor is None or len(found) >= PAGE_SIZE:
            break
    return found, cursor


def _sla_matching(items: list[Ticket], sla: str | None) -> list[Ticket]:
    if sla is None:
        return items
    due, now = queue.sla_due(t.id for t in items), utcnow()
    return [t for t in items if queue.sla_state(due.get(t.id), now) == sla]


def _matches(user: User, ticket: Ticket, filters: tickets.TicketFilters) -> bool:
    """Whether ``list_tickets`` with ``filters`` would list the (visible) ticket."""
    return tickets.ticket_matches(user, filters, ticket)


def countdown(due: datetime, now: datetime) -> str:
    """The SLA badge's text before queue.js takes over: "2h 5m left" or "3m overdue"."""
    seconds = int((due - now).total_seconds())
    span = abs(seconds)
    days, hours, minutes = span // 86400, span % 86400 // 3600, span % 3600 // 60
    if days:
        text = f"{days}d {hours}h"
    elif hours:
        text = f"{hours}h {minutes}m"
    else:
        text = f"{minutes}m {span % 60}s"
    return f"{text} overdue" if seconds < 0 else f"{text} left"


def _row_context(
    user: User, items: list[Ticket], team_names: dict[int, str], query: QueueQuery
) -> dict[str, Any]:
    """What _rows.html needs to draw rows, read in one query each (with a search, each
    row's matching text)."""
    people = queue.people_of(items)
    return {
        "tickets": items,
        "snippets": tickets.search_snippets(user, query.filters.q, [t.id for t in items]),
        # Custom field columns: the values are the tickets' own (no query).
        "field_columns": query.fields.column_fields,
        "field_cell": queue_fields.cell,
        "sla": queue.sla_due(t.id for t in items),
        "names": people.names,
        "requesters": people.requesters,
        # What bulk actions queue.js offers: the transitions valid for every selected row.
        "row_transitions": {
            t.id: " ".join(spec.name for spec in tickets.allowed_transitions(user, t))
            for t in items
        },
        "team_names": team_names,
        "status_labels": {t.id: queue.status_label(t) for t in items},
        "now": utcnow(),
        "countdown": countdown,
    }


def _render_queue(
    user: User,
    args: Mapping[str, Any],
    *,
    bulk_results: list[tickets.BulkResult] | None = None,
    bulk_errors: dict[str, str] | None = None,
    bulk_values: dict[str, Any] | None = None,
    save_errors: dict[str, str] | None = None,
    save_values: dict[str, str] | None = None,
    status: int = 200,
) -> tuple[str, int]:
    team_names = _team_choices(user)
    filter_team_ids = _filter_team_ids(user, team_names)
    query = parse_query(user, args, filter_team_ids)
    workflow = query.workflow or queue.current_workflow()
    items: list[Ticket] = []
    next_cursor = None
    if not query.errors:
        try:
            items, next_cursor = _load(user, query)
        except DomainError as exc:  # a forged or stale cursor
            query.errors["cursor"] = exc.message
    if query.errors and status == 200:
        status = 422
    # The socket rooms whose events may concern this page: the team filtered on, or all of the
    # user's teams and the triage queue (tickets without a team).
    rooms: list[int | None] = (
        [query.filters.team_id] if query.filters.team_id else [*filter_team_ids, None]
    )
    sidebar = _sidebar(user)
    checked = {r.ticket_id for r in bulk_results or [] if not r.ok}
    if bulk_values:
        checked |= set(bulk_values.get("ticket_ids", []))
    older = None
    if next_cursor:
        parts = (query.query_string, urlencode({"cursor": next_cursor}))
        older = "?" + "&".join(part for part in parts if part)
    html = render_template(
        "agent/queue.html",
        user=user,
        query=query,
        view=query.view,
        sidebar=sidebar,
        current_count=next(
            (v.count_label for _, g in sidebar for v in g if v.id == query.view.id), None
        ),
        scope_labels=SCOPE_LABELS,
        member_teams=[(i, team_names[i]) for i in user.team_ids if i in team_names],
        can_save_global=policies.is_admin(user),
        save_errors=save_errors or {},
        save_values=save_values or {},
        sort_options=_sort_options(query),
        sla_labels=SLA_LABELS,
        states=queue.workflow_states(workflow),
        priorities=[p.label for p in Priority],
        agents=queue.assignable_agents(user),
        filter_teams=[(i, team_names[i]) for i in filter_team_ids if i in team_names],
        filter_organizations=[(o.id, o.name) for o in organizations.list_organizations(user)],
        transitions=queue.workflow_transitions(workflow),
        bulk_actions=BULK_ACTIONS,
        bulk_results=bulk_results,
        bulk_errors=bulk_errors or {},
        bulk_values=bulk_values or {},
        checked=checked,
        older_url=older,
        rooms_json=json.dumps(rooms),
        **_row_context(user, items, team_names, query),
    )
    return html, status


def _sidebar(user: User) -> list[tuple[str, list[views.View]]]:
    """The views in the sidebar with their counts, in groups: built in, everyone's, the
    teams', the user's own."""
    groups: dict[str, list[views.View]] = {"builtin": [], "global": [], "team": [], "personal": []}
    for view in views.list_views(user, counts=True):
        groups[view.scope].append(view)
    titles = {"builtin": "", "global": "Shared", "team": "Team views", "personal": "My views"}
    return [(titles[key], group) for key, group in groups.items() if group]


@bp.get("/", endpoint="queue")
@login_required(staff=True)
def queue_page(user: User) -> tuple[str, int]:
    return _render_queue(user, request.args)


@bp.get("/tickets.csv")
@login_required(staff=True)
def tickets_csv(user: User) -> Response | tuple[str, int]:
    """The queue's tickets as CSV: the view narrowed by the form's filters, every page
    (``queue_export``); bad filters show the page with its messages."""
    team_names = _team_choices(user)
    query = parse_query(user, request.args, _filter_team_ids(user, team_names))
    if not query.errors:
        try:
            name = re.sub(r"[^A-Za-z0-9_-]+", "-", query.view.name).strip("-") or "tickets"
            return queue_export.csv_response(
                user, query.filters, query.sort, query.sla, team_names, f"{name}.csv"
            )
        except DomainError as exc:
            query.errors["cursor"] = exc.message
    return _render_queue(user, request.args)


@bp.get("/rows")
@login_required(staff=True)
def rows(user: User) -> tuple[str, int]:
    """Table rows for queue.js: the tickets in ``ids`` that the user may see and that match
    the filters in the other parameters (an id left out no longer belongs on the page);
    without ``ids``, the first page."""
    team_names = _team_choices(user)
    query = parse_query(user, request.args, _filter_team_ids(user, team_names))
    if query.errors:
        return "", 422
    raw_ids = [part for raw in request.args.getlist("ids") for part in raw.split(",") if part]
    ids = [i for i in (parse_id(part.strip()) for part in raw_ids[:MAX_ROW_IDS]) if i is not None]
    if not raw_ids:
        try:
            items, _ = _load(user, replace(query, cursor=None))
        except DomainError:
            return "", 422
    else:
        items = []
        for ticket_id in dict.fromkeys(ids):
            try:
                ticket = tickets.access_ticket_by_id(user, ticket_id)
            except NotFound:
                continue
            if _matches(user, ticket, query.filters):
                items.append(ticket)
        items = _sla_matching(items, query.sla)
    context = _row_context(user, items, team_names, query)
    return render_template("agent/_rows.html", checked=set(), **context), 200


def _bulk_input() -> tuple[dict[str, Any], dict[str, str]]:
    """The bulk form (or its JSON twin): ticket ids, action and value, and what is wrong."""
    if request.is_json:
        body = request.get_json(silent=True)
        body = body if isinstance(body, dict) else {}
        ids_raw = body.get("ticket_ids")
        form = MultiDict(
            [("ticket_ids", str(i)) for i in (ids_raw if isinstance(ids_raw, list) else [])]
            + [(k, str(body.get(k) or "")) for k in ("action", "value")]
        )
    else:
        form = request.form
    errors: dict[str, str] = {}
    ids_in = form.getlist("ticket_ids")
    ids = [parse_id(raw.strip()) for raw in ids_in]
    if not ids_in:
        errors["ticket_ids"] = "Select at least one ticket."
    elif None in ids or len(ids) > MAX_BULK:
        errors["ticket_ids"] = f"Tick 1 to {MAX_BULK} tickets in the list."
    action = form.get("action", "")
    raw_value = form.get("value", "").strip()
    value: Any = None
    if action not in BULK_ACTIONS:
        errors["action"] = "Choose an action."
    elif not raw_value:
        errors["value"] = "Choose what to set."
    elif action == "assign":
        value = None if raw_value == "none" else parse_id(raw_value)
        if raw_value != "none" and value is None:
            errors["value"] = "Choose an agent from the list."
    elif action == "set_priority":
        try:
            value = Priority.from_label(raw_value)
        except KeyError:
            errors["value"] = "Priority must be low, normal, high or urgent."
    elif re.fullmatch(r"[A-Za-z0-9_\-]{1,50}", raw_value):
        value = raw_value
    else:
        errors["value"] = "Choose a transition from the list."
    values = {
        "ticket_ids": [i for i in ids if i is not None],
        "action": action,
        "value": raw_value,
        "parsed": value,
    }
    return values, errors


def _in_words(
    user: User, result: tickets.BulkResult, action: str, value: Any
) -> tickets.BulkResult:
    """The result as the person reads it ("Can't reopen #12: it is open.") rather than the
    engine's message."""
    number = f"#{result.ticket_id}"
    if result.ok:
        return replace(result, message=f"{number}: done")
    if result.status == 404:
        return replace(result, message=f"Can't change {number}: it is not a ticket you can see.")
    if result.status == 409 and "meanwhile" in result.message:
        return replace(
            result, message=f"{number} was changed by someone else meanwhile: try again."
        )
    try:
        ticket: Ticket | None = tickets.access_ticket_by_id(user, result.ticket_id)
    except NotFound:
        ticket = None
    if action == "transition" and ticket is not None:
        label = queue.transition_label(ticket, value)
        if label is None:
            message = f"Can't change {number}: its workflow has no step \u201c{value}\u201d."
        elif value in {spec.name for spec in tickets.allowed_transitions(user, ticket)}:
            message = f"Can't {label.lower()} {number}: {result.message}"
        else:  # not from its state (or not for this role): say which state it is in
            state = queue.status_label(ticket).lower()
            message = f"Can't {label.lower()} {number}: it is {state}."
        return replace(result, message=message)
    verb = "assign" if action == "assign" else "change the priority of"
    return replace(result, message=f"Can't {verb} {number}: {result.message}")


@bp.post("/bulk")
@login_required(staff=True)
def bulk(user: User) -> Response | tuple[Any, int]:
    """Apply one action to the checked tickets; each succeeds or fails on its own. The page
    is drawn again (with the filters in the query string) and lists each ticket's result."""
    values, errors = _bulk_input()
    if errors:
        if request.is_json:
            return jsonify(
                {"ok": False, "message": "Check the bulk action.", "errors": errors}
            ), 422
        return _render_queue(user, request.args, bulk_errors=errors, bulk_values=values, status=422)
    results = tickets.do_bulk(user, values["ticket_ids"], values["action"], values["parsed"])
    results = [_in_words(user, r, values["action"], values["parsed"]) for r in results]
    if request.is_json:
        succeeded = sum(r.ok for r in results)
        payload = [
            {"ticket_id": r.ticket_id, "ok": r.ok, "status": r.status, "message": r.message}
            for r in results
        ]
        return jsonify(
            {"results": payload, "succeeded": succeeded, "failed": len(results) - succeeded}
        ), 200
    values["ticket_ids"] = []  # what failed stays checked (see _render_queue), the rest not
    return _render_queue(user, request.args, bulk_results=results, bulk_values=values)


@bp.get("/view-counts")
@login_required(staff=True)
def view_counts(user: User) -> Response:
    """Each view's ticket count now (queue.js refreshes the sidebar with it after changes)."""
    counts = views.list_views(user, counts=True)
    # A number, or "1000+" for a search view with more tickets than it counts.
    return jsonify(
        {view.id: view.count_label if view.count_more else view.count for view in counts}
    )


@bp.post("/views")
@login_required(staff=True)
def save_view(user: User) -> Response | tuple[str, int]:
    """Save the current filters (the query string: the view and the form) as a view."""
    team_names = _team_choices(user)
    query = parse_query(user, request.args, _filter_team_ids(user, team_names))
    form = {key: request.form.get(key, "").strip() for key in ("name", "scope", "team_id")}
    fields: dict[str, Any] = {
        "name": form["name"],
        "scope": form["scope"] or "personal",
        "filters": query.saveable_filters,
        "sort": query.sort,
        "columns": query.fields.columns,
    }
    if fields["scope"] == "team":
        fields["team_id"] = parse_id(form["team_id"])
    try:
        if query.errors:
            raise InvalidInput("Fix the filters first.", {"filters": list(query.errors.values())})
        view = views.do_create_view(user, fields)
    except (InvalidInput, Forbidden) as exc:
        errors = {name: _first(messages) for name, messages in exc.errors.items()}
        return _render_queue(
            user,
            request.args,
            save_errors=errors or {"name": exc.message},
            save_values=form,
            status=exc.status_code,
        )
    flash(f"Saved the view “{view.name}”.", "success")
    return redirect(url_for("agent.queue", view=view.id))


def _first(messages: Any) -> str:
    while isinstance(messages, list | dict) and messages:
        messages = messages[0] if isinstance(messages, list) else next(iter(messages.values()))
    return str(messages)


@bp.post("/views/<int:view_id>/delete")
@login_required(staff=True)
def delete_view(user: User, view_id: int) -> Response:
    view = views.access_view(user, str(view_id))
    views.do_delete_view(user, view_id)
    flash(f"Deleted the view “{view.name}”.", "success")
    return redirect(url_for("agent.queue"))
