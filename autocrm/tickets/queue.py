"""Reads the agent's queue page needs beside the ticket list: SLA due times, people's names,
who tickets may be assigned to, and the workflow's states and transitions for the filters.

Each function is one query for a whole page, so the page's query count does not grow with
its length.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from autocrm import policies
from autocrm.engine.versions import current_version, engine_for, engine_for_version
from autocrm.extensions import db
from autocrm.people.models import Organization, Role, TeamMembership, User
from autocrm.sla.models import SlaClock
from autocrm.tickets.models import Ticket
from workflows.engine import CompiledWorkflow

SLA_STATES = ("breached", "due_soon", "on_track", "none")
DUE_SOON = timedelta(hours=1)  # without a warn_at, "due soon" is the last hour


@dataclass(frozen=True)
class SlaDue:
    """A ticket's nearest running SLA deadline."""

    metric: str
    due_at: datetime
    warn_at: datetime | None

    def state(self, now: datetime) -> str:
        if self.due_at <= now:
            return "breached"
        warn = self.warn_at or self.due_at - DUE_SOON
        return "due_soon" if warn <= now else "on_track"


def sla_due(ticket_ids: Iterable[int]) -> dict[int, SlaDue]:
    """Each ticket's running clock that is due first (tickets without one are absent)."""
    ids = list(dict.fromkeys(ticket_ids))
    if not ids:
        return {}
    rows = db.session.execute(
        select(SlaClock.ticket_id, SlaClock.metric, SlaClock.due_at, SlaClock.warn_at).where(
            SlaClock.ticket_id.in_(ids),
            SlaClock.stopped_at.is_(None),
            SlaClock.due_at.is_not(None),
        )
    )
    nearest: dict[int, SlaDue] = {}
    for ticket_id, metric, due_at, warn_at in rows:
        # due_at is never None here (the query says so); the test narrows its type.
        if due_at is not None and (ticket_id not in nearest or due_at < nearest[ticket_id].due_at):
            nearest[ticket_id] = SlaDue(metric, due_at, warn_at)
    return nearest


def sla_state(due: SlaDue | None, now: datetime) -> str:
    return "none" if due is None else due.state(now)


@dataclass(frozen=True)
class Requester:
    name: str
    organization: str | None


@dataclass(frozen=True)
class RowPeople:
    """The people a page of rows names: assignees' names by user id, and each ticket's
    requester by ticket id."""

    names: dict[int, str]
    requesters: dict[int, Requester]


def people_of(items: Iterable[Ticket]) -> RowPeople:
    """The rows' assignees and requesters (with their organizations), in one query."""
    items = list(items)
    ids = {t.requester_id for t in items} | {t.assignee_id for t in items if t.assignee_id}
    if not ids:
        return RowPeople({}, {})
    rows = db.session.execute(
        select(User.id, User.name, Organization.name)
        .outerjoin(Organization, Organization.id == User.organization_id)
        .where(User.id.in_(ids))
    )
    people = {user_id: Requester(name, organization) for user_id, name, organization in rows}
    assignees = {t.assignee_id for t in items if t.assignee_id}
    return RowPeople(
        names={i: people[i].name for i in assignees if i in people},
        requesters={t.id: people[t.requester_id] for t in items if t.requester_id in people},
    )


def assignable_agents(actor: User) -> list[User]:
    """Active staff a ticket in the actor's queue may go to: the members of the actor's teams
    (every active agent and admin, for an admin), the actor first."""
    if not policies.is_staff(actor):
        return []
    stmt = select(User).where(User.active.is_(True), User.role != Role.CUSTOMER)
    if not policies.is_admin(actor):
        members = select(TeamMembership.user_id).where(TeamMembership.team_id.in_(actor.team_ids))
        stmt = stmt.where(User.id.in_(members) | (User.id == actor.id))
    people = list(db.session.scalars(stmt.order_by(User.name, User.id)))
    return sorted(people, key=lambda person: person.id != actor.id)


def current_workflow() -> CompiledWorkflow:
    """The current workflow, compiled: a page reads it once and passes it on."""
    return engine_for_version(current_version().id)


def workflow_states(engine: CompiledWorkflow) -> list[tuple[str, str, str]]:
    """(name, label, category) of the workflow's states, for the status filter."""
    return [
        (name, engine.state_labels[name], category) for name, category in engine.categories.items()
    ]


def workflow_transitions(engine: CompiledWorkflow) -> list[tuple[str, str]]:
    """(name, label) of the workflow's transitions, for bulk actions."""
    return [(spec.name, spec.label) for spec in engine.transitions.values()]


def status_label(ticket: Ticket) -> str:
    """The label of the ticket's state in the workflow version it runs on."""
    return engine_for(ticket).state_labels.get(ticket.status, ticket.status)


def transition_label(ticket: Ticket, name: str) -> str | None:
    """The label of transition ``name`` in the workflow version the ticket runs on."""
    spec = engine_for(ticket).transitions.get(name)
    return spec.label if spec else None
