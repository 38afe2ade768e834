"""Administering workflows: list them, create one, edit its draft, validate and draw it.

Admins only. A workflow's draft is kept exactly as entered, valid or not, so nothing typed is
lost to an error; validation reports problems keyed by location (``transitions.2.to``).
Publishing is ``autocrm.engine.publishing``, simulation ``autocrm.engine.simulation``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from marshmallow import ValidationError
from sqlalchemy import Result, func, select
from sqlalchemy.exc import IntegrityError

from autocrm import policies
from autocrm.audit import services as audit
from autocrm.columns import utcnow
from autocrm.engine.models import Workflow, WorkflowVersion
from autocrm.engine.versions import current_version
from autocrm.errors import Forbidden, InvalidInput, NotFound
from autocrm.extensions import db
from autocrm.people.models import User
from autocrm.tickets.models import Ticket
from autocrm.transaction import rolls_back_on_error
from workflows import default_definition, load_definition
from workflows.diagram import render_svg


def _require_admin(actor: User) -> None:
    if not policies.is_admin(actor):
        raise Forbidden("Only administrators may manage workflows.")


def _require_administration(actor: User) -> None:
    """Changing a workflow: an admin, and not with a token short of the admin scope."""
    if not policies.can_administer(actor):
        raise Forbidden("Only administrators may change workflows; a token needs the admin scope.")


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
    rows: Result[Workflow, int | None] = db.session.execute(
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
    rows: Result[WorkflowVersion, str | None, int | None] = db.session.execute(query)
    for version, publisher, count in rows:
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
    """A workflow to read, or (``lock``) to change: locked, and only for those who may."""
    if lock:
        _require_administration(actor)
    else:
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
    _require_administration(actor)
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


def valid_draft(workflow: Workflow) -> dict[str, Any]:
    loaded, errors = check_definition(_draft_of(workflow))
    if loaded is None:
        raise InvalidInput("The draft is not valid; fix the errors listed.", errors)
    return loaded
