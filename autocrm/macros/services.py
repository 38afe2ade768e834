"""Macros: who sees and manages which, creating, changing and deleting them, and their
placeholders. Applying one to a ticket is ``autocrm.macros.applying``.

Who may do what (staff only; customers never see macros):
- a personal macro is its owner's alone (admins included: nobody else sees it);
- an agent sees their teams' macros and the global ones (an admin: every team's), and
  manages their own teams' macros; global macros are managed by admins.

Placeholders (``{{ticket.number}}``, ``{{ticket.subject}}``, ``{{requester.name}}``,
``{{agent.name}}`` ..., and the canned responses' ``{{customer_name}}``, ``{{ticket_id}}``,
``{{agent_name}}``) are substituted by plain string replacement, never by a template engine:
a body such as ``{{ 7*7 }}`` stays as written, and a customer's name is inserted as text.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from autocrm import policies
from autocrm.audit import services as audit
from autocrm.columns import MAX_INT32
from autocrm.engine.versions import current_version, engine_for_version
from autocrm.errors import Forbidden, InvalidInput, NotFound
from autocrm.extensions import db
from autocrm.macros.models import Macro, MacroScope
from autocrm.people.models import Team, User
from autocrm.requestguard import UNSTORABLE_TEXT, is_storable
from autocrm.tickets.models import Priority, Ticket
from autocrm.tickets.services import normalize_tags
from autocrm.transaction import rolls_back_on_error

MAX_TITLE = 120
MAX_BODY = 20_000
MAX_TAGS = 20
ME = "me"
ACTION_KEYS = ("priority", "team_id", "assignee_id", "add_tags", "remove_tags", "transition")
PLACEHOLDERS = (
    "ticket.number",
    "ticket.subject",
    "requester.name",
    "requester.first_name",
    "requester.email",
    "agent.name",
    "agent.first_name",
)
LEGACY_PLACEHOLDERS = {  # the canned responses' names, kept for the texts that use them
    "customer_name": "requester.name",
    "ticket_id": "ticket.number",
    "agent_name": "agent.name",
}
_PLACEHOLDER = re.compile(
    r"\{\{\s*("
    + "|".join(re.escape(name) for name in (*PLACEHOLDERS, *LEGACY_PLACEHOLDERS))
    + r")\s*\}\}"
)


# -- policies ----------------------------------------------------------------------------------


def _require_staff(actor: User) -> None:
    if not policies.is_staff(actor):
        raise Forbidden("Only staff use macros.")


def manageable_teams(actor: User) -> list[Team]:
    """The teams ``actor`` may share a macro with (admins: every team)."""
    _require_staff(actor)
    stmt = select(Team).order_by(Team.name)
    if not policies.is_admin(actor):
        stmt = stmt.where(Team.id.in_(actor.team_ids))
    return list(db.session.scalars(stmt))


def team_choices_for_changes(actor: User) -> list[Team]:
    """The teams a macro may move a ticket to: any team (staff may move tickets anywhere)."""
    _require_staff(actor)
    return list(db.session.scalars(select(Team).order_by(Team.name)))


# -- reading -----------------------------------------------------------------------------------


def list_macros(actor: User) -> list[Macro]:
    _require_staff(actor)
    stmt = select(Macro).where(policies.visible_macros(actor))
    return list(db.session.scalars(stmt.order_by(Macro.title, Macro.id)))


def access_macro_by_id(actor: User, macro_id: int) -> Macro:
    _require_staff(actor)
    macro = db.session.get(Macro, macro_id)
    if macro is None or not policies.can_view_macro(actor, macro):
        raise NotFound(f"Macro {macro_id} not found.")
    return macro


def placeholder_values(ticket: Ticket, actor: User) -> dict[str, str]:
    requester, agent = ticket.requester, actor
    values = {
        "ticket.number": str(ticket.id),
        "ticket.subject": ticket.subject,
        "requester.name": requester.name,
        "requester.first_name": requester.name.split()[0] if requester.name.split() else "",
        "requester.email": requester.email,
        "agent.name": agent.name,
        "agent.first_name": agent.name.split()[0] if agent.name.split() else "",
    }
    for legacy, name in LEGACY_PLACEHOLDERS.items():
        values[legacy] = values[name]
    return values


def fill_placeholders(body: str, values: dict[str, str]) -> str:
    """Replace the known placeholders by plain text; anything else stays as written."""
    return _PLACEHOLDER.sub(lambda match: values[match.group(1)], body)


def render_body(macro: Macro, ticket: Ticket, actor: User) -> str:
    return fill_placeholders(macro.body, placeholder_values(ticket, actor))


# -- checking what a person typed ---------------------------------------------------------------


def _scope_owner_team(
    actor: User, scope: MacroScope | str, team_id: int | None, errors: dict[str, list[str]]
) -> tuple[int | None, int | None]:
    """(owner_id, team_id) of a macro of ``scope``; errors name ``scope`` or ``team_id``."""
    try:
        scope = MacroScope(scope)
    except ValueError:
        errors["scope"] = ["One of: personal, team, global."]
        return None, None
    if scope is MacroScope.PERSONAL:
        return actor.id, None
    if scope is MacroScope.GLOBAL:
        if not policies.can_share_macro_with_everyone(actor):
            errors["scope"] = ["Only admins may share a macro with everyone."]
        return None, None
    if team_id is None:
        errors["team_id"] = ["Choose the team to share it with."]
    elif team_id not in {team.id for team in manageable_teams(actor)}:
        errors["team_id"] = ["Choose one of your teams."]
    return None, team_id


def transition_names() -> dict[str, str]:
    """The transitions of the current workflow a macro may fire: name -> label."""
    engine = engine_for_version(current_version().id)
    return {name: spec.label for name, spec in engine.transitions.items()}


def _check_tags(value: Any, key: str, errors: dict[str, list[str]]) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        errors[f"actions.{key}"] = ["A list of tags."]
        return []
    if len(value) > MAX_TAGS:
        errors[f"actions.{key}"] = [f"At most {MAX_TAGS} tags."]
        return []
    try:
        return normalize_tags(value)
    except InvalidInput as exc:
        errors[f"actions.{key}"] = exc.errors.get("tags", [exc.message])
        return []


def _is_id(value: Any) -> bool:
    """A number that can be a row's id (not a bool, within PostgreSQL's integer)."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_INT32


def _check_assignee(value: Any, errors: dict[str, list[str]]) -> Any:
    if value is None or value == ME:
        return value
    user = db.session.get(User, value) if _is_id(value) else None
    if user is None or not user.active or not user.role.is_staff:
        errors["actions.assignee_id"] = ['An active agent\'s id, "me" or null.']
    return value


def check_actions(actions: Any) -> dict[str, Any]:
    """The changes a macro makes, cleaned; InvalidInput naming ``actions.<key>`` otherwise.
    Only the keys given are kept: a key left out changes nothing."""
    if actions is None:
        return {}
    if not isinstance(actions, dict):
        raise InvalidInput("actions: an object.", {"actions": ["An object."]})
    errors: dict[str, list[str]] = {}
    unknown = sorted(set(actions) - set(ACTION_KEYS))
    if unknown:
        errors["actions"] = [f"Unknown: {', '.join(unknown)}; known: {', '.join(ACTION_KEYS)}."]
    cleaned: dict[str, Any] = {}
    if actions.get("priority") is not None:
        label = actions["priority"]
        if not isinstance(label, str) or label.upper() not in Priority.__members__:
            errors["actions.priority"] = ["One of: " + ", ".join(p.label for p in Priority) + "."]
        else:
            cleaned["priority"] = label.lower()
    if actions.get("team_id") is not None:
        team_id = actions["team_id"]
        if not _is_id(team_id) or db.session.get(Team, team_id) is None:
            errors["actions.team_id"] = [f"No team {team_id}."]
        else:
            cleaned["team_id"] = team_id
    if "assignee_id" in actions:
        cleaned["assignee_id"] = _check_assignee(actions["assignee_id"], errors)
    for key in ("add_tags", "remove_tags"):
        if actions.get(key):
            cleaned[key] = _check_tags(actions[key], key, errors)
    if actions.get("transition"):
        name = actions["transition"]
        known_names = transition_names()
        if not isinstance(name, str) or name not in known_names:
            known = ", ".join(known_names)
            errors["actions.transition"] = [f"Not a transition of the workflow ({known})."]
        else:
            cleaned["transition"] = name
    if errors:
        raise InvalidInput("Please correct the macro's changes.", errors)
    return {k: v for k, v in cleaned.items() if v != []}


def check_fields(
    actor: User,
    *,
    title: str,
    body: str,
    scope: MacroScope | str,
    team_id: int | None,
    actions: Any,
) -> dict[str, Any]:
    """The columns of a macro made of what a person typed, or InvalidInput naming fields."""
    errors: dict[str, list[str]] = {}
    title = title.strip()
    if not title:
        errors["title"] = ["Must not be blank."]
    elif len(title) > MAX_TITLE:
        errors["title"] = [f"At most {MAX_TITLE} characters."]
    elif not is_storable(title):
        errors["title"] = [UNSTORABLE_TEXT]
    if len(body) > MAX_BODY:
        errors["body"] = [f"At most {MAX_BODY} characters."]
    elif not is_storable(body):
        errors["body"] = [UNSTORABLE_TEXT]
    owner_id, team_id = _scope_owner_team(actor, scope, team_id, errors)
    try:
        cleaned = check_actions(actions)
    except InvalidInput as exc:
        errors.update(exc.errors)
        cleaned = {}
    refused = any(key == "body" or key.startswith("actions") for key in errors)
    if not body.strip() and not cleaned and not refused:
        errors["body"] = ["Write a reply text, or choose at least one change."]
    if errors:
        raise InvalidInput("Please correct the marked fields.", errors)
    body = body if body.strip() else ""
    return {
        "title": title,
        "body": body,
        "owner_id": owner_id,
        "team_id": team_id,
        "actions": cleaned,
    }


# -- writing -----------------------------------------------------------------------------------


def _require_change(actor: User) -> None:
    _require_staff(actor)
    if not policies.may_change(actor):
        raise Forbidden("This token may only read.")


@rolls_back_on_error
def do_create_macro(
    actor: User,
    *,
    title: str,
    body: str = "",
    scope: MacroScope | str | None = None,
    team_id: int | None = None,
    actions: Any = None,
) -> Macro:
    """Make a macro; no ``scope``: the team's with a ``team_id``, else personal."""
    _require_change(actor)
    if scope is None:
        scope = MacroScope.TEAM if team_id is not None else MacroScope.PERSONAL
    values = check_fields(
        actor, title=title, body=body, scope=scope, team_id=team_id, actions=actions
    )
    macro = Macro(**values, created_by_id=actor.id)
    db.session.add(macro)
    db.session.flush()
    if macro.scope is MacroScope.GLOBAL:
        audit.record(actor, "macro.created", macro, {"shared_with": [None, "everyone"]})
    db.session.commit()
    return macro


def _access_for_change(actor: User, macro_id: int) -> Macro:
    macro = access_macro_by_id(actor, macro_id)
    if not policies.can_manage_macro(actor, macro):
        raise Forbidden("Only admins may change macros shared with everyone.")
    return macro


def audience(macro_owner_id: int | None, team_id: int | None) -> str:
    if macro_owner_id is not None:
        return "personal"
    team = db.session.get(Team, team_id) if team_id is not None else None
    return f"team {team.name}" if team else "everyone"


@rolls_back_on_error
def do_update_macro(actor: User, macro_id: int, **fields: Any) -> Macro:
    """Change a macro; the fields left out keep their value."""
    macro = _access_for_change(actor, macro_id)
    current = {
        "title": macro.title,
        "body": macro.body,
        "scope": macro.scope,
        "team_id": macro.team_id,
        "actions": macro.actions,
    }
    values = check_fields(actor, **{**current, **fields})
    before = audience(macro.owner_id, macro.team_id)
    after = audience(values["owner_id"], values["team_id"])
    if before != after:
        audit.record(actor, "macro.shared_changed", macro, {"shared_with": [before, after]})
    for name, value in values.items():
        setattr(macro, name, value)
    db.session.commit()
    return macro


@rolls_back_on_error
def do_delete_macro(actor: User, macro_id: int) -> None:
    macro = _access_for_change(actor, macro_id)
    if macro.scope is MacroScope.GLOBAL:
        audit.record(actor, "macro.deleted", macro)
    db.session.delete(macro)
    db.session.commit()
