"""The workflow definition format: a marshmallow schema plus the checks a schema cannot express.

A definition is plain data (YAML/JSON): states with a category, and named transitions with the
roles allowed to fire them and optional guard conditions by name. ``load_definition`` returns
the validated definition or raises ``marshmallow.ValidationError`` whose messages are keyed by
location (``transitions.2.to``), so an editor can show each error at the field that is wrong.
"""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import Any

import yaml
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from workflows.guards import GUARDS

CATEGORIES = ("new", "open", "pending", "solved", "closed")
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
    roles = fields.List(
        fields.String(validate=validate.OneOf(ROLES)),
        required=True,
        validate=validate.Length(min=1, error="A transition nobody may fire is dead."),
    )
    guards = fields.List(fields.String(), load_default=list)
    label = fields.String(load_default=None)


class WorkflowDefinitionSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=80))
    description = fields.String(load_default="")
    initial = fields.String(required=True)
    states = fields.List(fields.Nested(StateSchema), required=True, validate=validate.Length(min=1))
    transitions = fields.List(fields.Nested(TransitionSchema), required=True)

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
    for i, state in enumerate(data["states"]):
        if state["name"] not in reached:
            add(
                f"states.{i}.name",
                f"State {state['name']!r} cannot be reached from the initial state.",
            )
        elif not state["terminal"] and not outgoing[state["name"]]:
            add(f"states.{i}.name", f"State {state['name']!r} has no way out and is not terminal.")
    return errors


def load_definition(data: dict[str, Any]) -> dict[str, Any]:
    """Validate a definition; raises ``ValidationError`` with located messages."""
    return WorkflowDefinitionSchema().load(data)


def dump_definition(definition: dict[str, Any]) -> dict[str, Any]:
    """The stored (JSON) form of a validated definition."""
    return WorkflowDefinitionSchema().dump(definition)


def default_definition() -> dict[str, Any]:
    """The bundled default workflow, as raw data."""
    return yaml.safe_load(DEFAULT_PATH.read_text())
