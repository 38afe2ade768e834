"""The compiled form of a workflow version: one ``transitions.Machine``, built once and reused.

``CompiledWorkflow.fire`` moves a ticket by a named transition. The machine is shared by every
request, so it holds no model: each call wraps the ticket in a short-lived ``_Subject`` and fires
the event on it directly. The caller (the domain services) owns the database transaction and
turns the returned ``TransitionOutcome`` into an audit event and outbox rows.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from transitions import EventData, Machine

from workflows.definition import load_definition
from workflows.guards import GUARDS


class WorkflowError(Exception):
    """Base for what a caller did wrong when firing a transition."""


class UnknownTransition(WorkflowError):
    def __init__(self, name: str, allowed: list[str]) -> None:
        super().__init__(f"Unknown transition {name!r}.")
        self.name, self.allowed = name, allowed


class TransitionNotAllowed(WorkflowError):
    """Known, but not from this state, not for this role, or a guard is not met."""

    def __init__(self, name: str, state: str, reason: str, allowed: list[str]) -> None:
        super().__init__(f"Transition {name!r} is not allowed from state {state!r}: {reason}.")
        self.name, self.state, self.reason, self.allowed = name, state, reason, allowed


@dataclass(frozen=True)
class TransitionSpec:
    name: str
    sources: tuple[str, ...]
    dest: str
    roles: frozenset[str]
    guards: tuple[str, ...]
    label: str


@dataclass(frozen=True)
class TransitionOutcome:
    name: str
    from_state: str
    to_state: str
    from_category: str
    to_category: str


class _Subject:
    """What the shared Machine moves: the ticket's state plus what guards need to see."""

    def __init__(self, ticket: Any, actor: Any) -> None:
        self.status: str = ticket.status
        self.ticket = ticket
        self.actor = actor


def _guard(name: str) -> Any:
    check = GUARDS[name]

    def condition(event: EventData) -> bool:
        subject = cast(_Subject, event.model)  # the Machine only ever moves a _Subject
        return check(subject.ticket, subject.actor)

    condition.__name__ = f"guard_{name}"
    return condition


class CompiledWorkflow:
    def __init__(self, definition: dict[str, Any]) -> None:
        self.definition = load_definition(definition)
        self.initial: str = self.definition["initial"]
        self.categories: dict[str, str] = {
            s["name"]: s["category"] for s in self.definition["states"]
        }
        # What people read: the state's label, or its name made readable.
        self.state_labels: dict[str, str] = {
            s["name"]: s["label"] or s["name"].replace("_", " ").capitalize()
            for s in self.definition["states"]
        }
        self.transitions: dict[str, TransitionSpec] = {
            t["name"]: TransitionSpec(
                name=t["name"],
                sources=tuple(t["source"]),
                dest=t["dest"],
                roles=frozenset(t["roles"]),
                guards=tuple(t["guards"]),
                label=t["label"] or t["name"].replace("_", " ").capitalize(),
            )
            for t in self.definition["transitions"]
        }
        self._machine = Machine(
            model=None,
            states=list(self.categories),
            transitions=[
                {
                    "trigger": spec.name,
                    "source": list(spec.sources),
                    "dest": spec.dest,
                    "conditions": [_guard(g) for g in spec.guards],
                }
                for spec in self.transitions.values()
            ],
            initial=self.initial,
            auto_transitions=False,
            send_event=True,
            model_attribute="status",
        )

    def allowed(self, ticket: Any, role: str | None, actor: Any = None) -> list[TransitionSpec]:
        """Transitions this role may fire on the ticket now (source, role and guards all hold).
        ``role`` None is the automation (rules), which no role list restricts."""
        return [
            spec
            for spec in self.transitions.values()
            if ticket.status in spec.sources
            and (role is None or role in spec.roles)
            and all(GUARDS[g](ticket, actor) for g in spec.guards)
        ]

    def fire(
        self, ticket: Any, name: str, role: str | None, actor: Any = None
    ) -> TransitionOutcome:
        """Check and run a transition; sets ``ticket.status`` and returns what happened.
        ``role`` None: fired by a rule, so only source state and guards are checked."""
        allowed = [spec.name for spec in self.allowed(ticket, role, actor)]
        spec = self.transitions.get(name)
        if spec is None:
            raise UnknownTransition(name, allowed)
        state = ticket.status
        if state not in spec.sources:
            raise TransitionNotAllowed(name, state, "not from this state", allowed)
        if role is not None and role not in spec.roles:
            raise TransitionNotAllowed(name, state, f"not for role {role!r}", allowed)
        subject = _Subject(ticket, actor)
        if not self._machine.events[name].trigger(subject):
            failed = [g for g in spec.guards if not GUARDS[g](ticket, actor)]
            raise TransitionNotAllowed(name, state, f"guard {', '.join(failed)} not met", allowed)
        ticket.status = subject.status
        return TransitionOutcome(
            name=name,
            from_state=state,
            to_state=subject.status,
            from_category=self.categories[state],
            to_category=self.categories[subject.status],
        )


_cache: dict[int, CompiledWorkflow] = {}
_cache_lock = threading.Lock()


def forget_compiled() -> None:
    """Drop every compiled machine. Only for test harnesses that roll back and so reuse
    version ids; in production a version id always means the same definition."""
    with _cache_lock:
        _cache.clear()


def compiled(version_id: int, definition: Callable[[], dict[str, Any]]) -> CompiledWorkflow:
    """The Machine for a stored version, built on first use from ``definition()``. Versions are
    immutable, so the cache never needs invalidating."""
    found = _cache.get(version_id)
    if found is None:
        with _cache_lock:
            found = _cache.get(version_id) or _cache.setdefault(
                version_id, CompiledWorkflow(definition())
            )
    return found
