"""Simulating a draft workflow against what happened to recent tickets, differentially.

Pure functions over plain data, no database: ``autocrm.engine.simulation`` loads the
histories. Each ticket's recorded events are replayed TWICE with the same replay model: once
against the published definition the ticket ran on, once against the draft. A difference is
reported only where those two replays differ: the states the ticket reaches, the transitions
that are refused, the rules that fire, the SLA outcomes and due times.

Why differential: the replay model is an approximation (it does not know pauses, the team's own
calendar, how late the beat sweep ran, which worker lagged, ...). Compared with the recorded
reality, every approximation shows up as a "difference" that is not there, even for a draft
identical to the published version. Compared with a replay of the published version, the
approximations are the same on both sides and cancel: simulating the published definition
reports nothing, nor does a draft that only adds a state nothing uses or renames a label.

A history is a dict::

    {"ticket_id": 7, "created_at": <aware datetime>, "priority": "normal",   # at creation
     "requester_id": 3, "channel": "web", "tags": [...],                     # at creation
     "definition": {...},   # the loaded published definition the ticket runs on
     "version": 2,          # optional: its number, for the report's caveats
     "events": [{"kind": "ticket.transitioned", "at": <datetime>,
                 "payload": {"actor_role", "actor_id", "author_role", "internal",
                             "transition", "from_state", "to_state", "changes", "cause",
                             ...}}, ...]}

The replay model, applied alike to both definitions:

- ``ticket.created`` puts the ticket in the definition's initial state; a recorded transition
  is fired by name from the state the replay is in, checked as the engine checks it (source
  state, the actor's role unless a rule or escalation caused it, guards against the replayed
  assignee and team); refused, the ticket stays where it was and no ``ticket.transitioned``
  event happens. Other events change the replayed ticket as recorded.
- Event rules are evaluated at each event that happened in the replay, against the ticket as
  it was right after it; time rules fire at the first moment at or after ``anchor + delay``
  (up to ``now``) at which the anchor is unchanged and the conditions hold.
- SLA: first response runs from creation to the first public staff reply, resolution from
  creation to when the replay last reached a solved (or closed) state; the target is that of
  the priority in force when the clock ended, on the definition's calendar.

What it cannot model is said per ticket, in ``caveats``, rather than guessed: the actions of
rules that would fire only under the draft are not applied (later events stay as recorded),
changes made by rules or escalations the draft would not run stay in the replay, people would
have acted differently after a refused transition, automatic assignment is replayed as
recorded, SLA pauses and next-reply clocks are not simulated, and a ticket moved between
versions is replayed against the version it runs on now.
"""

from __future__ import annotations

import bisect
import copy
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

from workflows import rules
from workflows.calendar import BusinessCalendar, add_business_time, business_seconds_between
from workflows.definition import delay_seconds
from workflows.guards import GUARDS
from workflows.vocabulary import CUSTOM_FIELD_PREFIX, EVENTS

SLA_METRICS = ("first_response", "resolution")
# Deadlines further out than this are not computed (each business day costs a little work);
# the outcome is still exact, since it compares elapsed business time with the target.
MAX_DUE_SECONDS = 90 * 86400
STAFF_ROLES = ("agent", "admin")
DONE = ("solved", "closed")
STATE_EVENTS = ("ticket.created", "ticket.transitioned", "workflow.migrated")
# Actions that change what later rules, guards and clocks see: not applied in the replay.
CHANGING_ACTIONS = (
    "transition",
    "set_priority",
    "raise_priority",
    "assign_team",
    "assign_agent",
    "assign_team_lead",
    "add_tag",
    "set_field",
)
ALLOWED, REFUSED = "allowed", "refused"


@dataclass(frozen=True)
class RuleDifference:
    rule: str
    at: datetime
    trigger: str  # the event kind that (would have) caused it, or "time"


@dataclass(frozen=True)
class SlaOutcome:
    """One SLA metric, replayed under the published version and under the draft."""

    published: str  # met | breached | open | none (no clock)
    draft: str
    published_due_at: datetime | None = None
    draft_due_at: datetime | None = None

    @property
    def actual(self) -> str:
        """The published replay's outcome, under the name reports used before (API)."""
        return self.published

    @property
    def differs(self) -> bool:
        return (self.published, self.published_due_at) != (self.draft, self.draft_due_at)


@dataclass(frozen=True)
class StateDifference:
    """After a state-changing event the two replays are in different states."""

    at: datetime
    event: str  # the transition's name, or the event kind (ticket.created, workflow.migrated)
    published: str | None
    draft: str | None


@dataclass(frozen=True)
class TransitionDifference:
    """A recorded transition one replay allows and the other refuses."""

    transition: str
    at: datetime
    published: str  # allowed | refused
    draft: str
    reason: str  # why it is refused, in words


@dataclass
class TicketReport:
    ticket_id: int
    would_fire_not_fired: list[RuleDifference] = field(default_factory=list)
    fired_would_not: list[RuleDifference] = field(default_factory=list)
    sla: dict[str, SlaOutcome] = field(default_factory=dict)
    transitions: list[TransitionDifference] = field(default_factory=list)
    states: list[StateDifference] = field(default_factory=list)
    caveats: list[str] = field(default_factory=list)

    @property
    def differs(self) -> bool:
        return bool(
            self.would_fire_not_fired
            or self.fired_would_not
            or self.transitions
            or self.states
            or any(o.differs for o in self.sla.values())
        )


@dataclass
class SimulationReport:
    tickets: list[TicketReport]

    @property
    def simulated(self) -> int:
        return len(self.tickets)

    @property
    def with_differences(self) -> int:
        return sum(report.differs for report in self.tickets)

    @property
    def with_caveats(self) -> int:
        return sum(bool(report.caveats) for report in self.tickets)


def simulate(
    definition: dict[str, Any], histories: Iterable[dict[str, Any]], now: datetime
) -> SimulationReport:
    """Run a loaded (validated) draft definition against ticket histories."""
    return SimulationReport([simulate_ticket(definition, h, now) for h in histories])


def simulate_ticket(
    definition: dict[str, Any], history: dict[str, Any], now: datetime
) -> TicketReport:
    published = _Replay(history["definition"], history, now)
    draft = _Replay(definition, history, now)
    report = TicketReport(ticket_id=history["ticket_id"])
    _compare_steps(report, published, draft)
    _compare_event_rules(report, published, draft)
    _compare_time_rules(report, published, draft)
    report.sla = {
        metric: SlaOutcome(p.outcome, d.outcome, p.due_at, d.due_at)
        for metric in SLA_METRICS
        for p, d in [(published.clocks[metric], draft.clocks[metric])]
    }
    report.caveats = _caveats(report, history, published, draft)
    return report


# -- replaying a ticket -------------------------------------------------------------------------


@dataclass
class _Ticket:
    """The ticket as it was at one moment, as far as rules and guards can see."""

    status: str | None
    category: str | None
    priority: str
    team_id: int | None
    assignee_id: int | None
    requester_id: int | None
    tags: list[str]
    channel: str | None
    has_feedback: bool
    created_at: datetime
    updated_at: datetime
    status_changed_at: datetime
    solved_at: datetime | None = None
    custom_fields: dict[str, Any] = field(default_factory=dict)

    def facts(self) -> dict[str, Any]:
        return rules.ticket_facts(vars(self))

    def anchor(self, since: str) -> datetime | None:
        return getattr(self, since)


@dataclass
class _Step:
    """What one recorded event did in a replay."""

    event: dict[str, Any]
    ticket: _Ticket  # right after it: what handlers see
    payload: dict[str, Any]  # the event as this replay has it (a transition's own states)
    happened: bool = True  # False: a transition this definition refuses
    refusal: str | None = None


@dataclass(frozen=True)
class _Clock:
    outcome: str
    due_at: datetime | None


class _Replay:
    """A ticket's recorded events replayed against one definition."""

    def __init__(self, definition: dict[str, Any], history: dict[str, Any], now: datetime):
        self.definition = definition
        self.now = now
        self.categories = {s["name"]: s["category"] for s in definition["states"]}
        self.transitions = {t["name"]: t for t in definition["transitions"]}
        created = history["created_at"]
        self.ticket = _Ticket(
            status=None,
            category=None,
            priority=history.get("priority", "normal"),
            team_id=history.get("team_id"),
            assignee_id=history.get("assignee_id"),
            requester_id=history.get("requester_id"),
            tags=list(history.get("tags", [])),
            channel=history.get("channel"),
            has_feedback=False,
            created_at=created,
            updated_at=created,
            status_changed_at=created,
        )
        events = sorted(history["events"], key=lambda e: e["at"])  # stable: ties keep order
        self.steps = [self._step(event) for event in events]
        self.times = [step.event["at"] for step in self.steps]
        self.matches = [self._event_matches(step) for step in self.steps]
        self.time_firings = {
            (rule["name"], moment)
            for rule in rules.time_rules(definition)
            for moment in self._time_firings(rule)
        }
        self.clocks = self._sla_clocks(history)

    def at(self, moment: datetime) -> _Ticket | None:
        index = bisect.bisect_right(self.times, moment)
        return self.steps[index - 1].ticket if index else None

    # -- events

    def _step(self, event: dict[str, Any]) -> _Step:
        payload = dict(event.get("payload") or {})
        kind = event["kind"]
        refusal = None
        if kind == "ticket.created":
            self._created(payload, event["at"])
        elif kind == "ticket.transitioned":
            refusal = self._transition(payload, event["at"])
        elif kind == "workflow.migrated":
            refusal = self._migrate(payload, event["at"])
        else:
            self._change(kind, payload)
        if refusal is None and kind not in ("sla.warning", "sla.breached", "automation.failed"):
            self.ticket.updated_at = event["at"]
        return _Step(event, copy.deepcopy(self.ticket), payload, refusal is None, refusal)

    def _created(self, payload: dict[str, Any], at: datetime) -> None:
        ticket = self.ticket
        payload["to_state"] = self.definition["initial"]
        self._move(self.definition["initial"], at)
        for name in ("team_id", "assignee_id", "priority"):
            if payload.get(name) is not None:
                setattr(ticket, name, payload[name])

    def _transition(self, payload: dict[str, Any], at: datetime) -> str | None:
        name = payload.get("transition")
        # Rules and escalations act as the system: no role list restricts them.
        role = None if payload.get("cause") else payload.get("actor_role")
        refusal = self._refusal(name, role, payload.get("actor_id"))
        if refusal is None:
            payload["from_state"] = self.ticket.status
            payload["to_state"] = self.transitions[name]["dest"]
            self._move(payload["to_state"], at)
        return refusal

    def _refusal(self, name: str | None, role: str | None, actor_id: int | None) -> str | None:
        """Why the engine would refuse this transition now (None: it fires)."""
        spec = self.transitions.get(name) if name else None
        state = self.ticket.status
        if spec is None:
            return f"there is no transition {name!r}" if name else "the trail names no transition"
        if state not in spec["source"]:
            return f"{name!r} does not leave state {state!r}"
        if role is not None and role not in spec["roles"]:
            return f"{name!r} is not for role {role!r}"
        actor = SimpleNamespace(id=actor_id) if actor_id is not None else None
        failed = [g for g in spec["guards"] if not GUARDS[g](self.ticket, actor)]
        if failed:
            return f"guard {', '.join(failed)} not met"
        return None

    def _migrate(self, payload: dict[str, Any], at: datetime) -> str | None:
        state = payload.get("to_state")
        if not isinstance(state, str) or state not in self.categories:
            return f"there is no state {state!r}"
        payload["from_state"] = self.ticket.status
        self._move(state, at)
        return None

    def _change(self, kind: str, payload: dict[str, Any]) -> None:
        ticket = self.ticket
        if kind == "ticket.updated":
            for name, change in (payload.get("changes") or {}).items():
                if name in ("priority", "team_id", "assignee_id", "tags"):
                    setattr(ticket, name, change[1])
                elif name.startswith(CUSTOM_FIELD_PREFIX):
                    key = name.removeprefix(CUSTOM_FIELD_PREFIX)
                    values = {k: v for k, v in ticket.custom_fields.items() if k != key}
                    if change[1] is not None:
                        values[key] = change[1]
                    ticket.custom_fields = values
        elif kind == "ticket.assigned":
            ticket.assignee_id = payload.get("assignee_id")
        elif kind == "feedback.created":
            ticket.has_feedback = True

    def _move(self, state: str, at: datetime) -> None:
        """A status change, with the timestamps ``autocrm.tickets.state.enter_state`` keeps
        (they change only when the category does)."""
        ticket = self.ticket
        was = ticket.category
        ticket.status = state
        ticket.category = self.categories[state]
        ticket.status_changed_at = at
        if ticket.category == was:
            return
        if ticket.category == "solved":
            ticket.solved_at = at
        elif ticket.category != "closed" and was in DONE:
            ticket.solved_at = None

    # -- rules

    def _event_matches(self, step: _Step) -> list[str]:
        kind = step.event["kind"]
        if not step.happened or kind not in EVENTS:
            return []
        facts = {**step.ticket.facts(), **rules.event_facts(step.payload)}
        return [m.rule for m in rules.event_matches(self.definition, kind, facts)]

    def _time_firings(self, rule: dict[str, Any]) -> list[datetime]:
        """When the beat sweep would have fired ``rule``: once per anchor value at most."""
        since = rule["after"]["since"]
        try:
            delay = timedelta(seconds=delay_seconds(rule["after"]))
        except OverflowError:
            return []
        snapshots = [step.ticket for step in self.steps]
        anchors = dict.fromkeys(a for t in snapshots if (a := t.anchor(since)) is not None)
        firings = []
        for anchor in anchors:
            try:
                due = anchor + delay
            except OverflowError:
                continue
            for moment in [due, *(t for t in self.times if due < t <= self.now)]:
                ticket = self.at(moment)
                if moment > self.now or ticket is None or ticket.anchor(since) != anchor:
                    break
                if rules.evaluate(rule, ticket.facts()) is not None:
                    firings.append(moment)
                    break
        return firings

    # -- SLA

    def _sla_clocks(self, history: dict[str, Any]) -> dict[str, _Clock]:
        policy = self.definition.get("sla")
        calendar = BusinessCalendar.from_definition(policy["calendar"]) if policy else None
        created = history["created_at"]
        ends = {"first_response": self._first_staff_reply(), "resolution": self._resolved_at()}
        clocks = {}
        for metric in SLA_METRICS:
            end = ends[metric]
            ticket = self.at(end or self.now) or self.ticket
            minutes = ((policy or {}).get("targets", {}).get(ticket.priority) or {}).get(metric)
            if minutes is None or calendar is None:
                clocks[metric] = _Clock("none", None)
                continue
            target = minutes * 60
            used = business_seconds_between(created, end or self.now, calendar)
            outcome = "breached" if used > target else "met" if end is not None else "open"
            due = (
                add_business_time(created, target, calendar) if target <= MAX_DUE_SECONDS else None
            )
            clocks[metric] = _Clock(outcome, due)
        return clocks

    def _first_staff_reply(self) -> datetime | None:
        for step in self.steps:
            payload = step.payload
            if (
                step.event["kind"] == "message.created"
                and payload.get("author_role") in STAFF_ROLES
                and not payload.get("internal")
            ):
                return step.event["at"]
        return None

    def _resolved_at(self) -> datetime | None:
        ticket = self.ticket
        if ticket.category not in DONE:
            return None
        return ticket.solved_at or ticket.status_changed_at


# -- comparing the two replays ------------------------------------------------------------------


def _compare_steps(report: TicketReport, published: _Replay, draft: _Replay) -> None:
    for p, d in zip(published.steps, draft.steps, strict=True):
        kind, at = p.event["kind"], p.event["at"]
        name = p.payload.get("transition") or kind
        if p.happened != d.happened:
            report.transitions.append(
                TransitionDifference(
                    transition=name,
                    at=at,
                    published=ALLOWED if p.happened else REFUSED,
                    draft=ALLOWED if d.happened else REFUSED,
                    reason=(d.refusal or p.refusal or ""),
                )
            )
        if kind in STATE_EVENTS and p.ticket.status != d.ticket.status:
            report.states.append(StateDifference(at, name, p.ticket.status, d.ticket.status))


def _compare_event_rules(report: TicketReport, published: _Replay, draft: _Replay) -> None:
    for step, fired, would in zip(published.steps, published.matches, draft.matches, strict=True):
        kind, at = step.event["kind"], step.event["at"]
        report.would_fire_not_fired.extend(
            RuleDifference(rule, at, kind) for rule in dict.fromkeys(would) if rule not in fired
        )
        report.fired_would_not.extend(
            RuleDifference(rule, at, kind) for rule in dict.fromkeys(fired) if rule not in would
        )


def _compare_time_rules(report: TicketReport, published: _Replay, draft: _Replay) -> None:
    only_draft = sorted(draft.time_firings - published.time_firings, key=lambda f: (f[1], f[0]))
    only_published = sorted(published.time_firings - draft.time_firings, key=lambda f: (f[1], f[0]))
    report.would_fire_not_fired.extend(RuleDifference(r, at, "time") for r, at in only_draft)
    report.fired_would_not.extend(RuleDifference(r, at, "time") for r, at in only_published)


# -- what the simulation cannot tell ------------------------------------------------------------


def _when(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC"


def _caveats(
    report: TicketReport, history: dict[str, Any], published: _Replay, draft: _Replay
) -> list[str]:
    caveats = [
        *_rule_caveats(report, history, draft),
        *_transition_caveats(report, history),
        *_sla_caveats(report, history, published, draft),
        *_migration_caveats(history),
    ]
    return list(dict.fromkeys(caveats))


def _cause(event: dict[str, Any]) -> str:
    """The rule (or escalation, or assignment policy) that caused a recorded event, or ""."""
    return str(((event.get("payload") or {}).get("cause") or {}).get("rule") or "")


def _caused_by(history: dict[str, Any], rule: str) -> list[dict[str, Any]]:
    return sorted((e for e in history["events"] if _cause(e) == rule), key=lambda e: e["at"])


def _rule_caveats(report: TicketReport, history: dict[str, Any], draft: _Replay) -> list[str]:
    caveats = []
    actions = {r["name"]: r["actions"] for r in draft.definition["rules"]}
    for difference in report.would_fire_not_fired:
        changing = [a["action"] for a in actions.get(difference.rule, [])]
        changing = [a for a in changing if a in CHANGING_ACTIONS]
        if changing:
            caveats.append(
                f"Rule {difference.rule!r} would fire under the draft at "
                f"{_when(difference.at)}, but what it does ({', '.join(changing)}) is not "
                "simulated: the events after it are replayed as recorded."
            )
    for difference in report.fired_would_not:
        caused = _caused_by(history, difference.rule)
        if caused:
            caveats.append(
                f"Rule {difference.rule!r} would not fire under the draft as it did at "
                f"{_when(difference.at)}, yet the changes it made (first at "
                f"{_when(caused[0]['at'])}) are still replayed."
            )
    return caveats


def _transition_caveats(report: TicketReport, history: dict[str, Any]) -> list[str]:
    refused = [t for t in report.transitions if t.draft == REFUSED]
    caveats = []
    if refused:
        first = refused[0]
        caveats.append(
            f"The draft would refuse {first.transition!r} at {_when(first.at)} "
            f"({first.reason}); people would then have acted differently, but the rest of the "
            "history is replayed as recorded."
        )
    assigned = [e for e in history["events"] if _cause(e).startswith("assignment:")]
    guarded = any("guard" in t.reason for t in report.transitions)
    if assigned and (guarded or report.states or report.transitions):
        caveats.append(
            f"Automatic assignment (at {_when(assigned[0]['at'])}) is replayed as recorded; "
            "under the draft it might have picked someone else, or happened at another time."
        )
    elif guarded:
        caveats.append(
            "Guards are checked against the assignee and team as recorded; assignments the "
            "draft would have led to are not simulated."
        )
    return caveats


def _sla_caveats(
    report: TicketReport, history: dict[str, Any], published: _Replay, draft: _Replay
) -> list[str]:
    caveats = []
    old, new = published.definition.get("sla") or {}, draft.definition.get("sla") or {}
    for metric, outcome in report.sla.items():
        if outcome.draft == "breached" and outcome.published != "breached" and new.get("on_breach"):
            caveats.append(
                f"Under the draft the {metric.replace('_', ' ')} SLA would be breached; its "
                "escalation is not simulated."
            )
        escalated = _caused_by(history, f"sla.{metric}.breach")
        if escalated and outcome.published == "breached" and outcome.draft != "breached":
            caveats.append(
                f"The {metric.replace('_', ' ')} SLA escalation at {_when(escalated[0]['at'])} "
                "is still replayed, though the draft would not breach."
            )
    states = {s.ticket.status for r in (published, draft) for s in r.steps}
    if set(old.get("pause_in") or ()) != set(new.get("pause_in") or ()) and states & {
        *(old.get("pause_in") or ()),
        *(new.get("pause_in") or ()),
    }:
        caveats.append(
            "SLA pauses are not simulated: the draft pauses clocks in other states, and time "
            "spent in them counts here either way."
        )
    priority = published.ticket.priority
    targets = [((p.get("targets") or {}).get(priority) or {}) for p in (old, new)]
    if targets[0].get("next_reply") != targets[1].get("next_reply"):
        caveats.append("Next-reply SLA targets are not simulated; the draft changes them.")
    return caveats


def _migration_caveats(history: dict[str, Any]) -> list[str]:
    version = history.get("version")
    on = f"version {version}" if version is not None else "the version it runs on now"
    return [
        f"Moved between workflow versions at {_when(e['at'])}; the whole history is replayed "
        f"against {on}."
        for e in history["events"]
        if e["kind"] == "workflow.migrated"
    ]
