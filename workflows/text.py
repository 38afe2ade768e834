"""Workflow definitions as text: YAML or JSON, read safely and written in the order people
write them.

``parse_raw`` reads a definition someone typed: safe YAML without timestamps (``2026-12-25``
stays text, as in JSON), a size and node budget (YAML aliases can make a small text describe
an enormous document), and only what JSON can store; its errors say where the text is wrong.
``dump_raw`` writes a stored definition back with its keys in writing order (PostgreSQL's
jsonb sorts them).
"""

from __future__ import annotations

import functools
import json
import math
from typing import Any, NoReturn

import yaml

from workflows.calendar import WEEKDAYS
from workflows.vocabulary import ACTIONS, PRIORITY_ORDER

PRIORITIES = tuple(reversed(PRIORITY_ORDER))  # most urgent first, as people read a table
METRICS = ("first_response", "next_reply", "resolution")
DELAY_UNITS = ("days", "hours", "minutes", "seconds")
MAX_RAW_CHARS = 200_000
MAX_RAW_NODES = 50_000  # YAML aliases can make a small text a huge document
TOP_KEYS = ("name", "description", "initial", "states", "transitions", "rules", "sla")
STATE_KEYS = ("name", "label", "category", "terminal")
TRANSITION_KEYS = ("name", "label", "from", "to", "roles", "guards")
RULE_KEYS = ("name", "description", "event", "after", "if", "then", "enabled")
CONDITION_KEYS = ("field", "op", "value")
SLA_KEYS = ("calendar", "targets", "pause_in", "warning_at", "on_warning", "on_breach")
CALENDAR_KEYS = ("timezone", "hours", "holidays")
ACTION_LISTS = ("on_warning", "on_breach")


class DefinitionTextError(ValueError):
    """The text is not a definition that can be stored; the message says where and why."""


def action_param(action: str) -> str:
    """The key an action's one value is stored under (``value`` for actions taking none)."""
    params = ACTIONS.get(action) or {}
    return next(iter(params), "value")


def reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON can store")


RAW_FORMATS = ("yaml", "json")


class _DraftLoader(yaml.SafeLoader):
    """Safe YAML without timestamps: ``2026-12-25`` stays text (JSON has no dates)."""


_DraftLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class _DraftDumper(yaml.SafeDumper):
    """Block lists indented under their key, as people write YAML (and default.yaml is)."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def dump_raw(draft: Any, fmt: str) -> str:
    """The draft as text, its keys in the order people write them (a database may have sorted
    them: PostgreSQL's jsonb does). The editor shows it on every view of a draft, and PyYAML's
    pure-Python emitter takes a third of that page's time, so the text of the drafts shown
    lately is kept (keyed by the draft's JSON, which is what it is stored as)."""
    try:
        key = json.dumps(draft, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError):  # not storable as it is: write it without keeping it
        return _dump(draft, fmt)
    return _dump_stored(key, fmt)


@functools.lru_cache(maxsize=64)
def _dump_stored(draft_json: str, fmt: str) -> str:
    return _dump(json.loads(draft_json), fmt)


def _dump(draft: Any, fmt: str) -> str:
    draft = in_writing_order(draft)
    if fmt == "json":
        return json.dumps(draft, indent=2, ensure_ascii=False)
    return yaml.dump(
        draft,
        Dumper=_DraftDumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=None,
        width=100,
    )


def in_writing_order(draft: Any) -> Any:
    """A copy of the draft with the keys of every part it knows in their usual order (unknown
    keys after them); anything else is kept as it is."""
    if not isinstance(draft, dict):
        return draft
    ordered = _keys(draft, TOP_KEYS)
    for key, keys in (("states", STATE_KEYS), ("transitions", TRANSITION_KEYS)):
        ordered[key] = _each(ordered.get(key), lambda row, keys=keys: _keys(row, keys))
    ordered["rules"] = _each(ordered.get("rules"), _rule_order)
    if isinstance(ordered.get("sla"), dict):
        ordered["sla"] = _sla_order(ordered["sla"])
    return {key: value for key, value in ordered.items() if key in draft}


def _keys(row: dict[str, Any], order: tuple[str, ...]) -> dict[str, Any]:
    known = {key: row[key] for key in order if key in row}
    return known | {key: value for key, value in row.items() if key not in known}


def _each(rows: Any, arrange: Any) -> Any:
    if not isinstance(rows, list):
        return rows
    return [arrange(row) if isinstance(row, dict) else row for row in rows]


def _action_order(action: dict[str, Any]) -> dict[str, Any]:
    name = action.get("action")
    return _keys(action, ("action", action_param(name if isinstance(name, str) else ""), "message"))


def _rule_order(rule: dict[str, Any]) -> dict[str, Any]:
    ordered = _keys(rule, RULE_KEYS)
    if isinstance(ordered.get("after"), dict):
        ordered["after"] = _keys(ordered["after"], (*DELAY_UNITS, "since"))
    for key, arrange in (("if", lambda c: _keys(c, CONDITION_KEYS)), ("then", _action_order)):
        if key in ordered:
            ordered[key] = _each(ordered[key], arrange)
    return ordered


def _sla_order(sla: dict[str, Any]) -> dict[str, Any]:
    ordered = _keys(sla, SLA_KEYS)
    calendar = ordered.get("calendar")
    if isinstance(calendar, dict):
        calendar = _keys(calendar, CALENDAR_KEYS)
        if isinstance(calendar.get("hours"), dict):
            calendar["hours"] = _keys(calendar["hours"], WEEKDAYS)
        ordered["calendar"] = calendar
    targets = ordered.get("targets")
    if isinstance(targets, dict):
        ordered["targets"] = {
            priority: _keys(target, METRICS) if isinstance(target, dict) else target
            for priority, target in _keys(targets, PRIORITIES).items()
        }
    for key in ACTION_LISTS:
        if key in ordered:
            ordered[key] = _each(ordered[key], _action_order)
    return ordered


def parse_raw(text: str, fmt: str) -> dict[str, Any]:
    """The draft a YAML/JSON text holds; ``DefinitionTextError`` says where it is wrong."""
    if fmt not in RAW_FORMATS:
        raise ValueError(f"unknown format {fmt!r}")
    if len(text) > MAX_RAW_CHARS:
        _raw_error(f"The text is too long: at most {MAX_RAW_CHARS:,} characters.")
    try:
        data = _parse_json(text) if fmt == "json" else yaml.load(text, Loader=_DraftLoader)  # noqa: S506 (a SafeLoader)
    except json.JSONDecodeError as exc:
        _raw_error(f"JSON syntax error on line {exc.lineno}, column {exc.colno}: {exc.msg}.")
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" on line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        detail = exc.problem or exc.context or "not valid YAML"
        _raw_error(f"YAML syntax error{where}: {detail}.")
    except (yaml.YAMLError, ValueError) as exc:
        _raw_error(f"This is not valid {fmt.upper()}: {exc}.")
    except RecursionError:
        _raw_error("The text is nested too deeply.")
    if not isinstance(data, dict):
        _raw_error("The draft must be a mapping at the top (name: ..., states: ..., ...).")
    problem = json_problem(data)
    if problem is not None:
        _raw_error(problem)
    return data


def _parse_json(text: str) -> Any:
    try:
        return json.loads(text, parse_constant=reject_constant)
    except json.JSONDecodeError:
        raise
    except ValueError as exc:  # NaN, Infinity, an integer too long to read
        raise json.JSONDecodeError(str(exc), text, 0) from exc


def _raw_error(message: str) -> NoReturn:
    raise DefinitionTextError(message)


def json_problem(value: Any) -> str | None:
    """Why a loaded YAML/JSON value cannot be stored as JSON, or None. Counts nodes, since
    YAML aliases make a small text describe an enormous document."""
    budget = [MAX_RAW_NODES]

    def walk(item: Any, path: str) -> str | None:
        budget[0] -= 1
        if budget[0] < 0:
            return "The document is too large."
        at = f" at {path}" if path else ""
        if item is None or isinstance(item, (str, bool, int)):
            return None
        if isinstance(item, float):
            return None if math.isfinite(item) else f"Numbers must be finite{at}."
        if isinstance(item, list):
            for i, child in enumerate(item):
                if found := walk(child, f"{path}.{i}" if path else str(i)):
                    return found
            return None
        if isinstance(item, dict):
            for key, child in item.items():
                if not isinstance(key, str):
                    return f"Keys must be text{at}: got {key!r}."
                if found := walk(child, f"{path}.{key}" if path else key):
                    return found
            return None
        return f"A value JSON cannot hold{at}: {type(item).__name__}."

    try:
        return walk(value, "")
    except RecursionError:
        return "The document is nested too deeply."
