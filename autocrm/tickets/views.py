"""Queue views: the built-in ones (code) and the ones people save (``SavedView`` rows).

A view is a set of ticket filters in the list API's vocabulary (``ViewFiltersSchema``: the
query parameters ``GET /api/tickets`` takes; custom field filters under ``fields``, keyed as
``field.<key>`` is without its prefix: ``{"severity": "high", "seats.min": "5"}``), a sort (a
fixed one or a custom field's, ``-field.<key>``) and the custom fields shown as columns. The
built-in views are the same for everyone but read "me" and "my teams" as the person looking;
"Unsolved" means the workflow states whose category is not a final one (``DONE_CATEGORIES``:
solved, closed), whatever each workflow calls them.

Who may do what (``policies``): staff only; a personal view is its owner's, a team view is
seen by that team's members and made or changed by them (or admins), a global view is seen by
all staff and made by admins. A view one may not see is missing (404).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

import marshmallow as ma
from marshmallow import validate
from sqlalchemy import func, select

from autocrm import policies
from autocrm.columns import MAX_INT32
from autocrm.errors import Forbidden, InvalidInput, NotFound
from autocrm.extensions import db
from autocrm.fields import ordering as field_ordering
from autocrm.fields import values as field_values
from autocrm.people.models import Team, User
from autocrm.tickets.models import SavedView, ViewScope
from autocrm.tickets.representation import PriorityField
from autocrm.tickets.services import (
    MAX_SEARCH_LENGTH,
    MAX_SOLVED_WITHIN_DAYS,
    MAX_TAG_LENGTH,
    SLA_FILTERS,
    TicketFilters,
    check_filters,
    count_tickets_each,
)
from autocrm.transaction import rolls_back_on_error
from workflows.definition import CATEGORIES, DONE_CATEGORIES

UNSOLVED = [c for c in CATEGORIES if c not in DONE_CATEGORIES]
SORTS = {
    "-updated_at": "Recently updated",
    "updated_at": "Least recently updated",
    "-created_at": "Newest",
    "created_at": "Oldest",
    "-priority": "Highest priority",
    "priority": "Lowest priority",
}
DEFAULT_SORT = "-updated_at"
MAX_NAME = 80
MAX_SAVED_VIEWS = 100  # per person: what they own
FIELDS = ("name", "scope", "team_id", "filters", "sort", "position", "columns")
MAX_COLUMNS = 20
MAX_FIELD_FILTER = 200


def _id(**kwargs: Any) -> ma.fields.Integer:
    return ma.fields.Integer(strict=True, validate=validate.Range(min=1, max=MAX_INT32), **kwargs)


class ViewFiltersSchema(ma.Schema):
    """A view's filters: the query parameters of ``GET /api/tickets`` (lists as lists)."""

    class Meta:
        unknown = ma.RAISE

    status = ma.fields.List(ma.fields.String(validate=validate.Length(min=1, max=50)))
    priority = ma.fields.List(PriorityField())
    assignee_id = _id()
    unassigned = ma.fields.Boolean()
    team_id = _id()
    team_ids = ma.fields.List(_id(), metadata={"description": "Tickets of any of these teams."})
    requester_id = _id()
    organization_id = _id()
    tag = ma.fields.String(validate=validate.Length(min=1, max=MAX_TAG_LENGTH))
    q = ma.fields.String(validate=validate.Length(min=1, max=MAX_SEARCH_LENGTH))
    category = ma.fields.List(ma.fields.String(validate=validate.OneOf(CATEGORIES)))
    sla = ma.fields.String(
        validate=validate.OneOf(SLA_FILTERS),
        metadata={"description": "Running SLA clocks: at_risk is breached or due soon."},
    )
    solved_within_days = ma.fields.Integer(
        strict=True, validate=validate.Range(min=1, max=MAX_SOLVED_WITHIN_DAYS)
    )
    custom_fields = ma.fields.Dict(
        data_key="fields",
        keys=ma.fields.String(validate=validate.Length(min=1, max=50)),
        values=ma.fields.String(validate=validate.Length(min=1, max=MAX_FIELD_FILTER)),
        metadata={
            "description": "Custom field filters: `field.<key>=<value>` (and `.min`/`.max` "
            'ranges) of the list, without `field.`: {"severity": "high"}.'
        },
    )


_FILTERS = ViewFiltersSchema()
_FILTER_FIELDS = {f.name for f in fields(TicketFilters)}


def ticket_filters(raw: Mapping[str, Any]) -> TicketFilters:
    """The ``TicketFilters`` a view's (stored, valid) filters mean."""
    loaded = _FILTERS.load(raw)
    return TicketFilters(**{k: v for k, v in loaded.items() if k in _FILTER_FIELDS})


def raw_filters(filters: TicketFilters) -> dict[str, Any]:
    """``filters`` in a view's vocabulary, only what narrows (to save the queue's filters)."""
    default = TicketFilters()
    loaded = {
        f.name: getattr(filters, f.name)
        for f in fields(TicketFilters)
        if getattr(filters, f.name) != getattr(default, f.name)
    }
    return dict(_FILTERS.dump(loaded))


def check_view_filters(raw: Any) -> dict[str, Any]:
    """Filters someone sent, cleaned; InvalidInput naming each wrong one under ``filters``."""
    if not isinstance(raw, Mapping):
        raise InvalidInput("Please correct the filters.", {"filters": ["Must be an object."]})
    try:
        clean = dict(_FILTERS.dump(_FILTERS.load(raw)))
    except ma.ValidationError as exc:
        raise InvalidInput("Please correct the filters.", {"filters": exc.messages}) from exc
    try:
        check_filters(ticket_filters(clean))
    except InvalidInput as exc:
        raise InvalidInput(exc.message, {"filters": exc.errors}) from exc
    return clean


# -- what a view is, built in or saved ---------------------------------------------------------


@dataclass
class View:
    """A view as the queue and the API show it. ``id`` is the built-in's key ("my_unsolved")
    or the saved view's number as text."""

    id: str
    name: str
    builtin: bool
    filters: dict[str, Any]
    sort: str = DEFAULT_SORT
    scope: str = "builtin"
    team_id: int | None = None
    owner_id: int | None = None
    position: int = 0
    columns: tuple[str, ...] = ()
    editable: bool = False
    count: int | None = None
    count_more: bool = False  # more than ``count`` tickets (a search stops counting)
    created_at: datetime | None = None
    updated_at: datetime | None = None
    saved: SavedView | None = None

    @property
    def count_label(self) -> str | None:
        """The count as shown: "1000+" when there are more than ``count`` tickets."""
        if self.count is None:
            return None
        return f"{self.count}+" if self.count_more else str(self.count)

    @property
    def ticket_filters(self) -> TicketFilters:
        return ticket_filters(self.filters)


@dataclass(frozen=True)
class BuiltinView:
    key: str
    name: str
    filters: Callable[[User], dict[str, Any]]
    sort: str = DEFAULT_SORT


BUILTIN_VIEWS = (
    BuiltinView(
        "my_unsolved", "My unsolved", lambda me: {"assignee_id": me.id, "category": UNSOLVED}
    ),
    BuiltinView(
        "unassigned_my_teams",
        "Unassigned in my teams",
        lambda me: {"unassigned": True, "team_ids": me.team_ids, "category": UNSOLVED},
    ),
    BuiltinView("unsolved", "All unsolved", lambda me: {"category": UNSOLVED}),
    BuiltinView("pending", "Pending", lambda me: {"category": ["pending"]}),
    BuiltinView(
        "sla_at_risk",
        "SLA at risk",
        lambda me: {"sla": "at_risk", "category": UNSOLVED},
        sort="-priority",
    ),
    BuiltinView(
        "recently_solved",
        "Recently solved",
        lambda me: {"category": list(DONE_CATEGORIES), "solved_within_days": 7},
    ),
    BuiltinView("all", "All tickets", lambda me: {}),
)
# The queue's views before there were saved ones: old links keep working (not in the list).
LEGACY_VIEWS = (
    BuiltinView("mine", "My tickets", lambda me: {"assignee_id": me.id}),
    BuiltinView("unassigned", "Unassigned", lambda me: {"unassigned": True}),
)
BUILTIN_KEYS = {view.key: view for view in (*BUILTIN_VIEWS, *LEGACY_VIEWS)}
DEFAULT_VIEW = "my_unsolved"  # what an agent's queue opens on
SEARCH_VIEW = "all"  # what a search without a view looks in


def _builtin(actor: User, spec: BuiltinView) -> View:
    raw = spec.filters(actor)
    return View(spec.key, spec.name, True, dict(_FILTERS.dump(_FILTERS.load(raw))), spec.sort)


def _saved(actor: User, row: SavedView) -> View:
    return View(
        id=str(row.id),
        name=row.name,
        builtin=False,
        filters=dict(row.filters),
        sort=row.sort,
        scope=row.scope.value,
        team_id=row.team_id,
        owner_id=row.owner_id,
        position=row.position,
        columns=tuple(row.columns or ()),
        editable=policies.can_manage_saved_view(actor, row.scope, row.team_id, row.owner_id),
        created_at=row.created_at,
        updated_at=row.updated_at,
        saved=row,
    )


def _require_staff(actor: User) -> None:
    if not policies.is_staff(actor):
        raise Forbidden("Queue views are for staff.")


def list_views(actor: User, *, counts: bool = False) -> list[View]:
    """The built-in views, then the saved ones ``actor`` sees (global, team, personal; each by
    position); with ``counts``, how many tickets each holds now."""
    _require_staff(actor)
    scope_order = {ViewScope.GLOBAL: 0, ViewScope.TEAM: 1, ViewScope.PERSONAL: 2}
    rows = db.session.scalars(select(SavedView).where(policies.visible_saved_views(actor)))
    saved = sorted(rows, key=lambda v: (scope_order[v.scope], v.position, v.name.lower(), v.id))
    views = [_builtin(actor, spec) for spec in BUILTIN_VIEWS] + [_saved(actor, v) for v in saved]
    if counts:
        found = count_tickets_each(actor, [view.ticket_filters for view in views])
        for view, count in zip(views, found, strict=True):
            if count is not None:
                view.count, view.count_more = count
    return views


def access_view(actor: User, view_id: str) -> View:
    """A built-in view by key or a saved one by number; NotFound if there is none ``actor``
    may see."""
    _require_staff(actor)
    if view_id in BUILTIN_KEYS:
        return _builtin(actor, BUILTIN_KEYS[view_id])
    return _saved(actor, _access_saved(actor, view_id))


def _access_saved(actor: User, view_id: str | int) -> SavedView:
    number = int(view_id) if str(view_id).isdigit() and len(str(view_id)) <= 10 else 0
    row = db.session.get(SavedView, number) if 1 <= number <= MAX_INT32 else None
    if row is None or not policies.can_view_saved_view(actor, row):
        raise NotFound(f"View {view_id} not found.")
    return row


# -- saving ------------------------------------------------------------------------------------


def _check_scope(
    actor: User, scope: ViewScope, team_id: int | None, owner_id: int, errors: dict[str, Any]
) -> None:
    if scope is ViewScope.TEAM:
        if team_id is None:
            errors["team_id"] = ["A team view names its team."]
            return
        if db.session.get(Team, team_id) is None:
            errors["team_id"] = [f"No team {team_id}."]
            return
    elif team_id is not None:
        errors["team_id"] = ["Only a team view has a team."]
        return
    if not policies.can_manage_saved_view(actor, scope, team_id, owner_id):
        who = {
            ViewScope.GLOBAL: "Only administrators make views for everyone.",
            ViewScope.TEAM: "Only the team's members (or administrators) make its views.",
            ViewScope.PERSONAL: "A personal view is its owner's.",
        }
        raise Forbidden(who[scope])


def check_view(
    actor: User, fields_in: Mapping[str, Any], current: SavedView | None
) -> dict[str, Any]:
    """The fields sent, cleaned and merged over ``current``; InvalidInput naming each wrong
    one, Forbidden for a scope ``actor`` may not use."""
    errors: dict[str, Any] = {n: ["Unknown field."] for n in sorted(set(fields_in) - set(FIELDS))}
    clean: dict[str, Any] = {}
    if "name" in fields_in or current is None:
        name = fields_in.get("name")
        name = name.strip() if isinstance(name, str) else ""
        if not name or len(name) > MAX_NAME:
            errors["name"] = [f"Give the view a name (at most {MAX_NAME} characters)."]
        clean["name"] = name
    scope_raw = fields_in.get("scope", current.scope.value if current else "personal")
    try:
        scope = ViewScope(scope_raw)
    except ValueError:
        errors["scope"] = ["One of: personal, team, global."]
        scope = ViewScope.PERSONAL
    clean["scope"] = scope
    team_id = fields_in.get("team_id", current.team_id if current else None)
    if scope is not ViewScope.TEAM and "team_id" not in fields_in:
        team_id = None  # leaving team scope leaves the team
    if team_id is not None and (not isinstance(team_id, int) or not 1 <= team_id <= MAX_INT32):
        errors["team_id"] = ["A team's id."]
        team_id = None
    clean["team_id"] = team_id
    if "filters" in fields_in or current is None:
        try:
            clean["filters"] = check_view_filters(fields_in.get("filters") or {})
        except InvalidInput as exc:
            errors.update(exc.errors)
    if "sort" in fields_in or current is None:
        sort = fields_in.get("sort") or DEFAULT_SORT
        _check_sort(actor, sort, errors)
        clean["sort"] = sort
    if "columns" in fields_in:
        clean["columns"] = _check_columns(actor, fields_in["columns"], errors)
    if "filters" in clean and clean["filters"].get("fields"):
        try:
            field_values.filter_clauses(actor, clean["filters"]["fields"])
        except InvalidInput as exc:
            errors.setdefault("filters", {}).update(exc.errors)
    if "position" in fields_in:
        position = fields_in["position"]
        if (
            not isinstance(position, int)
            or isinstance(position, bool)
            or not 0 <= position <= 10_000
        ):
            errors["position"] = ["A whole number from 0 to 10000."]
        clean["position"] = position
    if errors:
        raise InvalidInput("Please correct the marked fields.", errors)
    owner_id = current.owner_id if current else actor.id
    _check_scope(actor, scope, team_id, owner_id, errors)
    if errors:
        raise InvalidInput("Please correct the marked fields.", errors)
    return clean


def _check_sort(actor: User, sort: Any, errors: dict[str, Any]) -> None:
    if not isinstance(sort, str) or (sort not in SORTS and not field_ordering.is_field_sort(sort)):
        errors["sort"] = [f"One of: {', '.join(SORTS)}, or field.<key> / -field.<key>."]
        return
    if sort not in SORTS:
        try:
            field_ordering.sort_field(actor, sort)
        except InvalidInput as exc:
            errors.update(exc.errors)


def _check_columns(actor: User, columns: Any, errors: dict[str, Any]) -> list[str]:
    """Custom field keys to show, in order: known to ``actor``, each once."""
    if not isinstance(columns, list) or len(columns) > MAX_COLUMNS:
        errors["columns"] = [f"A list of at most {MAX_COLUMNS} field keys."]
        return []
    known = {f.key for f in field_values.fields_for(actor)}
    unknown = [c for c in columns if not isinstance(c, str) or c not in known]
    if unknown:
        errors["columns"] = [f"Unknown field {c!r}." for c in unknown]
    return list(dict.fromkeys(c for c in columns if c in known))


@rolls_back_on_error
def do_create_view(actor: User, fields_in: Mapping[str, Any]) -> View:
    _require_staff(actor)
    clean = check_view(actor, fields_in, None)
    owned = db.session.scalar(
        select(func.count()).select_from(SavedView).where(SavedView.owner_id == actor.id)
    )
    if (owned or 0) >= MAX_SAVED_VIEWS:
        raise InvalidInput(
            f"You have {MAX_SAVED_VIEWS} views already.", {"name": ["Delete a view first."]}
        )
    row = SavedView(owner_id=actor.id, **clean)
    db.session.add(row)
    db.session.commit()
    return _saved(actor, row)


@rolls_back_on_error
def do_update_view(actor: User, view_id: int, fields_in: Mapping[str, Any]) -> View:
    _require_staff(actor)
    row = _access_saved(actor, view_id)
    if not policies.can_manage_saved_view(actor, row.scope, row.team_id, row.owner_id):
        raise Forbidden("You may not change this view.")
    for name, value in check_view(actor, fields_in, row).items():
        setattr(row, name, value)
    db.session.commit()
    return _saved(actor, row)


@rolls_back_on_error
def do_delete_view(actor: User, view_id: int) -> None:
    _require_staff(actor)
    row = _access_saved(actor, view_id)
    if not policies.can_manage_saved_view(actor, row.scope, row.team_id, row.owner_id):
        raise Forbidden("You may not delete this view.")
    db.session.delete(row)
    db.session.commit()
