"""The workflow editor's form conversion: a definition shown as indexed fields and read back
unchanged, blank and removed rows, condition values typed as text, errors placed at the field
they concern, what the form cannot show, and the raw YAML/JSON view."""

from __future__ import annotations

import copy
import itertools
import json
import random
from typing import Any

import pytest
from werkzeug.datastructures import MultiDict

from autocrm.engine.drafts import check_definition
from autocrm.errors import InvalidInput
from web.admin.workflow_form import (
    MAX_ROWS,
    definition_from_form,
    describe,
    form_from_definition,
    parse_value,
    place_errors,
    show_value,
)
from workflows import default_definition, dump_definition, load_definition
from workflows.text import DefinitionTextError, dump_raw, parse_raw


def posted(values: dict[str, Any]) -> MultiDict[str, str]:
    """The form a browser posts for these editor values (checked boxes only)."""
    form: MultiDict[str, str] = MultiDict()

    def put(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, child in value.items():
                put(f"{prefix}.{key}" if prefix else key, child)
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for i, child in enumerate(value):
                put(f"{prefix}.{i}", child)
        elif isinstance(value, list):
            for item in value:
                form.add(prefix, item)
        elif isinstance(value, bool):
            if value:
                form.add(prefix, "1")
        else:
            form.add(prefix, value)

    put("", values)
    return form


def round_trip(definition: Any) -> dict[str, Any]:
    return definition_from_form(posted(form_from_definition(definition).values))


def test_the_default_workflow_survives_the_form():
    draft = default_definition()
    form = form_from_definition(draft)
    assert form.unshown == []
    assert round_trip(draft) == _canonical(draft)
    assert load_definition(round_trip(draft)) == load_definition(draft)


def test_a_stored_version_survives_the_form():
    stored = dump_definition(load_definition(default_definition()))  # labels None, 60.0, ...
    form = form_from_definition(stored)
    assert form.unshown == []
    assert form.values["sla"]["targets"]["urgent"]["first_response"] == "60"
    assert form.values["rules"][4]["after"]["days"] == "4"
    assert load_definition(round_trip(stored)) == load_definition(stored)


def _canonical(draft: dict[str, Any]) -> dict[str, Any]:
    """What the form writes for a definition: the same data in the form's key order."""
    return definition_from_form(posted(form_from_definition(draft).values))


def test_what_is_typed_is_saved_as_typed():
    values = form_from_definition(default_definition()).values
    values["transitions"][0]["to"] = "  nowhere "
    values["transitions"][0]["from"] = "new,open  pending"
    values["sla"]["targets"]["urgent"]["first_response"] = "abc"
    values["sla"]["targets"]["low"]["resolution"] = "1.5"
    values["rules"][0]["then"][0]["value"] = "resum"
    values["rules"][1]["then"][0] = {"action": "assign_team", "value": "12", "message": ""}
    values["rules"][2]["then"][0] = {"action": "assign_agent", "value": "x7", "message": ""}
    draft = definition_from_form(posted(values))
    assert draft["transitions"][0]["to"] == "nowhere"
    assert draft["transitions"][0]["from"] == ["new", "open", "pending"]
    assert draft["sla"]["targets"]["urgent"]["first_response"] == "abc"
    assert draft["sla"]["targets"]["low"]["resolution"] == 1.5
    assert draft["rules"][0]["then"] == [{"action": "transition", "name": "resum"}]
    assert draft["rules"][1]["then"] == [{"action": "assign_team", "team_id": 12}]
    assert draft["rules"][2]["then"] == [{"action": "assign_agent", "user_id": "x7"}]


def test_blank_and_removed_rows_are_left_out():
    form = posted(form_from_definition(default_definition()).values)
    form["states.6.name"] = ""  # a new row nobody filled in
    form["states.6.category"] = ""
    form["transitions.7.name"] = ""
    form["rules.6.trigger"] = "event"  # defaults of a blank rule do not make it a rule
    form["rules.6.enabled"] = "1"
    form["rules.6.if.0.op"] = "eq"
    form["rules.0.if.2.op"] = "eq"
    form["states.3.remove"] = "1"
    form["rules.0.then.0.remove"] = "1"
    draft = definition_from_form(form)
    assert [s["name"] for s in draft["states"]] == ["new", "open", "pending", "solved", "closed"]
    assert len(draft["transitions"]) == 7
    assert len(draft["rules"]) == 6
    assert len(draft["rules"][0]["if"]) == 2
    assert draft["rules"][0]["then"] == []


def test_rows_keep_their_order_by_index_whatever_the_gaps():
    form = MultiDict(
        [
            ("states.10.name", "c"),
            ("states.2.name", "b"),
            ("states.0.name", "a"),
            ("states.x.name", "ignored"),
            ("csrf_token", "t"),
        ]
    )
    assert [s["name"] for s in definition_from_form(form)["states"]] == ["a", "b", "c"]


def test_too_many_rows_are_refused_at_the_list():
    form = MultiDict([(f"states.{i}.name", f"s{i}") for i in range(MAX_ROWS + 1)])
    with pytest.raises(InvalidInput) as refused:
        definition_from_form(form)
    assert list(refused.value.errors) == ["states"]


def test_triggers_delays_and_disabled_rules():
    form = MultiDict(
        [
            ("rules.0.name", "later"),
            ("rules.0.trigger", "after"),
            ("rules.0.event", "ticket.created"),  # left over from the other trigger: ignored
            ("rules.0.after.hours", "2"),
            ("rules.0.after.minutes", "30"),
            ("rules.0.after.since", "created_at"),
            ("rules.0.then.0.action", "raise_priority"),
            ("rules.1.name", "nothing"),
            ("rules.1.trigger", ""),
            ("rules.1.enabled", "1"),
            ("rules.1.then.0.action", "notify"),
            ("rules.1.then.0.value", "team"),
            ("rules.1.then.0.message", "Hello"),
        ]
    )
    later, nothing = definition_from_form(form)["rules"]
    assert later == {
        "name": "later",
        "after": {"hours": 2, "minutes": 30, "since": "created_at"},
        "then": [{"action": "raise_priority"}],
        "enabled": False,
    }
    assert nothing == {
        "name": "nothing",
        "then": [{"action": "notify", "to": "team", "message": "Hello"}],
    }
    assert form_from_definition({"rules": [later]}).values["rules"][0]["trigger"] == "after"
    assert form_from_definition({"rules": [nothing]}).values["rules"][0]["trigger"] == ""


def test_sla_off_and_around_the_clock():
    values = form_from_definition(default_definition()).values
    values["sla"]["enabled"] = False
    assert "sla" not in definition_from_form(posted(values))

    values["sla"]["enabled"] = True
    values["sla"]["calendar"] = {"timezone": "", "hours": {}, "holidays": ""}
    values["sla"]["pause_in"] = []
    sla = definition_from_form(posted(values))["sla"]
    assert sla["calendar"] is None
    assert sla["pause_in"] == []
    assert form_from_definition({"sla": {"targets": {}}}).values["sla"]["pause_in"] == [
        "pending"
    ], "missing means the default"
    assert form_from_definition({}).values["sla"]["enabled"] is False


def test_opening_hours_as_text():
    values = form_from_definition(default_definition()).values
    assert values["sla"]["calendar"]["hours"]["mon"] == "08:00-18:00"
    assert values["sla"]["calendar"]["hours"]["sat"] == ""
    values["sla"]["calendar"]["hours"]["sat"] = "09:00-12:00, 13:00 - 15:00, noon"
    values["sla"]["calendar"]["holidays"] = "2026-12-25, 2026-12-26"
    calendar = definition_from_form(posted(values))["sla"]["calendar"]
    assert calendar["hours"]["sat"] == [["09:00", "12:00"], ["13:00", "15:00"], "noon"]
    assert calendar["holidays"] == ["2026-12-25", "2026-12-26"]
    shown = form_from_definition({"sla": {"calendar": calendar, "targets": {}}})
    assert shown.values["sla"]["calendar"]["hours"]["sat"] == "09:00-12:00, 13:00-15:00, noon"


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("customer", "customer"),
        ("false", False),
        ("15", 15),
        ("1.5", 1.5),
        ("[agent, admin]", ["agent", "admin"]),
        ('["agent", "admin"]', ["agent", "admin"]),
        ("[]", []),
        ('"15"', "15"),
        ('""', ""),
        ("", None),
        ("NaN", "NaN"),
        ("1e999", "1e999"),
        ("[a, 2, true]", ["a", 2, True]),
        ("Urgent ticket, still unassigned", "Urgent ticket, still unassigned"),
    ],
)
def test_condition_values(text, value):
    assert parse_value(text) == value
    if value is not None:
        assert parse_value(show_value(value)) == value


def test_any_condition_value_reads_back_as_itself():
    for value in ["a b", " padded ", "[x]", "null", "true", 0, -3, 2.5, [], ["a,b"], [1, "x"],
                  {"k": "v"}, "ümlaut", "'quoted'", '"x"', [[1]]]:  # fmt: skip
        assert parse_value(show_value(value)) == value, value


# -- what the form cannot show --------------------------------------------------------------------


def test_parts_the_form_cannot_show_are_listed():
    draft = default_definition()
    draft["colour"] = "teal"
    draft["states"][1]["icon"] = "x"
    draft["states"][2] = "pending"
    draft["transitions"][0]["roles"] = "agent"
    draft["rules"][0]["after"] = {"days": 1, "since": "created_at"}  # as well as an event
    draft["sla"]["targets"]["extreme"] = {"resolution": 1}
    form = form_from_definition(draft)
    assert set(form.unshown) == {
        "colour",
        "states.1.icon",
        "states.2",
        "transitions.0.roles",
        "rules.0.after",
        "sla.targets.extreme",
    }
    # A row that is no mapping still takes its place: later rows keep their indexes.
    assert [s["name"] for s in form.values["states"]][1:4] == ["open", "", "on_hold"]


def test_any_json_renders():
    """The form is total: whatever a draft holds, it renders and reads back."""
    rng = random.Random(6)  # noqa: S311 - reproducible junk, not secrets
    leaves: list[Any] = [None, True, 0, -1.5, "", "x", "new", [], {}, ["a"], [1, None]]

    def junk(depth: int) -> Any:
        if depth > 3 or rng.random() < 0.3:
            return rng.choice(leaves)
        if rng.random() < 0.5:
            return [junk(depth + 1) for _ in range(rng.randint(0, 3))]
        keys = ["name", "from", "to", "if", "then", "after", "sla", "targets", "calendar",
                "hours", "states", "rules", "action", "value", "urgent", "mon", "zz"]  # fmt: skip
        return {rng.choice(keys): junk(depth + 1) for _ in range(rng.randint(0, 4))}

    base = default_definition()
    for _ in range(300):
        draft = copy.deepcopy(base)
        target: Any = draft
        for key in rng.choice([["states"], ["transitions"], ["rules"], ["sla"], []]):
            target = target[key]
        if isinstance(target, list) and target:
            target[rng.randrange(len(target))] = junk(0)
        elif isinstance(target, dict):
            target[rng.choice([*target, "zz"])] = junk(0)
        for candidate in (draft, junk(0)):
            form = form_from_definition(candidate)
            back = definition_from_form(posted(form.values))
            json.dumps(back, allow_nan=False)
            place_errors({"states.0.name": ["x"], "rules.9.if.2": ["Unknown field"]}, form)


# -- placing errors -------------------------------------------------------------------------------


def _placed(draft: dict[str, Any]) -> dict[str, list[str]]:
    _, errors = check_definition(draft)
    return place_errors(errors, form_from_definition(draft)).at


def test_errors_are_placed_at_the_field_they_concern():
    draft = default_definition()
    draft["transitions"][2]["to"] = "on_hols"
    draft["transitions"][3]["from"] = ["pending", "gone"]
    draft["transitions"][0]["guards"] = ["is_friday"]
    draft["rules"][0]["if"][0]["field"] = "ticket.mood"
    draft["rules"][0]["if"][1]["op"] = "like"
    draft["rules"][1]["if"][0]["op"] = "in"
    draft["rules"][1]["if"][0]["value"] = "agent"
    draft["rules"][2]["then"][0] = {"action": "explode"}
    draft["rules"][3]["then"][0] = {"action": "request_feedback", "message": "hi"}
    draft["rules"][4]["after"]["days"] = 0
    draft["rules"][5]["event"] = "ticket.created"  # and an after: both
    draft["sla"]["calendar"]["hours"]["tue"] = [["18:00", "08:00"]]
    draft["sla"]["on_breach"][0] = {"action": "set_priority", "priority": "asap"}
    at = _placed(draft)
    assert at["transitions.2.to"] == ["Unknown state 'on_hols'."]
    assert at["transitions.3.from"] == ["Unknown state 'gone'."]
    assert at["transitions.0.guards"] == ["Unknown guard 'is_friday'."]
    assert at["rules.0.if.0.field"] == ["Unknown field 'ticket.mood'."]
    assert at["rules.0.if.1.op"][0].startswith("Unknown operator 'like'")
    assert at["rules.1.if.0.value"] == ["Operator 'in' takes a list."]
    assert at["rules.2.then.0.action"][0].startswith("Unknown action 'explode'")
    assert at["rules.3.then.0.message"] == ["Action 'request_feedback' takes no 'message'."]
    assert at["rules.4.after.days"] == ["The delay must be longer than zero."]
    assert "exactly one" in at["rules.5.trigger"][0]
    assert at["sla.calendar.hours.tue"][0].startswith("hours.tue.0")
    assert at["sla.on_breach.0.value"] == ["priority must be one of low, normal, high, urgent."]


def test_errors_about_a_list_or_a_group_go_to_its_anchor_or_first_field():
    draft = default_definition()
    draft["states"] = []
    draft["rules"][0]["then"] = []
    at = _placed(draft)
    assert at["states"] == ["Shorter than minimum length 1."]
    assert at["rules.0.then"] == ["Shorter than minimum length 1."]

    draft = default_definition()
    del draft["sla"]["targets"]
    draft["sla"]["calendar"]["timezone"] = "Nowhere/City"
    at = _placed(draft)
    assert at["sla.targets.urgent.first_response"] == ["Missing data for required field."]

    draft = default_definition()
    draft["sla"]["calendar"]["timezone"] = "Nowhere/City"
    assert "Nowhere/City" in _placed(draft)["sla.calendar.timezone"][0]


def test_unplaced_errors_stay_in_the_summary_first():
    form = form_from_definition(default_definition())
    placed = place_errors(
        {"transitions.2.to": ["Unknown state 'x'."], "colour": ["Unknown field."]}, form
    )
    assert [(p.field, p.label) for p in placed.problems] == [
        (None, "colour"),
        ("transitions.2.to", "Transition 3 “hold”, to"),
    ]


def test_locations_in_words():
    values = form_from_definition(default_definition()).values
    assert describe("rules.0.if.1.value", values) == (
        "Rule 1 “reopen_on_customer_reply”, condition 2, value"
    )
    assert describe("sla.targets.urgent.first_response", values) == (
        "SLA, targets, urgent, first response"
    )
    assert describe("sla.on_breach.2.value", values) == "SLA, breach action 3, value"
    assert describe("states.40.name", values) == "State 41, name"


# -- the raw view ---------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_raw_text_reads_back_as_the_draft(fmt):
    draft = default_definition()
    assert parse_raw(dump_raw(draft, fmt), fmt) == draft


def test_raw_text_lists_keys_in_writing_order_whatever_the_database_did():
    def scrambled(value: Any) -> Any:  # as PostgreSQL's jsonb returns it: keys sorted
        if isinstance(value, dict):
            return {k: scrambled(value[k]) for k in sorted(value, key=lambda k: (len(k), k))}
        if isinstance(value, list):
            return [scrambled(v) for v in value]
        return value

    draft = default_definition()
    draft["extra"] = {"b": 1, "a": 2}
    text = dump_raw(scrambled(draft), "yaml")
    assert text.startswith("name: default\ndescription: ")
    assert "- {name: new, label: New, category: new}" in text
    assert "  - name: start\n    label: Start work\n    from: [new]\n    to: open\n" in text
    assert "- {action: notify, to: team_lead, message: SLA breached.}" in text
    assert text.index("urgent:") < text.index("low:")
    assert text.index("mon:") < text.index("fri:")
    assert text.index("sla:") < text.index("extra:"), "unknown keys come last"
    assert parse_raw(text, "yaml") == draft


def test_raw_yaml_keeps_dates_as_text():
    assert parse_raw("holidays: [2026-12-25]\nat: 2026-01-01T10:00:00\n", "yaml") == {
        "holidays": ["2026-12-25"],
        "at": "2026-01-01T10:00:00",
    }


@pytest.mark.parametrize(
    ("fmt", "text", "says"),
    [
        ("yaml", "a: [1, 2\nb: 3\n", "YAML syntax error on line 2"),
        ("yaml", "a:\n\t- b\n", "YAML syntax error on line 2"),
        ("json", '{"a": 1,}', "JSON syntax error on line 1, column 9"),
        ("json", '{"a": NaN}', "JSON syntax error"),
        ("yaml", "- a list\n", "must be a mapping"),
        ("yaml", "", "must be a mapping"),
        ("yaml", "a: .inf\n", "finite at a"),
        ("yaml", "1: x\n", "Keys must be text"),
        ("yaml", "a: !!binary aGk=\n", "JSON cannot hold at a: bytes"),
        ("yaml", "a: !!set {x}\n", "JSON cannot hold at a: set"),
        ("yaml", "!!python/name:os.system\n", "YAML"),
        ("yaml", "[" * 5000, "nested too deeply"),
        ("json", "[" * 5000, "nested too deeply"),
    ],
)
def test_raw_text_that_cannot_be_a_draft_is_refused_at_the_field(fmt, text, says):
    with pytest.raises(DefinitionTextError) as refused:
        parse_raw(text, fmt)
    assert says in str(refused.value)


def test_yaml_aliases_cannot_describe_a_huge_document():
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i, j in itertools.pairwise(range(7)):
        lines.append(f"a{j}: &a{j} [" + ", ".join([f"*a{i}"] * 10) + "]")
    with pytest.raises(DefinitionTextError) as refused:
        parse_raw("\n".join(lines) + "\n", "yaml")
    assert "too large" in str(refused.value)
