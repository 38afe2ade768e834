"""Teams and their members, lead, assignment policy and business hours.

Admins manage teams; every change is recorded in the admin audit log in the same transaction.
A team's ``calendar`` (a ``workflows.calendar`` definition, or None) replaces the workflow SLA
policy's business hours for the team's tickets; editing it reschedules the running SLA clocks
of the team's tickets at once (``sla.on_team_calendar_change``).
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from autocrm import policies
from autocrm.audit import services as audit
from autocrm.automation import assignment
from autocrm.columns import utcnow
from autocrm.engine.versions import current_version
from autocrm.errors import Forbidden, InvalidInput, NotFound
from autocrm.extensions import db
from autocrm.listing import Page, PageRequest, keyset_page
from autocrm.people.models import AssignmentPolicy, Team, TeamMembership, User
from autocrm.people.users import require_admin
from autocrm.realtime import publish as realtime
from autocrm.sla import clocks as sla
from autocrm.transaction import duplicates_refused, rolls_back_on_error
from workflows.calendar import BusinessCalendar

MAX_NAME_LENGTH = 120
MAX_OPEN_PER_AGENT = 10_000
# workflows.calendar names the wrong part of a definition first: "hours.mon.0: ...".
_CALENDAR_LOCATION = re.compile(r"^(timezone|hours|holidays)((?:\.[A-Za-z0-9_]+)*): (.+)$")


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


def _check_name(name: str, except_id: int | None = None) -> str:
    name = name.strip()
    if not name:
        raise InvalidInput("Team name is blank.", {"name": ["Must not be blank."]})
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidInput(
            "Team name too long.", {"name": [f"Use at most {MAX_NAME_LENGTH} characters."]}
        )
    existing = db.session.scalar(select(Team.id).where(Team.name == name))
    if existing is not None and existing != except_id:
        raise _name_in_use()
    return name


def _name_in_use() -> InvalidInput:
    return InvalidInput("Team name in use.", {"name": ["A team with this name exists."]})


def _check_lead(lead_id: int | None) -> None:
    if lead_id is None:
        return
    lead = db.session.get(User, lead_id)
    if lead is None or not lead.role.is_staff or not lead.active:
        raise InvalidInput("Invalid team lead.", {"lead_id": ["Must be an active agent or admin."]})


def _check_settings(settings: dict[str, Any]) -> None:
    if "assignment_policy" in settings:
        try:
            settings["assignment_policy"] = AssignmentPolicy(settings["assignment_policy"])
        except ValueError:
            choices = ", ".join(p.value for p in AssignmentPolicy)
            raise InvalidInput(
                "Unknown assignment policy.", {"assignment_policy": [f"Choose one of: {choices}."]}
            ) from None
    cap = settings.get("max_open_per_agent")
    if cap is not None and (
        isinstance(cap, bool) or not isinstance(cap, int) or not 1 <= cap <= MAX_OPEN_PER_AGENT
    ):
        raise InvalidInput(
            "Invalid per-agent cap.",
            {"max_open_per_agent": [f"A whole number from 1 to {MAX_OPEN_PER_AGENT}, or none."]},
        )


def check_calendar(definition: Any) -> dict[str, Any] | None:
    """A team calendar as given, if ``BusinessCalendar.from_definition`` accepts it; None (or
    an empty mapping) means "no calendar of its own". Errors name the field that is wrong,
    under ``calendar`` (``calendar.hours.mon.0``)."""
    if definition is None or definition == {}:
        return None
    try:
        BusinessCalendar.from_definition(definition)
    except ValueError as exc:
        message = str(exc)
        match = _CALENDAR_LOCATION.match(message)
        field = f"calendar.{match[1]}{match[2]}" if match else "calendar"
        raise InvalidInput(
            "The business hours are not valid.", {field: [match[3] if match else message]}
        ) from None
    return definition


def workflow_calendar() -> dict[str, Any] | None:
    """The business hours of the default workflow's SLA policy: what new tickets of a team
    without hours of its own count in."""
    policy = sla.policy_of(current_version().id)
    return policy["calendar"] if policy else None


def _member_label(user: User) -> str:
    return user.name


def _lead_label(lead_id: int | None) -> str | None:
    lead = db.session.get(User, lead_id) if lead_id is not None else None
    return lead.name if lead else None


def create_team(
    name: str, description: str = "", lead_id: int | None = None, **settings: Any
) -> Team:
    """Add a team to the session without committing (shared by the API and the CLI).
    ``settings``: ``assignment_policy``, ``max_open_per_agent``, ``calendar``."""
    name = _check_name(name)
    _check_lead(lead_id)
    _check_settings(settings)
    if "calendar" in settings:
        settings["calendar"] = check_calendar(settings["calendar"])
    team = Team(name=name, description=description, lead_id=lead_id, **settings)
    db.session.add(team)
    with duplicates_refused(Team.name, _name_in_use):
        db.session.flush()
    if lead_id is not None:
        add_member(team, db.session.get_one(User, lead_id))
    return team


@rolls_back_on_error
def do_create_team(actor: User, **fields: Any) -> Team:
    require_admin(actor)
    team = create_team(**fields)
    created = {
        "name": team.name,
        "description": team.description or None,
        "lead": _lead_label(team.lead_id),
        "assignment_policy": team.assignment_policy,
        "max_open_per_agent": team.max_open_per_agent,
        "calendar": team.calendar,
    }
    audit.record(actor, "team.created", team, audit.diff({}, created))
    db.session.commit()
    return team


@rolls_back_on_error
def do_update_team(actor: User, team_id: int, changes: dict[str, Any]) -> Team:
    """Change a team's name, description, lead, assignment policy, per-agent cap or calendar.
    A new calendar reschedules the running SLA clocks of the team's tickets."""
    require_admin(actor)
    team = access_team_by_id(actor, team_id)
    changes = dict(changes)
    if "name" in changes:
        changes["name"] = _check_name(changes["name"], except_id=team.id)
    _check_settings(changes)
    if "calendar" in changes:
        changes["calendar"] = check_calendar(changes["calendar"])
    if changes.get("lead_id") is not None and changes["lead_id"] != team.lead_id:
        # Only a new lead is checked: a form re-sending a since-deactivated lead changes nothing.
        _check_lead(changes["lead_id"])
        add_member(team, db.session.get_one(User, changes["lead_id"]))
    changed = audit.diff({field: getattr(team, field) for field in changes}, changes)
    previous_calendar = team.calendar
    for field, value in changes.items():
        setattr(team, field, value)
    if "calendar" in changed:
        db.session.flush()
        sla.on_team_calendar_change(team, previous_calendar, utcnow())
    if "lead_id" in changed:
        old, new = changed.pop("lead_id")
        changed["lead"] = [_lead_label(old), _lead_label(new)]
    if changed:
        audit.record(actor, "team.updated", team, changed)
    with duplicates_refused(Team.name, _name_in_use):
        db.session.commit()
    return team


def add_member(team: Team, user: User) -> None:
    if not any(m.user is user or m.user_id == user.id for m in team.memberships):
        team.memberships.append(TeamMembership(user=user))


@rolls_back_on_error
def do_add_member(actor: User, team_id: int, user_id: int) -> Team:
    require_admin(actor)
    team = access_team_by_id(actor, team_id)
    user = db.session.get(User, user_id)
    if user is None:
        raise InvalidInput("Unknown user.", {"user_id": [f"No user {user_id}."]})
    if not user.role.is_staff:
        raise InvalidInput("Customers cannot join teams.", {"user_id": ["Must be staff."]})
    if user.id not in team.member_ids:
        add_member(team, user)
        audit.record(actor, "team.member_added", team, {"member": [None, _member_label(user)]})
    db.session.commit()
    return team


@rolls_back_on_error
def do_remove_member(actor: User, team_id: int, user_id: int) -> Team:
    require_admin(actor)
    team = access_team_by_id(actor, team_id)
    membership = db.session.get(TeamMembership, (team_id, user_id))
    if membership is None:
        raise NotFound(f"User {user_id} is not a member of team {team_id}.")
    changes: dict[str, list[Any]] = {"member": [_member_label(membership.user), None]}
    if team.lead_id == user_id:
        team.lead_id = None
        changes["lead"] = [_member_label(membership.user), None]
    db.session.delete(membership)
    assignment.release_open_tickets(actor, membership.user, team_id)
    audit.record(actor, "team.member_removed", team, changes)
    realtime.disconnect_user(user_id)  # its sockets may sit in the team's rooms
    db.session.commit()
    db.session.refresh(team)
    return team
