"""The workflow draft editor's form: a definition as indexed form fields and back, validation
errors placed at the field they concern, and the raw YAML/JSON view.

Field names are the locations validation reports (``transitions.2.to``, ``rules.0.if.1.value``,
``sla.targets.urgent.resolution``), so an error finds its field by name; the few locations that
name a whole row or group are placed by ``place_errors``. Both directions are total: any stored
draft (valid or not, any JSON) renders, and any posted form becomes a definition to save as
entered. What the form cannot show of a draft (keys it does not know, values of another type)
is listed in ``DraftForm.unshown``, because saving the form would drop or change it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from werkzeug.datastructures import MultiDict

from autocrm.errors import InvalidInput
from workflows.calendar import WEEKDAYS
from workflows.definition import CATEGORIES, ROLES
from workflows.guards import GUARDS
from workflows.text import (
    ACTION_LISTS,
    CALENDAR_KEYS,
    CONDITION_KEYS,
    DELAY_UNITS,
    METRICS,
    PRIORITIES,
    RULE_KEYS,
    SLA_KEYS,
    STATE_KEYS,
    TOP_KEYS,
    TRANSITION_KEYS,
    action_param,
    json_problem,
    reject_constant,
)
from workflows.vocabulary import ACTIONS, EVENTS, FIELDS, OPERATORS, PRIORITY_ORDER, SINCE_FIELDS

TRIGGERS = ("event", "after")
MAX_ROWS = 300  # per list: far above any real workflow, well below a form that hurts
FORM_KEY = re.compile(r"^[a-z_]+(\.[a-z0-9_]{1,50}){0,6}$")
INTEGER = re.compile(r"^-?\d{1,15}$")
DECIMAL = re.compile(r"^-?\d{1,15}(\.\d{1,15})?$")


# The vocabularies the editor offers (a draft's unknown words are offered too, to keep them).
CHOICES = {
    "categories": CATEGORIES,
    "roles": ROLES,
    "guards": tuple(GUARDS),
    "events": EVENTS,
    "fields": FIELDS,
    "operators": OPERATORS,
    "since": SINCE_FIELDS,
    "actions": tuple(ACTIONS),
    "priorities": PRIORITIES,
    "metrics": METRICS,
    "weekdays": WEEKDAYS,
    "delay_units": DELAY_UNITS,
}


# -- a definition as form values ------------------------------------------------------------------


@dataclass
class DraftForm:
    """The editor's values, all display strings (lists of names for checkbox groups)."""

    values: dict[str, Any]
    unshown: list[str] = field(default_factory=list)

    def fields(self) -> list[str]:
        """Every field name the form renders, in page order (plus the lists' own anchors)."""
        return list(_field_names(self.values))


class _Reader:
    """Reads a stored draft defensively, noting what the form cannot show faithfully."""

    def __init__(self) -> None:
        self.unshown: list[str] = []

    def note(self, where: str) -> None:
        if where not in self.unshown:
            self.unshown.append(where)

    def mapping(self, value: Any, where: str) -> dict[str, Any]:
        if isinstance(value, dict):
            return value
        if value is not None:
            self.note(where)
        return {}

    def keys(self, row: dict[str, Any], known: tuple[str, ...], where: str) -> None:
        for key in row:
            if key not in known:
                self.note(f"{where}.{key}" if where else str(key))

    def rows(self, value: Any, where: str) -> list[dict[str, Any]]:
        """A list's rows; one that is not a mapping becomes an empty row, so every later row
        keeps the index validation reports for it."""
        if value is None:
            return []
        if not isinstance(value, list):
            self.note(where)
            return []
        rows = []
        for i, row in enumerate(value):
            if not isinstance(row, dict):
                self.note(f"{where}.{i}")
                row = {}
            rows.append(row)
        return rows

    def text(self, value: Any, where: str) -> str:
        if value is None:
            return ""
        if isinstance(value, str):
            return value
        self.note(where)
        return json.dumps(value) if isinstance(value, (list, dict)) else str(value)

    def number(self, value: Any, where: str) -> str:
        if value is None:
            return ""
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return show_number(value)
        return self.text(value, where)

    def flag(self, value: Any, where: str, *, default: bool) -> bool:
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        self.note(where)
        return bool(value)

    def names(self, value: Any, where: str) -> list[str]:
        """A list of names (roles, guards, source states)."""
        if value is None:
            return []
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return list(value)
        self.note(where)
        if isinstance(value, list):
            return [self.text(v, where) for v in value]
        return [self.text(value, where)]


def form_from_definition(draft: Any) -> DraftForm:
    """The editor's values for a stored draft (anything JSON can hold)."""
    read = _Reader()
    top = read.mapping(draft, "")
    if not isinstance(draft, dict):
        read.note("_schema")
    read.keys(top, TOP_KEYS, "")
    values = {
        "name": read.text(top.get("name"), "name"),
        "description": read.text(top.get("description"), "description"),
        "initial": read.text(top.get("initial"), "initial"),
        "states": [_state(read, row, f"states.{i}") for i, row in _indexed(read, top, "states")],
        "transitions": [
            _transition(read, row, f"transitions.{i}")
            for i, row in _indexed(read, top, "transitions")
        ],
        "rules": [_rule(read, row, f"rules.{i}") for i, row in _indexed(read, top, "rules")],
        "sla": _sla(read, top.get("sla")),
    }
    return DraftForm(values, read.unshown)


def _indexed(read: _Reader, parent: dict[str, Any], key: str) -> Iterator[tuple[int, dict]]:
    return enumerate(read.rows(parent.get(key), key))


def _state(read: _Reader, row: dict[str, Any], where: str) -> dict[str, Any]:
    read.keys(row, STATE_KEYS, where)
    return {
        "name": read.text(row.get("name"), f"{where}.name"),
        "label": read.text(row.get("label"), f"{where}.label"),
        "category": read.text(row.get("category"), f"{where}.category"),
        "terminal": read.flag(row.get("terminal"), f"{where}.terminal", default=False),
    }


def _transition(read: _Reader, row: dict[str, Any], where: str) -> dict[str, Any]:
    read.keys(row, TRANSITION_KEYS, where)
    sources = row.get("from")
    return {
        "name": read.text(row.get("name"), f"{where}.name"),
        "label": read.text(row.get("label"), f"{where}.label"),
        "from": ", ".join(read.names(sources, f"{where}.from")),
        "to": read.text(row.get("to"), f"{where}.to"),
        "roles": read.names(row.get("roles"), f"{where}.roles"),
        "guards": read.names(row.get("guards"), f"{where}.guards"),
    }


def _rule(read: _Reader, row: dict[str, Any], where: str) -> dict[str, Any]:
    read.keys(row, RULE_KEYS, where)
    event, after = row.get("event"), row.get("after")
    if event is not None and after is not None:
        read.note(f"{where}.after")  # the form offers one trigger; saving keeps the event
    if after is not None and event is None:
        trigger = "after"
    else:
        trigger = "event" if event is not None else ""
    delay = read.mapping(after, f"{where}.after")
    read.keys(delay, (*DELAY_UNITS, "since"), f"{where}.after")
    return {
        "name": read.text(row.get("name"), f"{where}.name"),
        "description": read.text(row.get("description"), f"{where}.description"),
        "enabled": read.flag(row.get("enabled"), f"{where}.enabled", default=True),
        "trigger": trigger,
        "event": read.text(event, f"{where}.event"),
        "after": {
            **{u: read.number(delay.get(u), f"{where}.after.{u}") for u in DELAY_UNITS},
            "since": read.text(delay.get("since"), f"{where}.after.since"),
        },
        "if": [
            _condition(read, c, f"{where}.if.{j}")
            for j, c in enumerate(read.rows(row.get("if"), f"{where}.if"))
        ],
        "then": _actions(read, row.get("then"), f"{where}.then"),
    }


def _condition(read: _Reader, row: dict[str, Any], where: str) -> dict[str, str]:
    read.keys(row, CONDITION_KEYS, where)
    return {
        "field": read.text(row.get("field"), f"{where}.field"),
        "op": read.text(row.get("op"), f"{where}.op") or "eq",
        "value": show_value(row.get("value")),
    }


def _actions(read: _Reader, value: Any, where: str) -> list[dict[str, str]]:
    actions = []
    for j, row in enumerate(read.rows(value, where)):
        name = read.text(row.get("action"), f"{where}.{j}.action")
        param = action_param(name)
        read.keys(row, ("action", param, "message"), f"{where}.{j}")
        actions.append(
            {
                "action": name,
                "value": read.number(row.get(param), f"{where}.{j}.{param}"),
                "message": read.text(row.get("message"), f"{where}.{j}.message"),
            }
        )
    return actions


def _sla(read: _Reader, value: Any) -> dict[str, Any]:
    sla = read.mapping(value, "sla")
    read.keys(sla, SLA_KEYS, "sla")
    calendar = read.mapping(sla.get("calendar"), "sla.calendar")
    read.keys(calendar, CALENDAR_KEYS, "sla.calendar")
    hours = read.mapping(calendar.get("hours"), "sla.calendar.hours")
    read.keys(hours, WEEKDAYS, "sla.calendar.hours")
    targets = read.mapping(sla.get("targets"), "sla.targets")
    read.keys(targets, PRIORITIES, "sla.targets")
    per_priority = {}
    for priority in PRIORITIES:
        where = f"sla.targets.{priority}"
        target = read.mapping(targets.get(priority), where)
        read.keys(target, METRICS, where)
        per_priority[priority] = {m: read.number(target.get(m), f"{where}.{m}") for m in METRICS}
    return {
        "enabled": isinstance(value, dict),
        "calendar": {
            "timezone": read.text(calendar.get("timezone"), "sla.calendar.timezone"),
            "hours": {
                day: _show_intervals(read, hours.get(day), f"sla.calendar.hours.{day}")
                for day in WEEKDAYS
            },
            "holidays": ", ".join(read.names(calendar.get("holidays"), "sla.calendar.holidays")),
        },
        "targets": per_priority,
        # Missing means the schema's default, which the form shows ticked.
        "pause_in": read.names(sla["pause_in"], "sla.pause_in")
        if "pause_in" in sla
        else ["pending"],
        "warning_at": read.number(sla.get("warning_at"), "sla.warning_at"),
        **{key: _actions(read, sla.get(key), f"sla.{key}") for key in ACTION_LISTS},
    }


def _show_intervals(read: _Reader, value: Any, where: str) -> str:
    """``[["08:00", "12:00"], ["13:00", "17:00"]]`` as ``08:00-12:00, 13:00-17:00``."""
    if value is None:
        return ""
    if not isinstance(value, list):
        return read.text(value, where)
    shown = []
    for pair in value:
        if (
            isinstance(pair, list)
            and len(pair) == 2
            and all(isinstance(t, str) and "-" not in t and "," not in t for t in pair)
        ):
            shown.append(f"{pair[0]}-{pair[1]}")
        else:
            shown.append(read.text(pair, where))
    return ", ".join(shown)


def show_number(value: float) -> str:
    """``60.0`` (how validated definitions store numbers) as ``60``."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)


# -- condition values -----------------------------------------------------------------------------


def show_value(value: Any) -> str:
    """A condition's value as typed: ``customer``, ``false``, ``[agent, admin]``, ``15``;
    JSON when plain text would read back as something else."""
    if value is None:
        return ""
    if isinstance(value, str) and parse_value(value) == value:
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        plain = "[" + ", ".join(value) + "]"
        if parse_value(plain) == value:
            return plain
    return json.dumps(value, ensure_ascii=False)


def parse_value(text: str) -> Any:
    """What a condition's value field means: JSON when it parses as JSON (numbers, true,
    false, "quoted text", lists), a bracketed list of words, or else the text itself."""
    text = text.strip()
    if not text:
        return None
    try:
        value = json.loads(text, parse_constant=reject_constant)
    except (ValueError, RecursionError):
        value = text
    else:
        if json_problem(value) is not None:
            value = text
    if value == text and text.startswith("[") and text.endswith("]"):
        inner = text[1:-1].strip()
        return [parse_value(item) for item in inner.split(",")] if inner else []
    return value


# -- form values as a definition ------------------------------------------------------------------


def definition_from_form(form: MultiDict[str, str]) -> dict[str, Any]:
    """The definition a posted editor form describes, to be saved as entered.

    Rows left blank (a new row nobody filled in) or marked for removal are left out; the rest
    keep their order by index. Numbers and ids typed as digits become numbers; anything else
    stays text, for validation to point at."""
    tree = _tree(form)
    definition: dict[str, Any] = {"name": _one(tree, "name").strip()}
    if description := _one(tree, "description").strip():
        definition["description"] = description
    definition["initial"] = _one(tree, "initial").strip()
    definition["states"] = [_state_in(row) for row in _rows(tree, "states", _state_blank)]
    definition["transitions"] = [
        _transition_in(row) for row in _rows(tree, "transitions", _transition_blank)
    ]
    definition["rules"] = [_rule_in(row) for row in _rows(tree, "rules", _rule_blank)]
    sla = tree.get("sla")
    if isinstance(sla, dict) and _one(sla, "enabled"):
        definition["sla"] = _sla_in(sla)
    return definition


def _tree(form: MultiDict[str, str]) -> dict[str, Any]:
    """``{"states.0.name": ["new"]}`` as ``{"states": {"0": {"name": ["new"]}}}``."""
    root: dict[str, Any] = {}
    for key, values in form.lists():
        if not FORM_KEY.match(key):
            continue  # csrf_token, buttons, forged names
        *path, last = key.split(".")
        node = root
        for part in path:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        if not isinstance(node.get(last), dict):
            node[last] = values
    return root


def _one(node: Mapping[str, Any], key: str) -> str:
    value = node.get(key)
    return value[0] if isinstance(value, list) and value else ""


def _many(node: Mapping[str, Any], key: str) -> list[str]:
    value = node.get(key)
    return [v.strip() for v in value if v.strip()] if isinstance(value, list) else []


def _rows(node: Mapping[str, Any], key: str, blank: Any, where: str = "") -> list[dict]:
    children = node.get(key)
    if not isinstance(children, dict):
        return []
    indexed = sorted((int(i), row) for i, row in children.items() if i.isdecimal())
    if len(indexed) > MAX_ROWS:
        location = f"{where}.{key}" if where else key
        raise InvalidInput(
            f"Too many rows in {location}: at most {MAX_ROWS}.",
            {location: [f"At most {MAX_ROWS} rows."]},
        )
    return [
        row
        for _, row in indexed
        if isinstance(row, dict) and not _one(row, "remove") and not blank(row)
    ]


def _empty(row: Mapping[str, Any], *keys: str) -> bool:
    return all(not _one(row, key).strip() for key in keys)


def _state_blank(row: dict[str, Any]) -> bool:
    return _empty(row, "name", "label", "category")


def _transition_blank(row: dict[str, Any]) -> bool:
    return (
        _empty(row, "name", "label", "from", "to")
        and not _many(row, "roles")
        and not _many(row, "guards")
    )


def _condition_blank(row: dict[str, Any]) -> bool:
    return _empty(row, "field", "value")


def _action_blank(row: dict[str, Any]) -> bool:
    return _empty(row, "action", "value", "message")


def _rule_blank(row: dict[str, Any]) -> bool:
    after = row.get("after") if isinstance(row.get("after"), dict) else {}
    return (
        _empty(row, "name", "description", "event")
        and _empty(after, *DELAY_UNITS, "since")
        and not _rows(row, "if", _condition_blank)
        and not _rows(row, "then", _action_blank)
    )


def _number(text: str) -> Any:
    text = text.strip()
    if INTEGER.match(text):
        return int(text)
    if DECIMAL.match(text):
        return float(text)
    return text  # validation says "Not a valid number." at this field


def _split_names(text: str) -> list[str]:
    return [name for name in re.split(r"[\s,]+", text) if name]


def _state_in(row: dict[str, Any]) -> dict[str, Any]:
    state: dict[str, Any] = {"name": _one(row, "name").strip()}
    if label := _one(row, "label").strip():
        state["label"] = label
    state["category"] = _one(row, "category").strip()
    if _one(row, "terminal"):
        state["terminal"] = True
    return state


def _transition_in(row: dict[str, Any]) -> dict[str, Any]:
    transition: dict[str, Any] = {"name": _one(row, "name").strip()}
    if label := _one(row, "label").strip():
        transition["label"] = label
    transition["from"] = _split_names(_one(row, "from"))
    transition["to"] = _one(row, "to").strip()
    transition["roles"] = _many(row, "roles")
    if guards := _many(row, "guards"):
        transition["guards"] = guards
    return transition


def _rule_in(row: dict[str, Any]) -> dict[str, Any]:
    where = "rules"
    rule: dict[str, Any] = {"name": _one(row, "name").strip()}
    if description := _one(row, "description").strip():
        rule["description"] = description
    trigger = _one(row, "trigger")
    if trigger == "event":
        rule["event"] = _one(row, "event").strip()
    elif trigger == "after":
        after = row.get("after") if isinstance(row.get("after"), dict) else {}
        delay: dict[str, Any] = {
            unit: _number(_one(after, unit)) for unit in DELAY_UNITS if _one(after, unit).strip()
        }
        delay["since"] = _one(after, "since").strip()
        rule["after"] = delay
    conditions = [_condition_in(c) for c in _rows(row, "if", _condition_blank, where)]
    if conditions:
        rule["if"] = conditions
    rule["then"] = [_action_in(a) for a in _rows(row, "then", _action_blank, where)]
    if not _one(row, "enabled"):
        rule["enabled"] = False
    return rule


def _condition_in(row: dict[str, Any]) -> dict[str, Any]:
    condition: dict[str, Any] = {
        "field": _one(row, "field").strip(),
        "op": _one(row, "op").strip() or "eq",
    }
    value = parse_value(_one(row, "value"))
    if value is not None:
        condition["value"] = value
    return condition


def _action_in(row: dict[str, Any]) -> dict[str, Any]:
    name = _one(row, "action").strip()
    action: dict[str, Any] = {"action": name}
    param = action_param(name)
    value = _one(row, "value").strip()
    if value:
        wants_int = (ACTIONS.get(name) or {}).get(param) is int
        action[param] = int(value) if wants_int and INTEGER.match(value) else value
    if message := _one(row, "message").strip():
        action["message"] = message
    return action


def _sla_in(sla: dict[str, Any]) -> dict[str, Any]:
    policy: dict[str, Any] = {}
    calendar = sla.get("calendar") if isinstance(sla.get("calendar"), dict) else {}
    hours_in = calendar.get("hours") if isinstance(calendar.get("hours"), dict) else {}
    hours = {
        day: _intervals_in(_one(hours_in, day)) for day in WEEKDAYS if _one(hours_in, day).strip()
    }
    timezone = _one(calendar, "timezone").strip()
    holidays = _split_names(_one(calendar, "holidays"))
    policy["calendar"] = (
        {"timezone": timezone, "hours": hours, "holidays": holidays}
        if timezone or hours or holidays
        else None
    )
    targets_in = sla.get("targets") if isinstance(sla.get("targets"), dict) else {}
    targets = {}
    for priority in PRIORITY_ORDER:
        row = targets_in.get(priority) if isinstance(targets_in.get(priority), dict) else {}
        given = {m: _number(_one(row, m)) for m in METRICS if _one(row, m).strip()}
        if given:
            targets[priority] = given
    policy["targets"] = targets
    policy["pause_in"] = _many(sla, "pause_in")
    if warning := _one(sla, "warning_at").strip():
        policy["warning_at"] = _number(warning)
    for key in ACTION_LISTS:
        policy[key] = [_action_in(a) for a in _rows(sla, key, _action_blank, "sla")]
    return policy


def _intervals_in(text: str) -> Any:
    """``08:00-12:00, 13:00-17:00`` as pairs; a piece that is no pair stays text, for the
    calendar check to name."""
    pieces = [piece.strip() for piece in text.split(",") if piece.strip()]
    intervals: list[Any] = []
    for piece in pieces:
        start, dash, end = piece.partition("-")
        intervals.append([start.strip(), end.strip()] if dash else piece)
    return intervals


# -- placing validation errors --------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    location: str  # as validation reported it
    field: str | None  # the form field it is shown at; None: the form has none for it
    label: str  # where, in words
    message: str


@dataclass
class PlacedErrors:
    at: dict[str, list[str]]  # field name -> messages shown next to it
    problems: list[Problem]  # every message, in page order, for the summary

    def __bool__(self) -> bool:
        return bool(self.problems)

    def within(self, prefix: str) -> bool:
        """Whether a message is shown at a field inside ``prefix`` (``rules.2``)."""
        return any(name.startswith(f"{prefix}.") for name in self.at)


def place_errors(errors: Mapping[str, list[str]], form: DraftForm) -> PlacedErrors:
    """Each located message at the form field it concerns."""
    fields = form.fields()
    order = {name: i for i, name in enumerate(fields)}
    known = set(fields)
    at: dict[str, list[str]] = {}
    problems = []
    for location, messages in errors.items():
        for message in messages:
            target = _target(location, message, known, fields)
            shown = _without_field_prefix(location, message) if target else message
            if target is not None:
                at.setdefault(target, []).append(shown)
            label = describe(target or location, form.values)
            problems.append(Problem(location, target, label, shown))
    problems.sort(key=lambda p: (p.field is not None, order.get(p.field or "", 0)))
    return PlacedErrors(at, problems)


def _target(location: str, message: str, known: set[str], fields: list[str]) -> str | None:
    if re.fullmatch(r"rules\.\d+", location):
        return f"{location}.trigger"  # "either 'event' or 'after'"
    if re.fullmatch(r"rules\.\d+\.if\.\d+", location):
        part = (
            "field"
            if message.startswith("Unknown field")
            else "op"
            if message.startswith("Unknown operator")
            else "value"
        )
        location = f"{location}.{part}"
    elif re.fullmatch(r"(rules\.\d+\.then|sla\.on_warning|sla\.on_breach)\.\d+", location):
        if message.startswith(("Unknown action", "Not a valid")):
            part = "action"
        elif "'message'" in message:
            part = "message"
        else:
            part = "value"
        location = f"{location}.{part}"
    elif location == "sla.calendar":
        location = _calendar_field(message)
    parts = location.split(".")
    while parts:
        name = ".".join(parts)
        if name in known:
            return name
        inside = next((f for f in fields if f.startswith(name + ".")), None)
        if inside is not None:
            return inside
        parts.pop()
    return None


def _without_field_prefix(location: str, message: str) -> str:
    """``timezone: unknown time zone 'X'.`` shown at the time zone field needs no prefix."""
    if location != "sla.calendar":
        return message
    return re.sub(r"^(timezone|holidays|hours(\.[a-z]{3})?): ", "", message)


def _calendar_field(message: str) -> str:
    """The calendar check reports one message for the whole calendar, starting with the part
    it is about (``timezone: ...``, ``hours.tue.0: ...``)."""
    match = re.match(r"(timezone|holidays|hours)(?:\.([a-z]{3}))?\b", message)
    if match is None:
        return "sla.calendar.timezone"
    part, day = match.groups()
    if part == "hours":
        return f"sla.calendar.hours.{day if day in WEEKDAYS else WEEKDAYS[0]}"
    return f"sla.calendar.{part}"


ROW_NOUNS = {
    "states": "State",
    "transitions": "Transition",
    "rules": "Rule",
    "if": "condition",
    "then": "action",
    "on_warning": "warning action",
    "on_breach": "breach action",
}
SECTION_NOUNS = {"sla": "SLA", "calendar": "business hours", "targets": "targets"}


def describe(location: str, values: Mapping[str, Any]) -> str:
    """A location in words: ``transitions.7.to`` -> ``Transition 8 “escalate”, to``."""
    words: list[str] = []
    parts = location.split(".")
    node: Any = values
    i = 0
    while i < len(parts):
        part = parts[i]
        child = node.get(part) if isinstance(node, dict) else None
        if i + 1 < len(parts) and parts[i + 1].isdecimal() and part in ROW_NOUNS:
            index = int(parts[i + 1])
            row = child[index] if isinstance(child, list) and index < len(child) else None
            name = row.get("name") if isinstance(row, dict) else None
            words.append(f"{ROW_NOUNS[part]} {index + 1}" + (f" “{name}”" if name else ""))
            node, i = row, i + 2
            continue
        words.append(SECTION_NOUNS.get(part, part.replace("_", " ")))
        node, i = child, i + 1
    return ", ".join(words) if words else "The draft"


def _field_names(values: Mapping[str, Any]) -> Iterator[str]:
    yield from ("name", "description", "initial", "states")
    for i, _ in enumerate(values["states"]):
        yield from (f"states.{i}.{key}" for key in STATE_KEYS)
    yield "transitions"
    for i, _ in enumerate(values["transitions"]):
        yield from (f"transitions.{i}.{key}" for key in TRANSITION_KEYS)
    yield "rules"
    for i, rule in enumerate(values["rules"]):
        where = f"rules.{i}"
        yield from (f"{where}.{key}" for key in ("name", "description", "enabled", "trigger"))
        yield f"{where}.event"
        yield from (f"{where}.after.{key}" for key in (*DELAY_UNITS, "since"))
        yield f"{where}.if"
        for j, _ in enumerate(rule["if"]):
            yield from (f"{where}.if.{j}.{key}" for key in CONDITION_KEYS)
        yield f"{where}.then"
        for j, _ in enumerate(rule["then"]):
            yield from (f"{where}.then.{j}.{key}" for key in ("action", "value", "message"))
    yield "sla.enabled"
    yield from (f"sla.targets.{p}.{m}" for p in PRIORITIES for m in METRICS)
    yield "sla.calendar.timezone"
    yield from (f"sla.calendar.hours.{day}" for day in WEEKDAYS)
    yield from ("sla.calendar.holidays", "sla.pause_in", "sla.warning_at")
    for key in ACTION_LISTS:
        yield f"sla.{key}"
        for j, _ in enumerate(values["sla"][key]):
            yield from (f"sla.{key}.{j}.{part}" for part in ("action", "value", "message"))
