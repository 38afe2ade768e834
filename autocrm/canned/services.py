"""Canned responses: reply templates agents manage and insert, with plain-text placeholders.

Who may do what (staff only; customers never see them):
- an agent sees the responses of their teams and the ones shared with everyone (no team);
  an admin sees all of them;
- an agent creates, edits and deletes the responses of their own teams; responses shared with
  everyone are managed by admins.

Placeholders (``{{customer_name}}``, ``{{ticket_id}}``, ``{{agent_name}}``) are substituted by
plain string replacement, never by a template engine: a body such as ``{{ 7*7 }}`` stays as
written, and a customer's name is inserted as text.
"""

from __future__ import annotations

import re

from sqlalchemy import select

from autocrm import policies
from autocrm.audit import services as audit
from autocrm.canned.models import CannedResponse
from autocrm.errors import Forbidden, InvalidInput, NotFound
from autocrm.extensions import db
from autocrm.people.models import Team, User
from autocrm.tickets.services import access_ticket_by_id
from autocrm.transaction import rolls_back_on_error

MAX_TITLE = 120
MAX_BODY = 20_000
PLACEHOLDERS = ("customer_name", "ticket_id", "agent_name")
_PLACEHOLDER = re.compile(r"\{\{\s*(" + "|".join(PLACEHOLDERS) + r")\s*\}\}")


# -- policies ----------------------------------------------------------------------------------


def _require_staff(actor: User) -> None:
    if not policies.is_staff(actor):
        raise Forbidden("Only staff use canned responses.")


def manageable_teams(actor: User) -> list[Team]:
    """The teams ``actor`` may file a response under (admins: every team)."""
    _require_staff(actor)
    stmt = select(Team).order_by(Team.name)
    if not policies.is_admin(actor):
        stmt = stmt.where(Team.id.in_(actor.team_ids))
    return list(db.session.scalars(stmt))


# -- reading -----------------------------------------------------------------------------------


def list_canned(actor: User) -> list[CannedResponse]:
    _require_staff(actor)
    stmt = select(CannedResponse).where(policies.visible_canned_responses(actor))
    return list(db.session.scalars(stmt.order_by(CannedResponse.title, CannedResponse.id)))


def access_canned_by_id(actor: User, response_id: int) -> CannedResponse:
    _require_staff(actor)
    response = db.session.get(CannedResponse, response_id)
    if response is None or not (
        policies.is_admin(actor) or response.team_id is None or response.team_id in actor.team_ids
    ):
        raise NotFound(f"Canned response {response_id} not found.")
    return response


def fill_placeholders(body: str, values: dict[str, str]) -> str:
    """Replace the known placeholders by plain text; anything else stays as written."""
    return _PLACEHOLDER.sub(lambda match: values[match.group(1)], body)


def render_for_ticket(actor: User, response_id: int, ticket_id: int) -> str:
    """A response's body with the placeholders filled in for one ticket and agent."""
    response = access_canned_by_id(actor, response_id)
    ticket = access_ticket_by_id(actor, ticket_id)
    values = {
        "customer_name": ticket.requester.name,
        "ticket_id": str(ticket.id),
        "agent_name": actor.name,
    }
    return fill_placeholders(response.body, values)


# -- writing -----------------------------------------------------------------------------------


def check_fields(actor: User, title: str, body: str, team_id: int | None) -> tuple[str, str]:
    errors: dict[str, list[str]] = {}
    title = title.strip()
    if not title:
        errors["title"] = ["Must not be blank."]
    elif len(title) > MAX_TITLE:
        errors["title"] = [f"At most {MAX_TITLE} characters."]
    if not body.strip():
        errors["body"] = ["Must not be blank."]
    elif len(body) > MAX_BODY:
        errors["body"] = [f"At most {MAX_BODY} characters."]
    if team_id is None:
        if not policies.can_share_canned_with_everyone(actor):
            errors["team_id"] = ["Only admins may share a response with everyone."]
    elif team_id not in {team.id for team in manageable_teams(actor)}:
        errors["team_id"] = ["Choose one of your teams."]
    if errors:
        raise InvalidInput("Please correct the marked fields.", errors)
    return title, body


@rolls_back_on_error
def do_create_canned(actor: User, *, title: str, body: str, team_id: int | None) -> CannedResponse:
    _require_staff(actor)
    title, body = check_fields(actor, title, body, team_id)
    response = CannedResponse(title=title, body=body, team_id=team_id, created_by_id=actor.id)
    db.session.add(response)
    db.session.commit()
    return response


def _access_for_change(actor: User, response_id: int) -> CannedResponse:
    response = access_canned_by_id(actor, response_id)
    if not policies.can_manage_canned_response(actor, response):
        raise Forbidden("Only admins may change responses shared with everyone.")
    return response


@rolls_back_on_error
def do_update_canned(
    actor: User, response_id: int, *, title: str, body: str, team_id: int | None
) -> CannedResponse:
    response = _access_for_change(actor, response_id)
    title, body = check_fields(actor, title, body, team_id)
    if team_id != response.team_id:
        audience = [_audience(response.team_id), _audience(team_id)]
        audit.record(actor, "canned.shared_changed", response, {"shared_with": audience})
    response.title, response.body, response.team_id = title, body, team_id
    db.session.commit()
    return response


def _audience(team_id: int | None) -> str:
    team = db.session.get(Team, team_id) if team_id is not None else None
    return f"team {team.name}" if team else "everyone"


@rolls_back_on_error
def do_delete_canned(actor: User, response_id: int) -> None:
    response = _access_for_change(actor, response_id)
    db.session.delete(response)
    db.session.commit()
