"""The workflow definition format: a marshmallow schema plus the checks a schema cannot express.

A definition is plain data (YAML/JSON): states with a category; named transitions with the
roles allowed to fire them and optional guard conditions by name; rules (an ``event`` or an
``after`` delay, conditions, actions); and an SLA policy (targets per priority against a
business-hours calendar, a warning threshold, escalation actions). ``load_definition``
returns the validated definition or raises ``marshmallow.ValidationError`` whose messages are
keyed by location (``transitions.2.to``, ``rules.0.then.1``), so an editor can show each error
at the field that is wrong. The words rules use are listed in ``workflows.vocabulary``.
"""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import Any

import yaml
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from workflows import vocabulary
from workflows.calendar import BusinessCalendar
from workflows.guards import GUARDS

CATEGORIES = ("new", "open", "pending", "solved", "closed")
DONE_CATEGORIES = ("solved", "closed")  # a ticket here needs no more work
ROLES = ("customer", "agent", "admin")
NAME = validate.Regexp(r"^[a-z][a-z0-9_]{0,49}$", error="Use lower-case letters, digits and _.")
DEFAULT_PATH = Path(__file__).with_name("default.yaml")


class StateSchema(Schema):
    name = fields.String(required=True, validate=NAME)
    category = fields.String(required=True, validate=validate.OneOf(CATEGORIES))
    label = fields.String(load_default=None)
    terminal = fields.Boolean(load_default=False)


class TransitionSchema(Schema):
    name = fields.String(required=True, validate=NAME)
    source = fields.List(
        fields.String(), required=True, data_key="from", validate=validate.Length(min=1)
    )
    dest = fields.String(required=True, data_key="to")
    # Empty: only rules may fire it (automation acts as the system, whatever the roles).
    roles = fields.List(fields.String(validate=validate.OneOf(ROLES)), required=True)
    guards = fields.List(fields.String(), load_default=list)
    label = fields.String(load_default=None)


class ConditionSchema(Schema):
    field = fields.String(required=True)
    op = fields.String(load_default="eq")
    value = fields.Raw(load_default=None, allow_none=True)


class DelaySchema(Schema):
    days = fields.Float(load_default=0, validate=validate.Range(min=0))
    hours = fields.Float(load_default=0, validate=validate.Range(min=0))
    minutes = fields.Float(load_default=0, validate=validate.Range(min=0))
    seconds = fields.Float(load_default=0, validate=validate.Range(min=0))
    since = fields.String(required=True, validate=validate.OneOf(vocabulary.SINCE_FIELDS))


class RuleSchema(Schema):
    name = fields.String(required=True, validate=NAME)
    description = fields.String(load_default="")
    event = fields.String(load_default=None, validate=validate.OneOf(vocabulary.EVENTS))
    after = fields.Nested(DelaySchema, load_default=None)
    conditions = fields.List(fields.Nested(ConditionSchema), data_key="if", load_default=list)
    actions = fields.List(
        fields.Dict(), data_key="then", required=True, validate=validate.Length(min=1)
    )
    enabled = fields.Boolean(load_default=True)


# At most a year of business minutes: deadlines are computed day by day.
MINUTES: dict[str, Any] = {
    "validate": validate.Range(min=0, max=525_600, min_inclusive=False),
    "load_default": None,
}


class SlaTargetSchema(Schema):
    """Targets in business minutes; a missing one means no clock for that metric."""

    first_response = fields.Float(**MINUTES)
    next_reply = fields.Float(**MINUTES)
    resolution = fields.Float(**MINUTES)


class SlaPolicySchema(Schema):
    calendar = fields.Dict(load_default=None, allow_none=True)
    targets = fields.Dict(
        keys=fields.String(validate=validate.OneOf(vocabulary.PRIORITY_ORDER)),
        values=fields.Nested(SlaTargetSchema),
        required=True,
    )
    pause_in = fields.List(
        fields.String(validate=validate.OneOf(CATEGORIES)), load_default=lambda: ["pending"]
    )
    warning_at = fields.Float(
        load_default=0.75,
        validate=validate.Range(min=0, max=1, min_inclusive=False, max_inclusive=False),
    )
    on_warning = fields.List(fields.Dict(), load_default=list)
    on_breach = fields.List(fields.Dict(), load_default=list)


class WorkflowDefinitionSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=80))
    description = fields.String(load_default="")
    initial = fields.String(required=True)
    states = fields.List(fields.Nested(StateSchema), required=True, validate=validate.Length(min=1))
    transitions = fields.List(fields.Nested(TransitionSchema), required=True)
    rules = fields.List(fields.Nested(RuleSchema), load_default=list)
    sla = fields.Nested(SlaPolicySchema, load_default=None, allow_none=True)

    @validates_schema
    def check_graph(self, data: dict[str, Any], **_: Any) -> None:
        errors = graph_errors(data)
        if errors:
            raise ValidationError(errors)


def _duplicates(names: list[str]) -> set[str]:
    seen: set[str] = set()
    return {n for n in names if n in seen or seen.add(n)}  # type: ignore[func-returns-value]


def graph_errors(data: dict[str, Any]) -> dict[str, list[str]]:
    """Structural problems, keyed by the location of the offending field."""
    errors: dict[str, list[str]] = {}

    def add(where: str, message: str) -> None:
        errors.setdefault(where, []).append(message)

    states = [s["name"] for s in data["states"]]
    known = set(states)
    for i, state in enumerate(data["states"]):
        if state["name"] in _duplicates(states):
            add(f"states.{i}.name", f"Duplicate state name {state['name']!r}.")
    if data["initial"] not in known:
        add("initial", f"Unknown state {data['initial']!r}.")
    names = [t["name"] for t in data["transitions"]]
    for i, tr in enumerate(data["transitions"]):
        if tr["name"] in _duplicates(names):
            add(f"transitions.{i}.name", f"Duplicate transition name {tr['name']!r}.")
        for j, src in enumerate(tr["source"]):
            if src not in known:
                add(f"transitions.{i}.from.{j}", f"Unknown state {src!r}.")
        if tr["dest"] not in known:
            add(f"transitions.{i}.to", f"Unknown state {tr['dest']!r}.")
        for j, guard in enumerate(tr["guards"]):
            if guard not in GUARDS:
                add(f"transitions.{i}.guards.{j}", f"Unknown guard {guard!r}.")
    _rule_errors(data, add)
    _sla_errors(data, add)
    if errors:
        return errors  # reachability makes no sense over unknown names

    outgoing: dict[str, set[str]] = {s: set() for s in known}
    for tr in data["transitions"]:
        for src in tr["source"]:
            outgoing[src].add(tr["dest"])
    reached = {data["initial"]}
    queue = deque([data["initial"]])
    while queue:
        for nxt in outgoing[queue.popleft()] - reached:
            reached.add(nxt)
            queue.append(nxt)
    _transition_errors(data, add)
    for i, state in enumerate(data["states"]):
        if state["name"] not in reached:
            add(
                f"states.{i}.name",
                f"State {state['name']!r} cannot be reached from the initial state.",
            )
        elif not state["terminal"] and not outgoing[state["name"]]:
            add(f"states.{i}.name", f"State {state['name']!r} has no way out and is not terminal.")
    return errors


def _rule_errors(data: dict[str, Any], add: Any) -> None:
    names = [r["name"] for r in data["rules"]]
    transitions = {t["name"] for t in data["transitions"]}
    for i, rule in enumerate(data["rules"]):
        where = f"rules.{i}"
        if rule["name"] in _duplicates(names):
            add(f"{where}.name", f"Duplicate rule name {rule['name']!r}.")
        if (rule["event"] is None) == (rule["after"] is None):
            add(where, "A rule has either 'event' or 'after' (a delay): exactly one of them.")
        elif rule["after"] is not None and not delay_seconds(rule["after"]):
            add(f"{where}.after", "The delay must be longer than zero.")
        for j, condition in enumerate(rule["conditions"]):
            for message in condition_errors(condition, time_based=rule["after"] is not None):
                add(f"{where}.if.{j}", message)
        _actions_errors(rule["actions"], f"{where}.then", transitions, add)


def condition_errors(condition: dict[str, Any], *, time_based: bool) -> list[str]:
    field, op, value = condition["field"], condition["op"], condition["value"]
    if not vocabulary.is_condition_field(field):
        return [f"Unknown field {field!r}."]
    if op not in vocabulary.OPERATORS:
        return [f"Unknown operator {op!r}; known: {', '.join(vocabulary.OPERATORS)}."]
    errors = []
    if time_based and field in vocabulary.EVENT_FIELDS:
        errors.append(f"A time-based rule has no event, so {field!r} is never set.")
    if op in ("in", "not_in") and not isinstance(value, list):
        errors.append(f"Operator {op!r} takes a list.")
    if op not in vocabulary.UNARY_OPERATORS and value is None:
        errors.append(f"Operator {op!r} needs a value.")
    return errors


def _actions_errors(
    actions: list[dict[str, Any]], where: str, transitions: set[str], add: Any
) -> None:
    for j, action in enumerate(actions):
        for message in vocabulary.action_errors(action):
            add(f"{where}.{j}", message)
        name = action.get("name")
        if (
            action.get("action") == "transition"
            and isinstance(name, str)
            and (name not in transitions)
        ):
            add(f"{where}.{j}", f"Unknown transition {action.get('name')!r}.")


def _sla_errors(data: dict[str, Any], add: Any) -> None:
    sla = data["sla"]
    if sla is None:
        return
    try:
        BusinessCalendar.from_definition(sla["calendar"])
    except ValueError as exc:
        add("sla.calendar", str(exc))
    transitions = {t["name"] for t in data["transitions"]}
    _actions_errors(sla["on_warning"], "sla.on_warning", transitions, add)
    _actions_errors(sla["on_breach"], "sla.on_breach", transitions, add)


def _transition_errors(data: dict[str, Any], add: Any) -> None:
    """Transitions nobody can ever fire: no role and no rule, or guards their roles can't meet."""
    fired_by_rules = {
        action.get("name")
        for rule in data["rules"]
        for action in rule["actions"]
        if action.get("action") == "transition"
    }
    for i, tr in enumerate(data["transitions"]):
        if not tr["roles"] and tr["name"] not in fired_by_rules:
            add(f"transitions.{i}.roles", "No role may fire it and no rule does: it is dead.")
        if tr["roles"] == ["customer"] and "actor_is_assignee" in tr["guards"]:
            add(
                f"transitions.{i}.roles",
                "Only customers may fire it, but its guard needs the assignee (staff).",
            )


def delay_seconds(delay: dict[str, Any]) -> float:
    return delay["days"] * 86400 + delay["hours"] * 3600 + delay["minutes"] * 60 + delay["seconds"]


def load_definition(data: dict[str, Any]) -> dict[str, Any]:
    """Validate a definition; raises ``ValidationError`` with located messages."""
    return WorkflowDefinitionSchema().load(data)


def dump_definition(definition: dict[str, Any]) -> dict[str, Any]:
    """The stored (JSON) form of a validated definition."""
    return WorkflowDefinitionSchema().dump(definition)


def default_definition() -> dict[str, Any]:
    """The bundled default workflow, as raw data."""
    return yaml.safe_load(DEFAULT_PATH.read_text())
