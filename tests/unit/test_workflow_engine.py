"""The compiled state machine: firing, refusing with the allowed list, roles and guards."""

import copy
from dataclasses import dataclass

import pytest

from workflows import (
    CompiledWorkflow,
    TransitionNotAllowed,
    UnknownTransition,
    compiled,
    default_definition,
)


@dataclass
class FakeTicket:
    """Only the attributes the engine and guards read: the engine depends on no model."""

    status: str = "new"
    assignee_id: int | None = None
    team_id: int | None = None


@dataclass
class Actor:
    id: int


@pytest.fixture(scope="module")
def engine() -> CompiledWorkflow:
    return CompiledWorkflow(default_definition())


def test_fire_moves_the_ticket_and_reports_categories(engine):
    ticket = FakeTicket()
    outcome = engine.fire(ticket, "start", "agent")
    assert ticket.status == "open"
    assert (outcome.from_state, outcome.to_state) == ("new", "open")
    assert (outcome.from_category, outcome.to_category) == ("new", "open")
    outcome = engine.fire(ticket, "wait_on_customer", "agent")
    assert outcome.to_category == "pending"


def test_invalid_transition_lists_what_is_allowed(engine):
    ticket = FakeTicket(status="open")
    with pytest.raises(TransitionNotAllowed) as caught:
        engine.fire(ticket, "close", "agent")
    assert caught.value.allowed == ["wait_on_customer", "hold", "solve"]
    assert ticket.status == "open"


def test_unknown_transition(engine):
    with pytest.raises(UnknownTransition) as caught:
        engine.fire(FakeTicket(), "teleport", "admin")
    assert "start" in caught.value.allowed


@pytest.mark.parametrize(
    ("status", "role", "expected"),
    [
        ("new", "customer", ["solve"]),
        ("new", "agent", ["start", "solve"]),
        ("open", "customer", ["solve"]),
        ("solved", "customer", ["reopen"]),
        ("solved", "agent", ["close", "reopen"]),
        ("closed", "customer", ["reopen"]),
        ("pending", "admin", ["resume", "solve"]),
        ("on_hold", "agent", ["resume", "solve"]),
    ],
)
def test_allowed_depends_on_state_and_role(engine, status, role, expected):
    assert [t.name for t in engine.allowed(FakeTicket(status=status), role)] == expected


def test_role_not_allowed_is_refused(engine):
    ticket = FakeTicket()
    with pytest.raises(TransitionNotAllowed) as caught:
        engine.fire(ticket, "start", "customer")
    assert "role" in caught.value.reason
    assert ticket.status == "new"


def test_guards_block_until_met():
    definition = copy.deepcopy(default_definition())
    start = next(t for t in definition["transitions"] if t["name"] == "start")
    start["guards"] = ["actor_is_assignee"]
    engine = CompiledWorkflow(definition)
    ticket = FakeTicket(assignee_id=7)
    assert "start" not in [t.name for t in engine.allowed(ticket, "agent", Actor(8))]
    with pytest.raises(TransitionNotAllowed) as caught:
        engine.fire(ticket, "start", "agent", Actor(8))
    assert "actor_is_assignee" in caught.value.reason
    engine.fire(ticket, "start", "agent", Actor(7))
    assert ticket.status == "open"


def test_compiled_machines_are_built_once_per_version():
    calls = []

    def load():
        calls.append(1)
        return default_definition()

    first = compiled(987_654, load)
    assert compiled(987_654, load) is first
    assert len(calls) == 1
