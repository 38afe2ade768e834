"""Publishing a workflow's draft as its next immutable, numbered version.

Tickets keep the version they pinned unless the admin gives a state map, which moves every
in-flight ticket of the workflow onto the new version (each move recorded in the ticket's
trail).
"""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from autocrm.audit import services as audit
from autocrm.columns import utcnow
from autocrm.engine.drafts import access_workflow_by_id, valid_draft
from autocrm.engine.models import Workflow, WorkflowVersion
from autocrm.errors import Conflict, InvalidInput
from autocrm.events.emit import by, emit
from autocrm.events.kinds import WorkflowMigrated
from autocrm.extensions import db
from autocrm.people.models import User
from autocrm.tickets.models import Ticket
from autocrm.tickets.state import enter_state
from autocrm.transaction import rolls_back_on_error
from workflows import dump_definition


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
    definition = valid_draft(workflow)
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
    """Move one ticket onto ``version``; a new state is entered as a transition enters it
    (timestamps, SLA clocks), in the new version's terms."""
    old_state, old_category = ticket.status, ticket.category
    ticket.workflow_version_id = version.id
    if (new_state, categories[new_state]) != (old_state, old_category):
        enter_state(
            ticket,
            from_category=old_category,
            to_state=new_state,
            to_category=categories[new_state],
            now=utcnow(),
        )
    emit(
        WorkflowMigrated(
            ticket_id=ticket.id,
            **by(actor),
            from_state=old_state,
            to_state=new_state,
            workflow_id=version.workflow_id,
            from_version=old_number,
            to_version=version.number,
            to_category=ticket.category,
        )
    )
