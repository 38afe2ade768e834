"""What rules and SLA escalations do: the facts their conditions read, and their actions.

Every action runs as the system inside ``causes.caused_by``, so each change it makes names
its rule in the ticket's trail; one failing action is recorded (``automation.failed``) and
does not undo the others.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import exists, select

from autocrm import aftercommit
from autocrm.engine.versions import engine_for
from autocrm.errors import DomainError
from autocrm.events import causes
from autocrm.events.emit import emit
from autocrm.events.kinds import AutomationFailed
from autocrm.extensions import db
from autocrm.fields import values as field_values
from autocrm.notifications import services as notifications
from autocrm.people.models import Team, User
from autocrm.tickets import services as tickets
from autocrm.tickets.models import Feedback, Priority, Ticket
from autocrm.webhooks import deliveries as webhooks
from workflows import rules

log = logging.getLogger(__name__)
BATCH = 200


# -- facts: what conditions see -------------------------------------------------------------


def ticket_facts(ticket: Ticket) -> dict[str, Any]:
    has_feedback = db.session.scalar(select(exists().where(Feedback.ticket_id == ticket.id)))
    return rules.ticket_facts(
        {
            "status": ticket.status,
            "category": ticket.category,
            "priority": Priority(ticket.priority).label,
            "team_id": ticket.team_id,
            "assignee_id": ticket.assignee_id,
            "requester_id": ticket.requester_id,
            "tags": ticket.tags,
            "channel": ticket.channel,
            "has_feedback": has_feedback,
            "custom_fields": ticket.custom_fields,
        }
    )


# -- actions ------------------------------------------------------------------------------------


def _notify_target(ticket: Ticket, to: str) -> list[User]:
    team = db.session.get(Team, ticket.team_id) if ticket.team_id else None
    if to == "requester":
        return [ticket.requester]
    if to == "assignee":
        return [ticket.assignee] if ticket.assignee else []
    if to == "team_lead":
        return [team.lead] if team and team.lead else []
    if to == "team":
        return [m.user for m in team.memberships] if team else []
    return []


def apply_action(ticket: Ticket, action: dict[str, Any], dedupe: str) -> None:
    """One action of a rule or SLA escalation, acting as the system."""
    kind = action["action"]
    if kind == "transition":
        if action["name"] in {t.name for t in engine_for(ticket).allowed(ticket, None)}:
            tickets.fire_transition(None, ticket, action["name"])
    elif kind == "set_priority":
        tickets.apply_changes(None, ticket, {"priority": Priority.from_label(action["priority"])})
    elif kind == "raise_priority":
        if ticket.priority < Priority.URGENT:
            tickets.apply_changes(None, ticket, {"priority": Priority(ticket.priority + 1)})
    elif kind == "assign_team":
        tickets.apply_changes(None, ticket, {"team_id": action["team_id"]})
    elif kind == "assign_agent":
        tickets.apply_changes(None, ticket, {"assignee_id": action["user_id"]})
    elif kind == "assign_team_lead":
        team = db.session.get(Team, ticket.team_id) if ticket.team_id else None
        if team is not None and team.lead_id is not None:
            tickets.apply_changes(None, ticket, {"assignee_id": team.lead_id})
    elif kind == "add_tag":
        tickets.apply_changes(None, ticket, {"tags": [*ticket.tags, action["tag"]]})
    elif kind == "notify":
        cause = causes.current() or {}
        message = action.get("message") or f"Rule {cause.get('rule')} fired."
        for user in _notify_target(ticket, action["to"]):
            notifications.notify(
                user,
                "escalation",
                ticket=ticket,
                dedupe_key=dedupe,
                title=f"[#{ticket.id}] {message}",
                body=f"{message}\n\nTicket #{ticket.id}: {ticket.subject}",
            )
    elif kind == "request_feedback":
        notifications.request_feedback(ticket, dedupe_key=dedupe)
    elif kind == "set_field":
        key, _, text = action["value"].partition("=")
        tickets.apply_changes(None, ticket, {"fields": field_values.from_rule(key.strip(), text)})
    elif kind == "call_webhook":
        cause = causes.current() or {}
        webhooks.record_rule_delivery(ticket, action["webhook_id"], cause, dedupe)
    else:  # the definition schema admits only known actions
        raise ValueError(f"unknown action {kind!r}")


def run_actions(
    ticket: Ticket, match: rules.RuleMatch, *, version: int, depth: int, dedupe: str
) -> None:
    """A matched rule's actions, each on its own: one failing does not undo the others."""
    with causes.caused_by(match.rule, workflow_version=version, because=match.because, depth=depth):
        for i, action in enumerate(match.actions):
            try:
                with aftercommit.savepoint():
                    apply_action(ticket, action, f"{dedupe}:{match.rule}:{i}")
            except DomainError as exc:
                log.warning("rule %s on ticket %s: %s", match.rule, ticket.id, exc.message)
                emit(AutomationFailed(ticket_id=ticket.id, action=action, error=exc.message))
