"""Applying a macro to a ticket: first a preview (the reply as it will read, each change in
words, and which ones are not possible now and why), then the whole macro in ONE transaction
through the ticket services: the public reply, the field changes, the transition, the macro's
use counted and a ``macro.applied`` audit entry. A stale version is a 409; a change that is not
possible (a transition the ticket's state does not allow, an assignee outside the new team, a
closed ticket for the reply) refuses the whole macro with its reason, and nothing is applied.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import update

from autocrm import policies
from autocrm.audit import services as audit
from autocrm.columns import utcnow
from autocrm.engine.versions import engine_for
from autocrm.errors import Conflict, DomainError, Forbidden
from autocrm.extensions import db
from autocrm.macros.models import Macro
from autocrm.macros.services import ME, access_macro_by_id, render_body
from autocrm.people.models import Team, User
from autocrm.tickets import conversation
from autocrm.tickets.models import Priority, Ticket
from autocrm.tickets.services import (
    _check_assignee,
    _check_version,
    _one_change,
    access_ticket_by_id,
    apply_changes,
    check_fields_allowed,
    fire_transition,
)
from autocrm.transaction import rolls_back_on_error


@dataclass(frozen=True)
class Change:
    """One thing applying the macro would do, in words; ``reason``: why it is not possible."""

    field: str
    description: str
    possible: bool = True
    reason: str = ""


@dataclass
class Preview:
    macro: Macro
    ticket: Ticket
    body: str
    changes: list[Change] = field(default_factory=list)

    @property
    def applicable(self) -> bool:
        return all(change.possible for change in self.changes)

    @property
    def problems(self) -> list[str]:
        return [f"{c.description}: {c.reason}" for c in self.changes if not c.possible]


def _name(user_id: int | None, actor: User) -> str:
    if user_id is None:
        return "nobody"
    if user_id == actor.id:
        return f"you ({actor.name})"
    user = db.session.get(User, user_id)
    return user.name if user else f"user #{user_id}"


def _team_name(team_id: int | None) -> str:
    team = db.session.get(Team, team_id) if team_id is not None else None
    return team.name if team else "none (triage)"


def field_changes(macro: Macro, ticket: Ticket, actor: User) -> dict[str, Any]:
    """The ticket fields the macro sets, as ``apply_changes`` takes them."""
    actions: dict[str, Any] = macro.actions
    changes: dict[str, Any] = {}
    if "priority" in actions:
        changes["priority"] = Priority.from_label(actions["priority"])
    if "team_id" in actions:
        changes["team_id"] = actions["team_id"]
    if "assignee_id" in actions:
        changes["assignee_id"] = (
            actor.id if actions["assignee_id"] == ME else actions["assignee_id"]
        )
    if actions.get("add_tags") or actions.get("remove_tags"):
        tags = (set(ticket.tags) | set(actions.get("add_tags", []))) - set(
            actions.get("remove_tags", [])
        )
        changes["tags"] = sorted(tags)
    return changes


def _reply_change(ticket: Ticket, body: str) -> Change | None:
    if not body.strip():
        return None
    if engine_for(ticket).categories[ticket.status] == "closed":
        return Change("reply", "Public reply", False, "the ticket is closed; reopen it to reply")
    try:
        conversation.check_message(body)
    except DomainError as exc:
        return Change("reply", "Public reply", False, exc.message)
    return Change("reply", "Public reply to the requester")


def _field_descriptions(macro: Macro, ticket: Ticket, actor: User) -> list[Change]:
    changes, result = field_changes(macro, ticket, actor), []
    if "priority" in changes:
        old, new = ticket.priority.label, changes["priority"].label
        result.append(
            Change(
                "priority", f"Priority: {old} → {new}" if old != new else f"Priority stays {new}"
            )
        )
    team_id = changes.get("team_id", ticket.team_id)
    if "team_id" in changes:
        old, new = _team_name(ticket.team_id), _team_name(team_id)
        text = f"Team: {old} → {new}" if old != new else f"Team stays {new}"
        result.append(Change("team_id", text))
    if "assignee_id" in changes:
        description = (
            f"Assignee: {_name(ticket.assignee_id, actor)} → {_name(changes['assignee_id'], actor)}"
        )
        try:
            _check_assignee(changes["assignee_id"], team_id)
            result.append(Change("assignee_id", description))
        except DomainError as exc:
            reason = "; ".join(v for vs in exc.errors.values() for v in vs) or exc.message
            result.append(Change("assignee_id", description, False, reason))
    elif "team_id" in changes and ticket.assignee_id is not None and team_id is not None:
        assignee = db.session.get(User, ticket.assignee_id)
        if assignee is not None and team_id not in assignee.team_ids:
            result.append(Change("assignee_id", f"Assignee: {assignee.name} → nobody"))
    for key, verb in (("add_tags", "Add tags"), ("remove_tags", "Remove tags")):
        if macro.actions.get(key):
            result.append(Change("tags", f"{verb}: {', '.join(macro.actions[key])}"))
    return result


def _transition_change(macro: Macro, ticket: Ticket, actor: User) -> Change | None:
    name = macro.actions.get("transition")
    if not name:
        return None
    engine = engine_for(ticket)
    spec = engine.transitions.get(name)
    if spec is None:
        return Change("transition", name, False, "the ticket's workflow has no such transition")
    state = engine.state_labels.get(ticket.status, ticket.status)
    target = engine.state_labels.get(spec.dest, spec.dest)
    description = f"Status: {state} → {target} ({spec.label})"
    if name not in {s.name for s in engine.allowed(ticket, actor.role.value, actor)}:
        return Change("transition", description, False, f"not possible from {state}")
    return Change("transition", description)


def preview(macro: Macro, ticket: Ticket, actor: User, body: str | None = None) -> Preview:
    """What applying ``macro`` to ``ticket`` would do (``body``: an edited reply instead of the
    macro's text); changes nothing."""
    text = render_body(macro, ticket, actor) if body is None else body
    changes = [c for c in [_reply_change(ticket, text)] if c]
    changes += _field_descriptions(macro, ticket, actor)
    changes += [c for c in [_transition_change(macro, ticket, actor)] if c]
    return Preview(macro, ticket, text, changes)


def preview_by_id(actor: User, ticket_id: int, macro_id: int) -> Preview:
    ticket = access_ticket_by_id(actor, ticket_id)
    return preview(access_macro_by_id(actor, macro_id), ticket, actor)


@rolls_back_on_error
def do_apply_macro(
    actor: User,
    ticket_id: int,
    macro_id: int,
    *,
    expected_version: int | None = None,
    body: str | None = None,
    channel: str = "web",
) -> Ticket:
    """Apply the macro to the ticket, all of it or nothing (see the module's docstring)."""
    ticket = access_ticket_by_id(actor, ticket_id)
    macro = access_macro_by_id(actor, macro_id)
    if not policies.may_change(actor):
        raise Forbidden("This token may only read.")
    _check_version(ticket, expected_version)
    plan = preview(macro, ticket, actor, body)
    if not plan.applicable:
        message = "This macro cannot be applied now: " + "; ".join(plan.problems) + "."
        raise Conflict(message, {"macro": plan.problems}, current_version=ticket.version)
    changes = field_changes(macro, ticket, actor)
    with _one_change():
        if plan.body.strip():
            conversation.add_message(actor, ticket, plan.body, channel=channel)
        if changes:
            check_fields_allowed(actor, changes, creating=False)
            apply_changes(actor, ticket, changes)
        if macro.actions.get("transition"):
            fire_transition(actor, ticket, macro.actions["transition"])
        db.session.execute(
            update(Macro)
            .where(Macro.id == macro.id)
            .values(usage_count=Macro.usage_count + 1, last_used_at=utcnow()),
            execution_options={"synchronize_session": False},
        )
        audit.record(
            actor,
            "macro.applied",
            macro,
            {
                "ticket_id": [None, ticket.id],
                "changes": [None, [c.description for c in plan.changes]],
            },
        )
    return ticket
