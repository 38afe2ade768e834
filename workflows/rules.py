"""Evaluating rules: which rules of a definition match an event (or a moment), and why.

Pure functions over plain data: ``facts`` map condition fields (``ticket.status``,
``event.author_role``, ...) to values. Each match carries the conditions with the values they
saw, which the services store in the ticket's event trail (explainability) and the simulator
compares between a draft and what happened.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from workflows.vocabulary import CUSTOM_FIELD_PREFIX, EVENT_FIELDS, PRIORITY_ORDER, TICKET_FIELDS


@dataclass(frozen=True)
class RuleMatch:
    rule: str
    actions: list[dict[str, Any]]
    because: list[dict[str, Any]] = field(default_factory=list)

    def explanation(self) -> list[str]:
        return [
            f"{c['field']} {c['op']} {c['value']!r} (was {c['actual']!r})" for c in self.because
        ]


def ticket_facts(ticket: Any) -> dict[str, Any]:
    """The ``ticket.*`` facts from a mapping with the field names without prefix (status,
    priority as its label, tags as a list, has_feedback, ...)."""
    facts = {field: ticket[field.removeprefix("ticket.")] for field in TICKET_FIELDS}
    facts["ticket.tags"] = list(facts["ticket.tags"])
    for key, value in (ticket.get("custom_fields") or {}).items():
        facts[CUSTOM_FIELD_PREFIX + key] = value
    return facts


def event_facts(payload: dict[str, Any]) -> dict[str, Any]:
    """The ``event.*`` facts from a domain event's payload (absent ones are None)."""
    return {field: payload.get(field.removeprefix("event.")) for field in EVENT_FIELDS}


def _rank(value: Any) -> Any:
    return PRIORITY_ORDER.index(value) if value in PRIORITY_ORDER else value


def condition_holds(condition: dict[str, Any], facts: dict[str, Any]) -> bool:
    actual, op, expected = facts.get(condition["field"]), condition["op"], condition["value"]
    if op == "is_null":
        return actual is None
    if op == "not_null":
        return actual is not None
    if op == "eq":
        return actual == expected
    if op == "ne":
        return actual != expected
    if op == "in":
        return actual in expected
    if op == "not_in":
        return actual not in expected
    if op == "contains":
        return actual is not None and expected in actual
    if actual is None:
        return False
    if op == "gte":
        return _rank(actual) >= _rank(expected)
    if op == "lte":
        return _rank(actual) <= _rank(expected)
    raise ValueError(f"unknown operator {op!r}")


def evaluate(rule: dict[str, Any], facts: dict[str, Any]) -> RuleMatch | None:
    """The match of one enabled rule whose conditions all hold, else None."""
    if not rule["enabled"] or not all(condition_holds(c, facts) for c in rule["conditions"]):
        return None
    because = [{**c, "actual": facts.get(c["field"])} for c in rule["conditions"]]
    return RuleMatch(rule=rule["name"], actions=rule["actions"], because=because)


def event_matches(definition: dict[str, Any], event: str, facts: dict[str, Any]) -> list[RuleMatch]:
    """Rules listening to ``event`` whose conditions hold, in definition order."""
    matches = (evaluate(r, facts) for r in definition["rules"] if r["event"] == event)
    return [m for m in matches if m is not None]


def time_rules(definition: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in definition["rules"] if r["after"] is not None and r["enabled"]]
