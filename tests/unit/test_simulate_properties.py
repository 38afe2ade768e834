"""Property tests of the simulator over generated ticket histories: whatever happened to a
ticket (refused and unknown transitions, migrations, rule and escalation causes, ties in time,
priority and assignment changes), simulating the published definition it ran on reports no
difference, and neither does a draft that only adds a state nothing used or renames labels.

Derandomized with a modest number of examples, so CI runs the same cases every time."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import strategies as st

from workflows import default_definition, dump_definition, load_definition
from workflows.simulate import simulate

START = datetime(2026, 3, 2, 7, 30, tzinfo=UTC)  # a Monday, before the calendar opens
ROLES = ("customer", "agent", "admin")
PRIORITIES = ("low", "normal", "high", "urgent")
STATES = tuple(s["name"] for s in default_definition()["states"])
# The default workflow's transitions, and one no version has: refused alike on both sides.
TRANSITIONS = (*(t["name"] for t in default_definition()["transitions"]), "teleport")
CAUSES = (
    None,
    "start_on_first_agent_reply",
    "auto_close_solved",
    "sla.resolution.breach",
    "assignment:round_robin",
)
PROPERTY_SETTINGS = settings(
    derandomize=True,
    database=None,  # nothing remembered between runs: CI and laptops run the same cases
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def _published(variant: str) -> dict[str, Any]:
    raw = copy.deepcopy(default_definition())
    solve = next(t for t in raw["transitions"] if t["name"] == "solve")
    if variant == "guarded":  # guards read the replayed assignee and the actor
        solve["guards"] = ["has_assignee", "actor_is_assignee"]
    elif variant == "no_sla":
        raw["sla"] = None
    return load_definition(raw)


def _with_unrelated_state(raw: dict[str, Any]) -> dict[str, Any]:
    raw = copy.deepcopy(raw)
    raw["states"].append({"name": "parked", "category": "pending", "label": "Parked"})
    raw["transitions"].append(
        {"name": "park", "from": ["open"], "to": "parked", "roles": ["agent"]}
    )
    raw["transitions"].append(
        {"name": "unpark", "from": ["parked"], "to": "open", "roles": ["agent"]}
    )
    return raw


def _relabelled(raw: dict[str, Any]) -> dict[str, Any]:
    raw = copy.deepcopy(raw)
    for state in raw["states"]:
        state["label"] = f"Now called {state['name']}"
    return raw


def _raw(variant: str) -> dict[str, Any]:
    return dump_definition(_published(variant))


def _cause(rule: str | None) -> dict[str, Any]:
    return {"cause": {"rule": rule, "depth": 1}} if rule else {}


messages = st.builds(
    lambda role, internal, actor: (
        "message.created",
        {"actor_role": role, "author_role": role, "internal": internal, "actor_id": actor},
    ),
    st.sampled_from(ROLES),
    st.booleans(),
    st.sampled_from((1, 2, 3)),
)
SOURCES = {t["name"]: t["from"] for t in default_definition()["transitions"]}
DESTS = {t["name"]: t["to"] for t in default_definition()["transitions"]}


@st.composite
def transitions(draw: Any, state: str) -> tuple[str, dict[str, Any]]:
    """Mostly a transition the workflow offers from ``state``; sometimes any name at all."""
    usual = [name for name, sources in SOURCES.items() if state in sources]
    name = draw(
        st.sampled_from(usual)
        if usual and draw(st.integers(0, 4))
        else st.sampled_from(TRANSITIONS)
    )
    role = draw(st.sampled_from((*ROLES, None)))
    payload = {
        "transition": name,
        "actor_role": role,
        "actor_id": draw(st.sampled_from((None, 1, 2))),
    }
    return "ticket.transitioned", {**payload, **_cause(draw(st.sampled_from(CAUSES)))}


updates = st.builds(
    lambda before, after, cause: (
        "ticket.updated",
        {"changes": {"priority": [before, after]}, "actor_role": "agent", **_cause(cause)},
    ),
    st.sampled_from(PRIORITIES),
    st.sampled_from(PRIORITIES),
    st.sampled_from(CAUSES),
)
assignments = st.builds(
    lambda assignee, cause: (
        "ticket.assigned",
        {"assignee_id": assignee, "actor_role": None, **_cause(cause)},
    ),
    st.sampled_from((None, 1, 2)),
    st.sampled_from(CAUSES),
)
others = st.sampled_from(
    (
        ("feedback.created", {"actor_role": "customer"}),
        ("sla.breached", {"metric": "first_response", **_cause("sla.first_response.breach")}),
        ("sla.warning", {"metric": "resolution", **_cause("sla.resolution.warning")}),
    )
)
migrations = st.builds(
    lambda state: ("workflow.migrated", {"to_state": state, "from_version": 1}),
    st.sampled_from(STATES),
)
gaps = st.integers(min_value=0, max_value=3 * 24 * 60)  # minutes after the previous event


@st.composite
def histories(draw: Any) -> tuple[dict[str, Any], str, datetime]:
    variant = draw(st.sampled_from(("default", "guarded", "no_sla")))
    created = START + timedelta(minutes=draw(st.integers(0, 7 * 24 * 60)))
    priority = draw(st.sampled_from(PRIORITIES))
    events = [
        {
            "kind": "ticket.created",
            "at": created,
            "payload": {"actor_role": "customer", "to_state": "new", "priority": priority},
        }
    ]
    moment, state = created, "new"
    for _ in range(draw(st.integers(0, 25))):
        moment += timedelta(minutes=draw(gaps))
        kind, payload = draw(
            st.one_of(
                transitions(state),
                messages,
                transitions(state),
                updates,
                assignments,
                others,
                migrations,
            )
        )
        # What the recorded trail says, as the published engine had it (the replay checks).
        if kind == "ticket.transitioned" and state in SOURCES.get(payload["transition"], ()):
            state = DESTS[payload["transition"]]
        elif kind == "workflow.migrated":
            state = payload["to_state"]
        events.append({"kind": kind, "at": moment, "payload": {**payload, "from_state": None}})
    now = moment + timedelta(minutes=draw(st.integers(0, 10 * 24 * 60)))
    history = {
        "ticket_id": 1,
        "created_at": created,
        "priority": priority,
        "requester_id": 5,
        "channel": "web",
        "tags": [],
        "definition": _published(variant),
        "version": 1,
        "events": events,
    }
    return history, variant, now


def _only_migration_caveats(caveats: list[str]) -> bool:
    return all(c.startswith("Moved between workflow versions") for c in caveats)


@PROPERTY_SETTINGS
@given(histories())
def test_simulating_the_published_definition_reports_no_difference(case):
    history, _, now = case

    [ticket] = simulate(history["definition"], [history], now).tickets

    assert not ticket.differs, ticket
    assert _only_migration_caveats(ticket.caveats), ticket.caveats


@PROPERTY_SETTINGS
@given(histories())
def test_a_draft_adding_an_unrelated_state_reports_no_difference(case):
    history, variant, now = case
    draft = load_definition(_with_unrelated_state(_raw(variant)))

    [ticket] = simulate(draft, [history], now).tickets

    assert not ticket.differs, ticket
    assert _only_migration_caveats(ticket.caveats), ticket.caveats


@PROPERTY_SETTINGS
@given(histories())
def test_a_draft_renaming_labels_reports_no_difference(case):
    history, variant, now = case
    draft = load_definition(_relabelled(_raw(variant)))

    [ticket] = simulate(draft, [history], now).tickets

    assert not ticket.differs, ticket


def test_the_generated_histories_reach_what_a_real_change_affects():
    """The properties above mean something only if the histories go where drafts make a
    difference: a draft that no longer solves from 'open' must differ for some of them."""

    def solve_not_from_open(variant: str) -> dict[str, Any]:
        raw = _raw(variant)
        next(t for t in raw["transitions"] if t["name"] == "solve")["from"].remove("open")
        return load_definition(raw)

    def differs(case: tuple[dict[str, Any], str, datetime]) -> bool:
        history, variant, now = case
        [ticket] = simulate(solve_not_from_open(variant), [history], now).tickets
        return bool(ticket.transitions and ticket.states)

    # The first such history will do: shrinking it to the smallest would take minutes.
    first = settings(PROPERTY_SETTINGS, max_examples=200, phases=[Phase.generate])
    history, _, _ = find(histories(), differs, settings=first)

    assert any(e["payload"].get("transition") == "solve" for e in history["events"])
