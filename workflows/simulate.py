"""Simulating a draft workflow against what really happened to recent tickets.

Pure functions over plain data, no database: ``autocrm.services.workflow_admin`` loads the
histories. For each ticket the recorded events are replayed in order, tracking the ticket as it
was (status, priority, team, assignee, tags, feedback, the timestamps time-based rules count
from), and the DRAFT's rules are evaluated against that replayed ticket. The result says, per
ticket, which rules the draft would fire that did not fire, which fired that the draft would
not, and how its SLA targets would have judged the ticket.

A history is a dict::

    {"ticket_id": 7, "created_at": <aware datetime>, "priority": "normal",   # at creation
     "requester_id": 3, "channel": "web", "tags": [...],                     # at creation
     "categories": {"open": "open", ...},   # optional: the pinned version's state categories
     "events": [{"kind": "ticket.transitioned", "at": <datetime>,
                 "payload": {"actor_role", "author_role", "internal", "transition",
                             "from_state", "to_state", "changes", "cause", ...}}, ...],
     "fired": [{"rule": "ask_for_feedback", "at": <datetime>},            # an event rule
               {"rule": "auto_close_solved", "at": ..., "anchor": ...}],  # a time rule
     "sla": {"first_response_at": ..., "solved_at": ..., "breaches": ["resolution"],
             "clocks": ["first_response", "resolution"]}}   # clocks: optional

What the simulation does NOT do (v1), so read its report with these in mind:

- It replays the recorded history as it is. The draft's own actions are not applied, so a rule
  the draft adds cannot change what later rules see, and events that only an old rule caused
  (say, an automatic transition) stay in the replay.
- Matching event-rule firings to events: the recorded events are cut into slots, each starting
  at an event a person caused (no ``cause`` in its payload) and holding the automated events
  that followed it. A recorded firing belongs to the slot in which it was recorded, and draft
  matches at any event of a slot belong to that slot; per slot the two sets of rule names are
  compared. A worker that lagged behind the next human event files its firing one slot late:
  such a firing is paired back with the nearest earlier slot where the draft expected that
  rule and nothing fired.
- Time-based rules fire at the first moment at or after ``anchor + delay`` (up to ``now``) at
  which the anchor is unchanged and the conditions hold, as the beat sweep would; draft and
  recorded firings pair up by rule and the closest anchor within ``ANCHOR_TOLERANCE``, if
  they fired within ``SWEEP_TOLERANCE`` of each other: a draft that changes a delay shows as
  one firing it would make (then) and one it would not (when it really happened).
- SLA: first response runs from creation to the first public staff reply, resolution from
  creation to solved (or closed); pauses (``pause_in``), restarts on reopen and next-reply
  clocks are ignored, and the target is that of the priority in force when the clock ended.
"""

from __future__ import annotations

import bisect
import copy
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from workflows import rules
from workflows.calendar import BusinessCalendar, add_business_time, business_seconds_between
from workflows.definition import delay_seconds
from workflows.vocabulary import EVENTS

SLA_METRICS = ("first_response", "resolution")
ANCHOR_TOLERANCE = timedelta(seconds=60)
# How late the beat sweep may fire a due time rule and still count as firing "then".
SWEEP_TOLERANCE = timedelta(minutes=10)
# Deadlines further out than this are not computed (each business day costs a little work);
# the outcome is still exact, since it compares elapsed business time with the target.
MAX_DUE_SECONDS = 90 * 86400
STAFF_ROLES = ("agent", "admin")
DONE = ("solved", "closed")


@dataclass(frozen=True)
class RuleDifference:
    rule: str
    at: datetime
    trigger: str  # the event kind that (would have) caused it, or "time"


@dataclass(frozen=True)
class SlaOutcome:
    actual: str  # met | breached | open | none (no clock)
    draft: str
    draft_due_at: datetime | None


@dataclass
class TicketReport:
    ticket_id: int
    would_fire_not_fired: list[RuleDifference] = field(default_factory=list)
    fired_would_not: list[RuleDifference] = field(default_factory=list)
    sla: dict[str, SlaOutcome] = field(default_factory=dict)

    @property
    def differs(self) -> bool:
        return bool(
            self.would_fire_not_fired
            or self.fired_would_not
            or any(o.actual != o.draft for o in self.sla.values())
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


def simulate(
    definition: dict[str, Any], histories: Iterable[dict[str, Any]], now: datetime
) -> SimulationReport:
    """Run a loaded (validated) draft definition against ticket histories."""
    return SimulationReport([simulate_ticket(definition, h, now) for h in histories])


# -- replaying a ticket -------------------------------------------------------------------------


@dataclass
class _Ticket:
    """The ticket as it was at one moment, as far as rules can see."""

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

    def facts(self) -> dict[str, Any]:
        return rules.ticket_facts(vars(self))

    def anchor(self, since: str) -> datetime | None:
        return getattr(self, since)


class _Replay:
    """The ticket's recorded events in order, with the ticket as it was after each one."""

    def __init__(self, definition: dict[str, Any], history: dict[str, Any]) -> None:
        draft_categories = {s["name"]: s["category"] for s in definition["states"]}
        self.categories = {**history.get("categories", {}), **draft_categories}
        created = history["created_at"]
        self.events = sorted(history["events"], key=lambda e: e["at"])  # stable: ties keep order
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
        self.times: list[datetime] = []
        self.snapshots: list[_Ticket] = []

    def run(self) -> Iterable[tuple[dict[str, Any], _Ticket]]:
        """Yield each event with the ticket as it was right after it (what handlers see)."""
        for event in self.events:
            self._apply(event)
            snapshot = copy.deepcopy(self.ticket)
            self.times.append(event["at"])
            self.snapshots.append(snapshot)
            yield event, snapshot

    def at(self, moment: datetime) -> _Ticket | None:
        index = bisect.bisect_right(self.times, moment)
        return self.snapshots[index - 1] if index else None

    def _apply(self, event: dict[str, Any]) -> None:
        ticket, kind, at = self.ticket, event["kind"], event["at"]
        payload = event.get("payload") or {}
        if kind == "ticket.created":
            self._move(payload.get("to_state"), payload.get("to_category"), at)
            ticket.status_changed_at = at
            for name in ("team_id", "assignee_id", "priority"):
                if payload.get(name) is not None:
                    setattr(ticket, name, payload[name])
        elif kind in ("ticket.transitioned", "workflow.migrated"):
            self._move(payload.get("to_state"), payload.get("to_category"), at)
        elif kind == "ticket.updated":
            for name, change in (payload.get("changes") or {}).items():
                if name in ("priority", "team_id", "assignee_id", "tags"):
                    setattr(ticket, name, change[1])
        elif kind == "ticket.assigned":
            ticket.assignee_id = payload.get("assignee_id")
        elif kind == "feedback.created":
            ticket.has_feedback = True
        if kind not in ("sla.warning", "sla.breached", "automation.failed"):
            ticket.updated_at = at

    def _move(self, state: str | None, recorded_category: str | None, at: datetime) -> None:
        """A status change, with the timestamps ``autocrm.services.tickets`` keeps."""
        ticket = self.ticket
        if state is None:
            return
        was = ticket.category
        ticket.status = state
        ticket.category = self.categories.get(state, recorded_category)
        ticket.status_changed_at = at
        if ticket.category == "solved":
            ticket.solved_at = at
        elif ticket.category != "closed" and was in DONE:
            ticket.solved_at = None


def simulate_ticket(
    definition: dict[str, Any], history: dict[str, Any], now: datetime
) -> TicketReport:
    replay = _Replay(definition, history)
    expected: list[tuple[int, RuleDifference]] = []  # (slot, draft match)
    slot_starts: list[datetime] = []
    slot_triggers: list[str] = []
    for event, ticket in replay.run():
        payload = event.get("payload") or {}
        if not payload.get("cause") or not slot_starts:
            slot_starts.append(event["at"])
            slot_triggers.append(event["kind"])
        if event["kind"] not in EVENTS:
            continue
        facts = {**ticket.facts(), **rules.event_facts(payload)}
        for match in rules.event_matches(definition, event["kind"], facts):
            expected.append(
                (len(slot_starts) - 1, RuleDifference(match.rule, event["at"], event["kind"]))
            )
    report = TicketReport(ticket_id=history["ticket_id"])
    fired_events = [f for f in history.get("fired", []) if f.get("anchor") is None]
    fired_times = [f for f in history.get("fired", []) if f.get("anchor") is not None]
    _compare_event_rules(report, expected, fired_events, slot_starts, slot_triggers)
    _compare_time_rules(report, definition, replay, fired_times, now)
    report.sla = _sla_outcomes(definition, history, replay, now)
    return report


# -- event rules --------------------------------------------------------------------------------


def _compare_event_rules(
    report: TicketReport,
    expected: list[tuple[int, RuleDifference]],
    fired: list[dict[str, Any]],
    slot_starts: list[datetime],
    slot_triggers: list[str],
) -> None:
    if not slot_starts:
        return
    draft: dict[tuple[int, str], RuleDifference] = {}
    for slot, difference in expected:
        draft.setdefault((slot, difference.rule), difference)
    actual: dict[tuple[int, str], RuleDifference] = {}
    for firing in sorted(fired, key=lambda f: f["at"]):
        slot = max(bisect.bisect_right(slot_starts, firing["at"]) - 1, 0)
        difference = RuleDifference(firing["rule"], firing["at"], slot_triggers[slot])
        actual.setdefault((slot, firing["rule"]), difference)
    missing = {key: d for key, d in draft.items() if key not in actual}
    extra = {key: d for key, d in actual.items() if key not in draft}
    for slot, rule in sorted(extra):
        late_for = [s for (s, r) in missing if r == rule and s < slot]
        if late_for:  # a lagging worker: it belongs to the nearest earlier expectation
            del missing[(max(late_for), rule)]
            del extra[(slot, rule)]
    report.would_fire_not_fired.extend(missing[k] for k in sorted(missing))
    report.fired_would_not.extend(extra[k] for k in sorted(extra))


# -- time-based rules ---------------------------------------------------------------------------


def _time_firings(
    rule: dict[str, Any], replay: _Replay, now: datetime
) -> list[tuple[datetime, datetime]]:
    """(anchor, moment) of each firing the beat sweep would have made for ``rule``."""
    since = rule["after"]["since"]
    try:
        delay = timedelta(seconds=delay_seconds(rule["after"]))
    except OverflowError:
        return []
    anchors = dict.fromkeys(a for t in replay.snapshots if (a := t.anchor(since)) is not None)
    firings = []
    for anchor in anchors:
        try:
            due = anchor + delay
        except OverflowError:
            continue
        moments = [due, *(t for t in replay.times if due < t <= now)]
        for moment in moments:
            if moment > now:
                break
            ticket = replay.at(moment)
            if ticket is None or ticket.anchor(since) != anchor:
                break
            if rules.evaluate(rule, ticket.facts()) is not None:
                firings.append((anchor, moment))
                break
    return firings


def _compare_time_rules(
    report: TicketReport,
    definition: dict[str, Any],
    replay: _Replay,
    fired: list[dict[str, Any]],
    now: datetime,
) -> None:
    unmatched = sorted(fired, key=lambda f: f["at"])
    for rule in rules.time_rules(definition):
        for anchor, moment in _time_firings(rule, replay, now):
            candidates = [
                f
                for f in unmatched
                if f["rule"] == rule["name"]
                and abs(f["anchor"] - anchor) <= ANCHOR_TOLERANCE
                and abs(f["at"] - moment) <= SWEEP_TOLERANCE
            ]
            if candidates:
                unmatched.remove(min(candidates, key=lambda f: abs(f["anchor"] - anchor)))
            else:
                report.would_fire_not_fired.append(RuleDifference(rule["name"], moment, "time"))
    report.fired_would_not.extend(RuleDifference(f["rule"], f["at"], "time") for f in unmatched)


# -- SLA ----------------------------------------------------------------------------------------


def _sla_outcomes(
    definition: dict[str, Any], history: dict[str, Any], replay: _Replay, now: datetime
) -> dict[str, SlaOutcome]:
    recorded = history.get("sla") or {}
    ends = {
        "first_response": recorded.get("first_response_at") or _first_staff_reply(replay),
        "resolution": recorded.get("solved_at"),
    }
    policy = definition.get("sla")
    calendar = BusinessCalendar.from_definition(policy["calendar"]) if policy else None
    created = history["created_at"]
    outcomes = {}
    for metric in SLA_METRICS:
        end = ends[metric]
        actual = _actual_outcome(recorded, metric, end)
        ticket = replay.at(end or now) or replay.ticket
        targets = (policy or {}).get("targets", {}).get(ticket.priority) or {}
        minutes = targets.get(metric)
        if minutes is None or calendar is None:
            outcomes[metric] = SlaOutcome(actual, "none", None)
            continue
        target = minutes * 60
        used = business_seconds_between(created, end or now, calendar)
        draft = "breached" if used > target else "met" if end is not None else "open"
        due = add_business_time(created, target, calendar) if target <= MAX_DUE_SECONDS else None
        outcomes[metric] = SlaOutcome(actual, draft, due)
    return outcomes


def _first_staff_reply(replay: _Replay) -> datetime | None:
    for event in replay.events:
        payload = event.get("payload") or {}
        if (
            event["kind"] == "message.created"
            and payload.get("author_role") in STAFF_ROLES
            and not payload.get("internal")
        ):
            return event["at"]
    return None


def _actual_outcome(recorded: dict[str, Any], metric: str, end: datetime | None) -> str:
    if "clocks" in recorded and metric not in recorded["clocks"]:
        return "none"
    if metric in recorded.get("breaches", []):
        return "breached"
    return "met" if end is not None else "open"
