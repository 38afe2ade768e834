"""Workflow definitions: the default is valid, and bad drafts get errors at the right place."""

import copy

import pytest
from marshmallow import ValidationError

from workflows import default_definition, dump_definition, load_definition


def draft() -> dict:
    return copy.deepcopy(default_definition())


def errors_of(definition: dict) -> dict:
    with pytest.raises(ValidationError) as caught:
        load_definition(definition)
    return caught.value.messages


def test_default_workflow_has_the_documented_states_and_transitions():
    loaded = load_definition(default_definition())
    assert [s["name"] for s in loaded["states"]] == [
        "new", "open", "pending", "on_hold", "solved", "closed",
    ]  # fmt: skip
    transitions = {t["name"]: (set(t["source"]), t["dest"]) for t in loaded["transitions"]}
    assert transitions == {
        "start": ({"new"}, "open"),
        "wait_on_customer": ({"open"}, "pending"),
        "hold": ({"open"}, "on_hold"),
        "resume": ({"pending", "on_hold"}, "open"),
        "solve": ({"new", "open", "pending", "on_hold"}, "solved"),
        "close": ({"solved"}, "closed"),
        "reopen": ({"solved", "closed"}, "open"),
    }
    customer_may = {t["name"] for t in loaded["transitions"] if "customer" in t["roles"]}
    assert customer_may == {"solve", "reopen"}


def test_dump_then_load_round_trips():
    loaded = load_definition(default_definition())
    assert load_definition(dump_definition(loaded)) == loaded


def test_unknown_states_are_reported_where_they_are_named():
    definition = draft()
    definition["transitions"][0]["to"] = "limbo"
    definition["transitions"][3]["from"] = ["pending", "nowhere"]
    definition["initial"] = "start_here"
    errors = errors_of(definition)
    assert "limbo" in errors["transitions.0.to"][0]
    assert "nowhere" in errors["transitions.3.from.1"][0]
    assert "start_here" in errors["initial"][0]


def test_duplicate_names_are_reported():
    definition = draft()
    definition["states"].append({"name": "open", "category": "open"})
    definition["transitions"].append(dict(definition["transitions"][0]))
    errors = errors_of(definition)
    assert "Duplicate state" in errors["states.6.name"][0]
    assert "Duplicate transition" in errors["transitions.7.name"][0]


def test_unreachable_state_is_reported():
    definition = draft()
    definition["states"].append({"name": "archived", "category": "closed", "terminal": True})
    errors = errors_of(definition)
    assert "cannot be reached" in errors["states.6.name"][0]


def test_non_terminal_dead_end_is_reported_but_a_terminal_one_is_fine():
    definition = draft()
    definition["states"].append({"name": "archived", "category": "closed"})
    definition["transitions"].append(
        {"name": "archive", "from": ["closed"], "to": "archived", "roles": ["admin"]}
    )
    errors = errors_of(definition)
    assert "no way out" in errors["states.6.name"][0]
    definition["states"][6]["terminal"] = True
    load_definition(definition)


def test_unknown_guard_and_category_and_role_are_reported():
    definition = draft()
    definition["transitions"][0]["guards"] = ["has_assignee", "moon_is_full"]
    assert "moon_is_full" in errors_of(definition)["transitions.0.guards.1"][0]
    definition = draft()
    definition["states"][0]["category"] = "limbo"
    assert "category" in errors_of(definition)["states"][0]
    definition = draft()
    definition["transitions"][0]["roles"] = ["janitor"]
    assert errors_of(definition)["transitions"][0]["roles"][0]


def test_a_transition_nobody_may_fire_is_rejected():
    definition = draft()
    hold = next(i for i, t in enumerate(definition["transitions"]) if t["name"] == "hold")
    definition["transitions"][hold]["roles"] = []
    assert "dead" in errors_of(definition)[f"transitions.{hold}.roles"][0]


def test_a_transition_only_rules_fire_needs_no_role():
    definition = draft()
    start = next(i for i, t in enumerate(definition["transitions"]) if t["name"] == "start")
    definition["transitions"][start]["roles"] = []  # the start_on_first_agent_reply rule fires it
    load_definition(definition)


def test_guard_that_the_allowed_roles_can_never_meet_is_rejected():
    definition = draft()
    reopen = next(i for i, t in enumerate(definition["transitions"]) if t["name"] == "reopen")
    definition["transitions"][reopen].update(roles=["customer"], guards=["actor_is_assignee"])
    assert "assignee" in errors_of(definition)[f"transitions.{reopen}.roles"][0]
