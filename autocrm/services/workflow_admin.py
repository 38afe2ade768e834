"""Administering workflows: create, edit a draft, validate, draw, simulate and publish versions.

Admins only. A workflow's draft is kept exactly as entered, valid or not, so nothing typed is
lost to an error; validation reports problems keyed by location (``transitions.2.to``).
Publishing turns a valid draft into the next immutable, numbered version. Tickets keep the
version they pinned unless the admin gives a state map, which moves every in-flight ticket of
the workflow onto the new version (each move recorded in the ticket's trail).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from marshmallow import ValidationError
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from autocrm import policies
from autocrm.errors import Conflict, Forbidden, InvalidInput, NotFound
from autocrm.extensions import db
from autocrm.models import (
    Message,
    Notification,
    Priority,
    RuleFiring,
    SlaClock,
    Ticket,
    TicketEvent,
    User,
    Workflow,
    WorkflowVersion,
    utcnow,
)
from autocrm.services import audit, tickets
from autocrm.services.transaction import rolls_back_on_error
from autocrm.services.workflows import current_version
from workflows import default_definition, dump_definition, load_definition
from workflows.diagram import render_svg
from workflows.simulate import SimulationReport, simulate

MAX_SIMULATED_TICKETS = 500
# A workflow rule's name (causes also name SLA escalations and assignment policies).
RULE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,49}$")
# Notifications a rule's notify/request_feedback action leaves, keyed
# "<outbox event id>:<rule>:<action index>:<user id>:<kind>" (see automation.run_actions).
RULE_NOTIFICATION = re.compile(r"^[0-9a-f-]{36}:([a-z][a-z0-9_]{0,49}):\d+:\d+:[a-z_]+$")
RULE_NOTIFICATION_KINDS = ("escalation", "feedback_request")


def _require_admin(actor: User) -> None:
    if not policies.is_admin(actor):
        raise Forbidden("Only administrators may manage workflows.")


# -- reading ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkflowSummary:
    id: int
    name: str
    description: str
    is_default: bool
    latest_version: int | None
    has_draft: bool
    draft_updated_at: datetime | None


def list_workflows(actor: User) -> list[WorkflowSummary]:
    _require_admin(actor)
    latest = (
        select(WorkflowVersion.workflow_id, func.max(WorkflowVersion.number).label("number"))
        .group_by(WorkflowVersion.workflow_id)
        .subquery()
    )
    rows = db.session.execute(
        select(Workflow, latest.c.number)
        .outerjoin(latest, latest.c.workflow_id == Workflow.id)
        .order_by(Workflow.id)
    )
    return [
        WorkflowSummary(
            id=workflow.id,
            name=workflow.name,
            description=workflow.description,
            is_default=workflow.is_default,
            latest_version=number,
            has_draft=workflow.draft is not None,
            draft_updated_at=workflow.draft_updated_at,
        )
        for workflow, number in rows
    ]


@dataclass(frozen=True)
class VersionSummary:
    id: int
    workflow_id: int
    number: int
    created_at: datetime
    note: str
    published_by: str | None
    tickets: int  # pinned to it, in any state


def list_versions(actor: User, workflow_id: int | None = None) -> dict[int, list[VersionSummary]]:
    """Versions by workflow id, newest first, with who published each and how many tickets
    pin it (counted through the index on the tickets' version)."""
    _require_admin(actor)
    pinned = (
        select(Ticket.workflow_version_id, func.count().label("tickets"))
        .group_by(Ticket.workflow_version_id)
        .subquery()
    )
    query = (
        select(WorkflowVersion, User.name, pinned.c.tickets)
        .outerjoin(User, User.id == WorkflowVersion.published_by_id)
        .outerjoin(pinned, pinned.c.workflow_version_id == WorkflowVersion.id)
        .order_by(WorkflowVersion.workflow_id, WorkflowVersion.number.desc())
    )
    if workflow_id is not None:
        query = query.where(WorkflowVersion.workflow_id == workflow_id)
    versions: dict[int, list[VersionSummary]] = defaultdict(list)
    for version, publisher, count in db.session.execute(query):
        versions[version.workflow_id].append(
            VersionSummary(
                id=version.id,
                workflow_id=version.workflow_id,
                number=version.number,
                created_at=version.created_at,
                note=version.note,
                published_by=publisher,
                tickets=count or 0,
            )
        )
    return dict(versions)


def access_workflow_by_id(actor: User, workflow_id: int, *, lock: bool = False) -> Workflow:
    _require_admin(actor)
    workflow = db.session.get(Workflow, workflow_id, with_for_update=lock)
    if workflow is None:
        raise NotFound(f"Workflow {workflow_id} not found.")
    return workflow


def access_version(actor: User, workflow_id: int, number: int) -> WorkflowVersion:
    workflow = access_workflow_by_id(actor, workflow_id)
    version = db.session.scalar(
        select(WorkflowVersion).where(
            WorkflowVersion.workflow_id == workflow.id, WorkflowVersion.number == number
        )
    )
    if version is None:
        raise NotFound(f"Workflow {workflow_id} has no version {number}.")
    return version


@dataclass(frozen=True)
class DraftToEdit:
    definition: Any
    saved: bool  # False: nothing saved yet; the editor starts from ``based_on``
    based_on: int | None  # the version number it was taken from


def draft_to_edit(actor: User, workflow_id: int) -> DraftToEdit:
    """What the editor shows: the saved draft, else a copy of the newest version (saving it
    makes it the draft), else the bundled default."""
    workflow = access_workflow_by_id(actor, workflow_id)
    if workflow.draft is not None:
        return DraftToEdit(workflow.draft, saved=True, based_on=None)
    newest = workflow.versions[-1] if workflow.versions else None
    if newest is None:
        return DraftToEdit({**default_definition(), "name": workflow.name}, False, None)
    return DraftToEdit(dict(newest.definition), saved=False, based_on=newest.number)


def empty_definition(name: str) -> dict[str, Any]:
    """The smallest valid workflow, to build one from scratch: a single, terminal state."""
    return {
        "name": name,
        "initial": "new",
        "states": [{"name": "new", "category": "new", "label": "New", "terminal": True}],
        "transitions": [],
        "rules": [],
    }


def in_flight_states(actor: User, workflow_id: int) -> dict[str, int]:
    """How many tickets in flight (not closed) on any version of the workflow are in each
    state: the states a publish's state map has to cover."""
    workflow = access_workflow_by_id(actor, workflow_id)
    rows = db.session.execute(
        select(Ticket.status, func.count())
        .join(WorkflowVersion, WorkflowVersion.id == Ticket.workflow_version_id)
        .where(WorkflowVersion.workflow_id == workflow.id, Ticket.category != "closed")
        .group_by(Ticket.status)
        .order_by(Ticket.status)
    )
    return {row[0]: row[1] for row in rows}


def ticket_subjects(actor: User, ticket_ids: list[int]) -> dict[int, str]:
    """Subjects for a simulation report's tickets (admins see every ticket)."""
    _require_admin(actor)
    if not ticket_ids:
        return {}
    rows = db.session.execute(select(Ticket.id, Ticket.subject).where(Ticket.id.in_(ticket_ids)))
    return {row[0]: row[1] for row in rows}


def _draft_of(workflow: Workflow) -> dict[str, Any]:
    if workflow.draft is None:
        raise NotFound(f"Workflow {workflow.id} has no draft; PUT one first.")
    return workflow.draft


# -- validating ---------------------------------------------------------------------------------


def flatten_errors(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """marshmallow's nested messages as ``{"transitions.2.to": [...]}``; schema-wide ones under
    the prefix (or ``_schema`` at the top)."""
    if isinstance(messages, dict):
        flat: dict[str, list[str]] = {}
        for key, value in messages.items():
            where = prefix if key == "_schema" and prefix else f"{prefix}.{key}" if prefix else key
            for location, texts in flatten_errors(value, str(where)).items():
                flat.setdefault(location, []).extend(texts)
        return flat
    texts = messages if isinstance(messages, list) else [messages]
    return {prefix or "_schema": [str(t) for t in texts]}


def check_definition(raw: Any) -> tuple[dict[str, Any] | None, dict[str, list[str]]]:
    """The loaded definition and no errors, or None and the errors by location."""
    try:
        return load_definition(raw), {}
    except ValidationError as exc:
        return None, flatten_errors(exc.messages)
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        # A value of the wrong type that the schema lets through to the graph checks (e.g. a
        # list as a transition action's name): still the author's mistake, not a server error.
        return None, {"_schema": [f"The definition could not be checked: {exc}."]}


@dataclass(frozen=True)
class DraftCheck:
    draft: dict[str, Any] | None
    valid: bool
    errors: dict[str, list[str]]


def check_draft(
    actor: User, workflow_id: int, definition: dict[str, Any] | None = None
) -> DraftCheck:
    """Validate the stored draft, or ``definition`` instead (without saving it)."""
    workflow = access_workflow_by_id(actor, workflow_id)
    draft = definition if definition is not None else _draft_of(workflow)
    loaded, errors = check_definition(draft)
    return DraftCheck(draft=draft, valid=loaded is not None, errors=errors)


# -- drawing ------------------------------------------------------------------------------------


def version_diagram(actor: User, workflow_id: int, number: int) -> str:
    return render_svg(load_definition(access_version(actor, workflow_id, number).definition))


def draft_diagram(actor: User, workflow_id: int) -> str:
    """The draft's diagram; an invalid draft is drawn as far as its states and transitions
    are well-formed."""
    draft = _draft_of(access_workflow_by_id(actor, workflow_id))
    loaded, _ = check_definition(draft)
    try:
        return render_svg(loaded if loaded is not None else _drawable(draft))
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise InvalidInput(
            "The draft cannot be drawn; fix the errors validation reports.",
            {"_schema": [f"Cannot draw this draft: {exc}."]},
        ) from exc


def _drawable(draft: dict[str, Any]) -> dict[str, Any]:
    """The parts of an invalid draft a diagram needs, skipping malformed entries."""
    states = [
        {
            "name": s["name"],
            "category": s.get("category"),
            "label": s.get("label") if isinstance(s.get("label"), str) else None,
            "terminal": s.get("terminal") is True,
        }
        for s in _dicts(draft.get("states"))
        if isinstance(s.get("name"), str)
    ]
    names = {s["name"] for s in states}
    transitions = [
        {
            "name": t["name"],
            "source": [s for s in t["from"] if isinstance(s, str)],
            "dest": t["to"],
            "label": t.get("label") if isinstance(t.get("label"), str) else None,
            "guards": [],
        }
        for t in _dicts(draft.get("transitions"))
        if isinstance(t.get("name"), str)
        and isinstance(t.get("from"), list)
        and isinstance(t.get("to"), str)
    ]
    initial = draft.get("initial")
    if not states or not isinstance(initial, str) or initial not in names:
        raise InvalidInput(
            "The draft cannot be drawn: it needs states and a known initial state.",
            {"initial": ["Must name one of the draft's states."]},
        )
    return {
        "name": str(draft.get("name") or "draft"),
        "initial": initial,
        "states": states,
        "transitions": transitions,
    }


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


# -- writing ------------------------------------------------------------------------------------


@rolls_back_on_error
def do_create_workflow(
    actor: User,
    *,
    name: str,
    description: str = "",
    copy_from: int | None = None,
    definition: dict[str, Any] | None = None,
) -> Workflow:
    """A new workflow whose draft copies another's newest version, the given definition, or
    the bundled default. It has no version until its draft is published."""
    _require_admin(actor)
    current_version()  # installs the default workflow, so there is always one to copy
    name = name.strip()
    if not name:
        raise InvalidInput("Name is blank.", {"name": ["Must not be blank."]})
    if copy_from is not None and definition is not None:
        raise InvalidInput(
            "Give copy_from or definition, not both.",
            {"copy_from": ["Not together with definition."]},
        )
    if definition is None:
        definition = {**_copy_source(copy_from), "name": name}
    if db.session.scalar(select(Workflow.id).where(Workflow.name == name)) is not None:
        raise InvalidInput("Name taken.", {"name": [f"A workflow named {name!r} exists."]})
    workflow = Workflow(
        name=name,
        description=description,
        is_default=False,
        draft=definition,
        draft_updated_at=utcnow(),
    )
    try:
        with db.session.begin_nested():
            db.session.add(workflow)
    except IntegrityError as exc:  # created by someone else meanwhile
        raise InvalidInput("Name taken.", {"name": [f"A workflow named {name!r} exists."]}) from exc
    audit.record(
        actor, "workflow.created", workflow, audit.diff({}, {"name": name, "copy_from": copy_from})
    )
    db.session.commit()
    return workflow


def _copy_source(copy_from: int | None) -> dict[str, Any]:
    if copy_from is None:
        return default_definition()
    if db.session.get(Workflow, copy_from) is None:
        raise InvalidInput("Unknown workflow.", {"copy_from": [f"No workflow {copy_from}."]})
    newest = db.session.scalar(
        select(WorkflowVersion.definition)
        .where(WorkflowVersion.workflow_id == copy_from)
        .order_by(WorkflowVersion.number.desc())
        .limit(1)
    )
    if newest is None:
        raise InvalidInput(
            "Nothing to copy.", {"copy_from": [f"Workflow {copy_from} has no published version."]}
        )
    return dict(newest)


@rolls_back_on_error
def do_save_draft(actor: User, workflow_id: int, definition: dict[str, Any]) -> DraftCheck:
    """Keep the draft as entered, and say what is wrong with it."""
    workflow = access_workflow_by_id(actor, workflow_id, lock=True)
    audit.record(
        actor,
        "workflow.draft_saved",
        workflow,
        {"sections": [None, audit.changed_keys(workflow.draft, definition)]},
    )
    workflow.draft = definition
    workflow.draft_updated_at = utcnow()
    db.session.commit()
    loaded, errors = check_definition(definition)
    return DraftCheck(draft=definition, valid=loaded is not None, errors=errors)


def _valid_draft(workflow: Workflow) -> dict[str, Any]:
    loaded, errors = check_definition(_draft_of(workflow))
    if loaded is None:
        raise InvalidInput("The draft is not valid; fix the errors listed.", errors)
    return loaded


@rolls_back_on_error
def do_publish(
    actor: User,
    workflow_id: int,
    *,
    note: str = "",
    make_default: bool = False,
    state_map: dict[str, str] | None = None,
) -> WorkflowVersion:
    """Publish the draft as the next version (the draft stays, for further edits)."""
    workflow = access_workflow_by_id(actor, workflow_id, lock=True)
    definition = _valid_draft(workflow)
    categories = {s["name"]: s["category"] for s in definition["states"]}
    old_versions = {v.id: v.number for v in workflow.versions}
    in_flight = []
    if state_map is not None:
        in_flight = _in_flight(list(old_versions))
        _check_state_map(state_map, in_flight, categories)
    version = WorkflowVersion(
        workflow_id=workflow.id,
        number=max(old_versions.values(), default=0) + 1,
        definition=dump_definition(definition),
        note=note,
        published_by_id=actor.id,
    )
    try:
        with db.session.begin_nested():
            db.session.add(version)
    except IntegrityError as exc:
        raise Conflict("Another version was published meanwhile; try again.") from exc
    for ticket in in_flight:
        old_number = old_versions[ticket.workflow_version_id]
        _migrate(actor, ticket, version, old_number, (state_map or {})[ticket.status], categories)
    if make_default:
        db.session.execute(
            update(Workflow).where(Workflow.id != workflow.id).values(is_default=False)
        )
        workflow.is_default = True
    audit.record(
        actor,
        "workflow.published",
        workflow,
        audit.diff(
            {"version": max(old_versions.values(), default=None)},
            {
                "version": version.number,
                "note": note or None,
                "made_default": make_default or None,
                "migrated_tickets": len(in_flight) or None,
            },
        ),
    )
    try:
        db.session.commit()
    except StaleDataError as exc:
        db.session.rollback()
        raise Conflict("A ticket changed while migrating; publish again.") from exc
    return version


def _in_flight(version_ids: list[int]) -> list[Ticket]:
    if not version_ids:
        return []
    return list(
        db.session.scalars(
            select(Ticket)
            .where(Ticket.workflow_version_id.in_(version_ids), Ticket.category != "closed")
            .order_by(Ticket.id)
            .with_for_update()
        )
    )


def _check_state_map(
    state_map: dict[str, str], in_flight: list[Ticket], categories: dict[str, str]
) -> None:
    in_use: dict[str, int] = defaultdict(int)
    for ticket in in_flight:
        in_use[ticket.status] += 1
    errors: dict[str, list[str]] = {}
    for state, count in sorted(in_use.items()):
        if state not in state_map:
            errors[f"state_map.{state}"] = [
                f"State {state!r} is in use by {count} ticket(s); map it to a new state."
            ]
    for state, target in sorted(state_map.items()):
        if target not in categories:
            errors.setdefault(f"state_map.{state}", []).append(
                f"Unknown state {target!r} in the new version."
            )
    if errors:
        raise InvalidInput("The state map does not cover the tickets in flight.", errors)


def _migrate(
    actor: User,
    ticket: Ticket,
    version: WorkflowVersion,
    old_number: int,
    new_state: str,
    categories: dict[str, str],
) -> None:
    """Move one ticket onto ``version``, keeping the timestamps fire_transition keeps."""
    old_state, old_category = ticket.status, ticket.category
    now = utcnow()
    ticket.workflow_version_id = version.id
    ticket.status = new_state
    ticket.category = categories[new_state]
    if new_state != old_state:
        ticket.status_changed_at = now
    if ticket.category == "solved" and ticket.solved_at is None:
        tickets.mark_solved(ticket, now)
    elif ticket.category not in ("solved", "closed") and old_category in ("solved", "closed"):
        tickets.mark_reopened(ticket)
    tickets.record(
        ticket,
        actor,
        "workflow.migrated",
        from_state=old_state,
        to_state=new_state,
        workflow_id=version.workflow_id,
        from_version=old_number,
        to_version=version.number,
        to_category=ticket.category,
    )


# -- simulating ---------------------------------------------------------------------------------


def simulate_draft(actor: User, workflow_id: int, limit: int = 50) -> SimulationReport:
    """Run the draft against the most recently created tickets (any workflow)."""
    workflow = access_workflow_by_id(actor, workflow_id)
    definition = _valid_draft(workflow)
    limit = max(1, min(limit, MAX_SIMULATED_TICKETS))
    return simulate(definition, load_histories(limit), utcnow())


def load_histories(limit: int) -> list[dict[str, Any]]:
    """The recorded histories of the ``limit`` newest tickets, in the simulator's format."""
    rows = list(
        db.session.scalars(
            select(Ticket).order_by(Ticket.created_at.desc(), Ticket.id.desc()).limit(limit)
        )
    )
    ids = [t.id for t in rows]
    if not ids:
        return []
    events = _trail_and_messages(ids)
    firings = _firings(ids, events)
    clocks: dict[int, list[str]] = defaultdict(list)
    for ticket_id, metric in db.session.execute(
        select(SlaClock.ticket_id, SlaClock.metric).where(SlaClock.ticket_id.in_(ids))
    ):
        clocks[ticket_id].append(metric)
    categories = {
        version_id: {s["name"]: s["category"] for s in definition["states"]}
        for version_id, definition in db.session.execute(
            select(WorkflowVersion.id, WorkflowVersion.definition).where(
                WorkflowVersion.id.in_({t.workflow_version_id for t in rows})
            )
        )
    }
    return [
        _history(t, events[t.id], firings[t.id], clocks[t.id], categories[t.workflow_version_id])
        for t in rows
    ]


def _trail_and_messages(ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    events: dict[int, list[dict[str, Any]]] = defaultdict(list)
    trail = db.session.execute(
        select(TicketEvent, User.role)
        .outerjoin(User, User.id == TicketEvent.actor_id)
        .where(TicketEvent.ticket_id.in_(ids))
        .order_by(TicketEvent.id)
    )
    for event, role in trail:
        payload = {
            **event.data,
            "actor_role": role.value if role else None,
            "from_state": event.from_state,
            "to_state": event.to_state,
        }
        events[event.ticket_id].append(
            {"kind": event.kind, "at": event.created_at, "payload": payload}
        )
    # Messages are not in the trail: they are their own table.
    messages = db.session.execute(
        select(Message.ticket_id, Message.created_at, Message.internal, User.role)
        .join(User, User.id == Message.author_id)
        .where(Message.ticket_id.in_(ids))
        .order_by(Message.id)
    )
    for ticket_id, created_at, internal, role in messages:
        payload = {"actor_role": role.value, "author_role": role.value, "internal": internal}
        events[ticket_id].append({"kind": "message.created", "at": created_at, "payload": payload})
    return events


def _firings(
    ids: list[int], events: dict[int, list[dict[str, Any]]]
) -> dict[int, list[dict[str, Any]]]:
    """What rules really did: time rules from their firing records; event rules from the
    changes they caused (the trail names the rule) and the notifications they sent."""
    firings: dict[int, list[dict[str, Any]]] = defaultdict(list)
    time_rules: dict[int, set[str]] = defaultdict(set)
    for firing in db.session.scalars(select(RuleFiring).where(RuleFiring.ticket_id.in_(ids))):
        time_rules[firing.ticket_id].add(firing.rule)
        firings[firing.ticket_id].append(
            {"rule": firing.rule, "at": firing.fired_at, "anchor": firing.anchor}
        )
    for ticket_id, ticket_events in events.items():
        for event in ticket_events:
            rule = (event["payload"].get("cause") or {}).get("rule")
            if rule and RULE_NAME.match(rule) and rule not in time_rules[ticket_id]:
                firings[ticket_id].append({"rule": rule, "at": event["at"]})
    notes = db.session.execute(
        select(Notification.ticket_id, Notification.created_at, Notification.dedupe_key).where(
            Notification.ticket_id.in_(ids), Notification.kind.in_(RULE_NOTIFICATION_KINDS)
        )
    )
    for ticket_id, created_at, key in notes:
        match = RULE_NOTIFICATION.match(key)
        if match:
            firings[ticket_id].append({"rule": match[1], "at": created_at})
    return firings


def _history(
    ticket: Ticket,
    events: list[dict[str, Any]],
    fired: list[dict[str, Any]],
    clocks: list[str],
    categories: dict[str, str],
) -> dict[str, Any]:
    tag_changes = [
        e["payload"]["changes"]["tags"]
        for e in events
        if e["kind"] == "ticket.updated" and "tags" in e["payload"].get("changes", {})
    ]
    breaches = [e["payload"].get("metric") for e in events if e["kind"] == "sla.breached"]
    return {
        "ticket_id": ticket.id,
        "created_at": ticket.created_at,
        "priority": Priority(ticket.priority).label,
        "requester_id": ticket.requester_id,
        "channel": ticket.channel,
        # Tags given at creation are not in the trail: the first change says what they were.
        "tags": list(tag_changes[0][0]) if tag_changes else list(ticket.tags),
        "categories": categories,
        "events": sorted(events, key=lambda e: e["at"]),
        "fired": fired,
        "sla": {
            "first_response_at": ticket.first_responded_at,
            "solved_at": ticket.solved_at or ticket.closed_at,
            "breaches": breaches,
            "clocks": clocks,
        },
    }
