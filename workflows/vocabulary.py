"""The words rules are written in: events, condition fields and operators, actions.

One vocabulary serves event rules ("when a customer replies ..."), time-based rules ("solved
for 4 days ...") and SLA escalations, so validation, evaluation and the admin editor agree on
what exists. Adding a word here is the whole change for conditions; an action also needs its
effect in ``autocrm.automation``.
"""

from __future__ import annotations

import re
from typing import Any

EVENTS = (
    "ticket.created",
    "ticket.updated",
    "ticket.assigned",
    "ticket.transitioned",
    "message.created",
    "feedback.created",
)

# Condition fields: "ticket.*" read the ticket as it is now, "event.*" the event that fired.
TICKET_FIELDS = (
    "ticket.status",
    "ticket.category",
    "ticket.priority",
    "ticket.team_id",
    "ticket.assignee_id",
    "ticket.requester_id",
    "ticket.tags",
    "ticket.channel",
    "ticket.has_feedback",
)
EVENT_FIELDS = (
    "event.actor_role",
    "event.author_role",
    "event.internal",
    "event.transition",
    "event.from_state",
    "event.to_state",
)
FIELDS = TICKET_FIELDS + EVENT_FIELDS
# Custom ticket fields, by key: "fields.<key>" (their value as stored; none: null). Which keys
# exist is the admins' to decide at any time, so a definition is checked for the form only.
CUSTOM_FIELD_PREFIX = "fields."
CUSTOM_FIELD = re.compile(r"^fields\.[a-z][a-z0-9_]{0,39}$")


def is_condition_field(name: Any) -> bool:
    return name in FIELDS or (isinstance(name, str) and bool(CUSTOM_FIELD.match(name)))


OPERATORS = ("eq", "ne", "in", "not_in", "contains", "is_null", "not_null", "gte", "lte")
UNARY_OPERATORS = ("is_null", "not_null")

# Timestamps a time-based rule may count from.
SINCE_FIELDS = ("created_at", "updated_at", "status_changed_at", "solved_at")

NOTIFY_TARGETS = ("requester", "assignee", "team", "team_lead")

# Each action and the parameters it requires (name -> expected Python type).
ACTIONS: dict[str, dict[str, type]] = {
    "transition": {"name": str},
    "set_priority": {"priority": str},
    "raise_priority": {},
    "assign_team": {"team_id": int},
    "assign_agent": {"user_id": int},
    "assign_team_lead": {},
    "add_tag": {"tag": str},
    "notify": {"to": str},
    "request_feedback": {},
    "call_webhook": {"webhook_id": int},
    # "key=value": a custom field's new value as typed in a form (a multi-select's options
    # separated by commas; "key=" empties it).
    "set_field": {"value": str},
}
OPTIONAL_ACTION_PARAMS: dict[str, dict[str, type]] = {"notify": {"message": str}}

PRIORITY_ORDER = ("low", "normal", "high", "urgent")


def action_errors(action: dict[str, Any]) -> list[str]:
    """What is wrong with one action's parameters (empty when fine)."""
    name = action.get("action")
    if name not in ACTIONS:
        return [f"Unknown action {name!r}; known: {', '.join(ACTIONS)}."]
    required, optional = ACTIONS[name], OPTIONAL_ACTION_PARAMS.get(name, {})
    errors = []
    for param, kind in required.items():
        if param not in action:
            errors.append(f"Action {name!r} needs {param!r}.")
        elif not isinstance(action[param], kind) or isinstance(action[param], bool):
            errors.append(f"{param!r} must be a {kind.__name__}.")
    for param in set(action) - {"action"} - set(required) - set(optional):
        errors.append(f"Action {name!r} takes no {param!r}.")
    if name == "set_priority" and action.get("priority") not in PRIORITY_ORDER:
        errors.append(f"priority must be one of {', '.join(PRIORITY_ORDER)}.")
    if name == "set_field" and isinstance(action.get("value"), str):
        key, equals, _ = action["value"].partition("=")
        if not equals or not CUSTOM_FIELD.match(CUSTOM_FIELD_PREFIX + key.strip()):
            errors.append("value must be key=value, the key of a custom field.")
    if name == "notify" and action.get("to") not in NOTIFY_TARGETS:
        errors.append(f"to must be one of {', '.join(NOTIFY_TARGETS)}.")
    return errors
