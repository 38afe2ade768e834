"""Automatic assignment: pick an agent of the ticket's team by the team's policy.

Round-robin or least-open-tickets, among the team's active agents under the per-agent cap of
open tickets. With nobody free the ticket stays in the team queue; it is tried again when an
agent's load drops and by the periodic sweep. A ticket that already has an assignee is never
touched: manual assignment always wins.
"""

from __future__ import annotations

from sqlalchemy import func, select

from autocrm.events import causes
from autocrm.events.kinds import TicketChange, TicketTransitioned, TicketUpdated
from autocrm.extensions import db
from autocrm.people.models import AssignmentPolicy, Role, Team, TeamMembership, User
from autocrm.tickets.models import Ticket
from autocrm.tickets.services import apply_changes
from workflows.definition import DONE_CATEGORIES


def on_ticket_event(event: TicketChange) -> None:
    """A handler: a ticket that entered a team waits for an agent; an agent who finished or
    gave up a ticket has room for one that waits."""
    ticket = db.session.get_one(Ticket, event.ticket_id)
    depth = event.depth + 1
    changes = event.changes if isinstance(event, TicketUpdated) else {}
    if event.kind == "ticket.created" or "team_id" in changes or "assignee_id" in changes:
        auto_assign(ticket, depth)
    freed_by: int | None = None
    if isinstance(event, TicketTransitioned) and event.to_category in DONE_CATEGORIES:
        freed_by = ticket.assignee_id
    elif "assignee_id" in changes:
        freed_by = changes["assignee_id"][0]
    agent = db.session.get(User, freed_by) if freed_by is not None else None
    if agent is not None:
        for waiting in waiting_tickets(agent.team_ids, limit=5):
            auto_assign(waiting, depth)


def open_loads(team: Team) -> dict[int, int]:
    """Active agents of the team -> their open assigned tickets (any team), one query."""
    loads = (
        select(Ticket.assignee_id, func.count(Ticket.id).label("n"))
        .where(Ticket.category.not_in(DONE_CATEGORIES), Ticket.assignee_id.is_not(None))
        .group_by(Ticket.assignee_id)
        .subquery()
    )
    rows = db.session.execute(
        select(User.id, func.coalesce(loads.c.n, 0))
        .join(TeamMembership, TeamMembership.user_id == User.id)
        .outerjoin(loads, loads.c.assignee_id == User.id)
        .where(TeamMembership.team_id == team.id, User.active.is_(True), User.role == Role.AGENT)
        .order_by(User.id)
    )
    return dict(rows.all())


def pick_agent(team: Team) -> int | None:
    loads = open_loads(team)
    cap = team.max_open_per_agent
    free = [agent for agent, load in loads.items() if cap is None or load < cap]
    if not free:
        return None
    if team.assignment_policy is AssignmentPolicy.LEAST_OPEN:
        return min(free, key=lambda agent: (loads[agent], agent))
    after = [agent for agent in free if agent > (team.last_assigned_user_id or 0)]
    return (after or free)[0]


def auto_assign(ticket: Ticket, depth: int) -> bool:
    """Assign the ticket if it waits in a team with an automatic policy and someone is free."""
    if ticket.assignee_id is not None or ticket.team_id is None:
        return False
    if ticket.category in DONE_CATEGORIES:
        return False
    team = db.session.get(Team, ticket.team_id, with_for_update=True)
    if team is None or team.assignment_policy is AssignmentPolicy.MANUAL:
        return False
    agent_id = pick_agent(team)
    if agent_id is None:
        return False
    rule = f"assignment:{team.assignment_policy.value}"
    because = [
        {
            "field": "team",
            "op": "policy",
            "value": team.assignment_policy.value,
            "actual": team.name,
        }
    ]
    with causes.caused_by(rule, workflow_version=None, because=because, depth=depth):
        apply_changes(None, ticket, {"assignee_id": agent_id})
    team.last_assigned_user_id = agent_id
    return True


def release_open_tickets(actor: User, user: User, team_id: int | None = None) -> int:
    """Unassign a user's unfinished tickets (in one team, or all): they go back to their team's
    queue, where the ticket.updated event lets the team's policy pick someone else. For an agent
    who leaves (deactivated, made a customer, or taken out of the team); their solved and closed
    tickets keep them. Returns how many were released."""
    stmt = (
        select(Ticket)
        .where(Ticket.assignee_id == user.id, Ticket.category.not_in(DONE_CATEGORIES))
        .order_by(Ticket.id)
        .with_for_update()
    )
    if team_id is not None:
        stmt = stmt.where(Ticket.team_id == team_id)
    released = db.session.scalars(stmt).all()
    for ticket in released:
        apply_changes(actor, ticket, {"assignee_id": None})
    return len(released)


def open_assigned_count(user: User) -> int:
    """How many unfinished tickets the user holds (what deactivating them would release)."""
    return db.session.execute(
        select(func.count())
        .select_from(Ticket)
        .where(Ticket.assignee_id == user.id, Ticket.category.not_in(DONE_CATEGORIES))
    ).scalar_one()


def waiting_tickets(team_ids: list[int] | None = None, limit: int = 100) -> list[Ticket]:
    """Unassigned, unfinished tickets in teams with an automatic policy, oldest first."""
    stmt = (
        select(Ticket)
        .join(Team, Team.id == Ticket.team_id)
        .where(
            Ticket.assignee_id.is_(None),
            Ticket.category.not_in(DONE_CATEGORIES),
            Team.assignment_policy != AssignmentPolicy.MANUAL,
        )
        .order_by(Ticket.created_at)
        .limit(limit)
    )
    if team_ids is not None:
        stmt = stmt.where(Ticket.team_id.in_(team_ids))
    return list(db.session.scalars(stmt))
