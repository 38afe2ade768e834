"""Teams and their members."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from autocrm import policies, realtime
from autocrm.errors import Forbidden, InvalidInput, NotFound
from autocrm.extensions import db
from autocrm.models import Team, TeamMembership, User
from autocrm.services.listing import Page, PageRequest, keyset_page
from autocrm.services.users import require_admin


def access_team_by_id(actor: User, team_id: int) -> Team:
    if not policies.can_list_teams(actor):
        raise NotFound(f"Team {team_id} not found.")
    team = db.session.get(Team, team_id)
    if team is None:
        raise NotFound(f"Team {team_id} not found.")
    return team


def list_teams(actor: User, page: PageRequest) -> Page[Team]:
    if not policies.can_list_teams(actor):
        raise Forbidden("Only staff may list teams.")
    return keyset_page(select(Team), page, {"id": Team.id}, Team.id)


def _check_name_free(name: str, except_id: int | None = None) -> None:
    existing = db.session.scalar(select(Team.id).where(Team.name == name))
    if existing is not None and existing != except_id:
        raise InvalidInput("Team name in use.", {"name": ["A team with this name exists."]})


def _check_lead(lead_id: int | None) -> None:
    if lead_id is None:
        return
    lead = db.session.get(User, lead_id)
    if lead is None or not lead.role.is_staff or not lead.active:
        raise InvalidInput("Invalid team lead.", {"lead_id": ["Must be an active agent or admin."]})


def create_team(
    name: str, description: str = "", lead_id: int | None = None, **settings: Any
) -> Team:
    """Add a team to the session without committing (shared by the API and the CLI).
    ``settings``: ``assignment_policy``, ``max_open_per_agent``."""
    _check_name_free(name)
    _check_lead(lead_id)
    team = Team(name=name, description=description, lead_id=lead_id, **settings)
    db.session.add(team)
    db.session.flush()
    if lead_id is not None:
        add_member(team, db.session.get_one(User, lead_id))
    return team


def do_create_team(actor: User, **fields: Any) -> Team:
    require_admin(actor)
    team = create_team(**fields)
    db.session.commit()
    return team


def do_update_team(actor: User, team_id: int, changes: dict[str, Any]) -> Team:
    require_admin(actor)
    team = access_team_by_id(actor, team_id)
    if "name" in changes:
        _check_name_free(changes["name"], except_id=team.id)
    if changes.get("lead_id") is not None:
        _check_lead(changes["lead_id"])
        add_member(team, db.session.get_one(User, changes["lead_id"]))
    for field, value in changes.items():
        setattr(team, field, value)
    db.session.commit()
    return team


def add_member(team: Team, user: User) -> None:
    if not any(m.user is user or m.user_id == user.id for m in team.memberships):
        team.memberships.append(TeamMembership(user=user))


def do_add_member(actor: User, team_id: int, user_id: int) -> Team:
    require_admin(actor)
    team = access_team_by_id(actor, team_id)
    user = db.session.get(User, user_id)
    if user is None:
        raise InvalidInput("Unknown user.", {"user_id": [f"No user {user_id}."]})
    if not user.role.is_staff:
        raise InvalidInput("Customers cannot join teams.", {"user_id": ["Must be staff."]})
    add_member(team, user)
    db.session.commit()
    return team


def do_remove_member(actor: User, team_id: int, user_id: int) -> Team:
    require_admin(actor)
    team = access_team_by_id(actor, team_id)
    membership = db.session.get(TeamMembership, (team_id, user_id))
    if membership is None:
        raise NotFound(f"User {user_id} is not a member of team {team_id}.")
    if team.lead_id == user_id:
        team.lead_id = None
    db.session.delete(membership)
    realtime.disconnect_user(user_id)  # its sockets may sit in the team's rooms
    db.session.commit()
    db.session.refresh(team)
    return team
