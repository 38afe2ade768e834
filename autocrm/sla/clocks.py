"""SLA clocks: starting, pausing, resuming, retargeting and stopping them as a ticket moves.

A ticket's workflow version carries its SLA policy: targets per priority in business minutes,
a business-hours calendar, the categories that pause the clocks, and the share of the target
after which to warn. A team may have business hours of its own, which then replace the
policy's calendar for the team's tickets (``calendar_for_ticket`` is the one place that
chooses). Deadlines are stored on ``SlaClock`` rows (indexed); the beat sweep in
``autocrm.automation`` fires warnings and breaches when they fall due.

Every change to a clock happens in the transaction of the ticket change that causes it, timed
by that change: a late or dead worker cannot move a deadline, and a reply that committed before
its deadline has stopped the clock the sweep would otherwise claim.

When the calendar a running clock counts in changes (the ticket moves to another team, or its
team's hours are edited), the business time used so far is kept, counted in the old calendar
up to that moment, and the deadlines are recomputed from then on in the new one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import select

from autocrm.engine.versions import engine_for_version
from autocrm.extensions import db
from autocrm.people.models import Team
from autocrm.sla.models import SlaClock
from autocrm.tickets.models import Priority, Ticket
from autocrm.transaction import read_once_each
from workflows.calendar import BusinessCalendar, add_business_time, business_seconds_between
from workflows.definition import DONE_CATEGORIES

METRICS = ("first_response", "next_reply", "resolution")


def policy_of(version_id: int) -> dict[str, Any] | None:
    return engine_for_version(version_id).definition["sla"]


@lru_cache(maxsize=256)
def calendar_of(version_id: int) -> BusinessCalendar:
    """Versions are immutable, so their calendars can be cached forever."""
    policy = policy_of(version_id)
    return BusinessCalendar.from_definition(policy["calendar"] if policy else None)


@lru_cache(maxsize=256)
def _parsed_calendar(definition_json: str) -> BusinessCalendar:
    return BusinessCalendar.from_definition(json.loads(definition_json))


def team_calendar(definition: dict[str, Any] | None) -> BusinessCalendar | None:
    """A team's own business hours (validated when saved), or None if it has none."""
    if not definition:
        return None
    return _parsed_calendar(json.dumps(definition, sort_keys=True))


def _calendar_for(
    team_calendar_definition: dict[str, Any] | None, version_id: int
) -> BusinessCalendar:
    return team_calendar(team_calendar_definition) or calendar_of(version_id)


def calendar_for_ticket(ticket: Ticket) -> BusinessCalendar:
    """The business hours a ticket's SLA clocks count in: its team's calendar if the team has
    one, else the calendar of the SLA policy of the workflow version it runs on."""
    team = db.session.get(Team, ticket.team_id) if ticket.team_id is not None else None
    return _calendar_for(team.calendar if team else None, ticket.workflow_version_id)


def _target_seconds(ticket: Ticket, metric: str) -> float | None:
    policy = policy_of(ticket.workflow_version_id)
    if policy is None:
        return None
    targets = policy["targets"].get(Priority(ticket.priority).label) or {}
    minutes = targets.get(metric)
    return None if minutes is None else minutes * 60


def _paused_in(ticket: Ticket) -> bool:
    policy = policy_of(ticket.workflow_version_id)
    return bool(policy and ticket.category in policy["pause_in"])


def _schedule(clock: SlaClock, now: datetime, calendar: BusinessCalendar) -> None:
    """Set the deadlines of a clock that runs from ``now``."""
    policy = policy_of(clock.workflow_version_id)
    assert policy is not None  # a clock runs only under a version with an SLA policy
    clock.segment_started_at = now
    remaining = max(clock.target_seconds - clock.consumed_seconds, 0.0)
    clock.due_at = add_business_time(now, remaining, calendar)
    warn_after = clock.target_seconds * policy["warning_at"] - clock.consumed_seconds
    clock.warn_at = (
        add_business_time(now, max(warn_after, 0.0), calendar)
        if clock.warned_at is None and clock.breached_at is None
        else None
    )


def _pause(clock: SlaClock, now: datetime, calendar: BusinessCalendar) -> None:
    if clock.segment_started_at is not None:
        clock.consumed_seconds += business_seconds_between(clock.segment_started_at, now, calendar)
    clock.segment_started_at = clock.due_at = clock.warn_at = None


def clocks_of(ticket: Ticket) -> dict[str, SlaClock]:
    return {clock.metric: clock for clock in ticket_clocks([ticket.id])[ticket.id]}


def ticket_clocks(ticket_ids: Iterable[int]) -> dict[int, list[SlaClock]]:
    """Each ticket's clocks in the order they were made, read once in the transaction: a
    change reads them, and the ticket's view rendered before its commit shows them. The
    clocks stay current as the change sets them; one made or deleted makes them read again."""
    return read_once_each("sla_clocks", ticket_ids, SlaClock, _read_clocks, rows=True)


def _read_clocks(ticket_ids: set[int]) -> dict[int, list[SlaClock]]:
    found: dict[int, list[SlaClock]] = {ticket_id: [] for ticket_id in ticket_ids}
    stmt = select(SlaClock).where(SlaClock.ticket_id.in_(ticket_ids)).order_by(SlaClock.id)
    for clock in db.session.scalars(stmt):
        found[clock.ticket_id].append(clock)
    return found


def start(
    ticket: Ticket, metric: str, now: datetime, *, new_ticket: bool = False
) -> SlaClock | None:
    """(Re)start a metric's clock from zero, if the policy has a target for it
    (``new_ticket``: it has no clocks yet, none to look up)."""
    target = _target_seconds(ticket, metric)
    if target is None:
        return None
    clock = None if new_ticket else clocks_of(ticket).get(metric)
    if clock is None:
        clock = SlaClock(ticket_id=ticket.id, metric=metric)
        db.session.add(clock)
    clock.workflow_version_id = ticket.workflow_version_id
    clock.target_seconds = target
    clock.consumed_seconds = 0.0
    clock.started_at = now
    clock.warned_at = clock.breached_at = clock.stopped_at = None
    if _paused_in(ticket):
        clock.segment_started_at = clock.due_at = clock.warn_at = None
    else:
        _schedule(clock, now, calendar_for_ticket(ticket))
    return clock


def start_new_ticket(ticket: Ticket) -> None:
    """A new ticket's first-response and resolution clocks run from the moment it was opened,
    whenever a worker gets round to it."""
    for metric in ("first_response", "resolution"):
        start(ticket, metric, ticket.created_at, new_ticket=True)


def stop(
    ticket: Ticket, metric: str, now: datetime, clocks: dict[str, SlaClock] | None = None
) -> None:
    """``clocks``: the ticket's, if the caller has them already (``clocks_of``)."""
    clock = (clocks_of(ticket) if clocks is None else clocks).get(metric)
    if clock is not None and clock.stopped_at is None:
        _pause(clock, now, calendar_for_ticket(ticket))
        clock.stopped_at = now


def on_category_change(ticket: Ticket, from_category: str, now: datetime) -> None:
    """Pause in pending categories, resume out of them, stop when done, restart on reopen."""
    if ticket.category in DONE_CATEGORIES:
        for metric in METRICS:
            stop(ticket, metric, now)
        return
    if from_category in DONE_CATEGORIES:
        start(ticket, "resolution", now)
        return
    open_clocks = [c for c in clocks_of(ticket).values() if c.stopped_at is None]
    calendar = calendar_for_ticket(ticket)
    for clock in open_clocks:
        if _paused_in(ticket):
            _pause(clock, now, calendar)
        elif clock.due_at is None:
            _schedule(clock, now, calendar)


def on_priority_change(ticket: Ticket, now: datetime) -> None:
    """Running and paused clocks take the new priority's targets."""
    calendar = calendar_for_ticket(ticket)
    for clock in clocks_of(ticket).values():
        if clock.stopped_at is not None:
            continue
        target = _target_seconds(ticket, clock.metric)
        if target is None:
            clock.stopped_at = now
            clock.due_at = clock.warn_at = None
            continue
        running = clock.due_at is not None
        if running:
            _pause(clock, now, calendar)
        clock.target_seconds = target
        if running:
            _schedule(clock, now, calendar)


def on_public_reply(ticket: Ticket, by_staff: bool, now: datetime) -> None:
    """Staff replying meets first response and next reply; a customer writing again after
    staff replied starts the next-reply clock."""
    clocks = clocks_of(ticket)
    if by_staff:
        stop(ticket, "first_response", now, clocks)
        stop(ticket, "next_reply", now, clocks)
        return
    first = clocks.get("first_response")
    if (first is None or first.stopped_at is not None) and ticket.category not in DONE_CATEGORIES:
        start(ticket, "next_reply", now)


def _reschedule(
    clocks: list[SlaClock], old: BusinessCalendar, new: BusinessCalendar, now: datetime
) -> None:
    """Running clocks keep the business time used up to ``now`` (counted in ``old``) and get
    deadlines in ``new`` from then on. Paused and stopped clocks need nothing: resuming
    schedules them in whatever calendar applies then."""
    if old == new:
        return
    for clock in clocks:
        if clock.stopped_at is None and clock.segment_started_at is not None:
            _pause(clock, now, old)
            _schedule(clock, now, new)


def on_team_change(ticket: Ticket, previous_team_id: int | None, now: datetime) -> None:
    """The ticket moved from ``previous_team_id`` to its current team: its running clocks
    switch to the new team's calendar."""
    previous = db.session.get(Team, previous_team_id) if previous_team_id is not None else None
    old = _calendar_for(previous.calendar if previous else None, ticket.workflow_version_id)
    _reschedule(list(clocks_of(ticket).values()), old, calendar_for_ticket(ticket), now)


def on_team_calendar_change(
    team: Team, previous_definition: dict[str, Any] | None, now: datetime
) -> int:
    """``team.calendar`` was just changed from ``previous_definition``: reschedule the running
    clocks of the team's tickets (in the same transaction). Returns how many were touched."""
    rows = db.session.execute(
        select(SlaClock, Ticket)
        .join(Ticket, Ticket.id == SlaClock.ticket_id)
        .where(
            Ticket.team_id == team.id,
            SlaClock.stopped_at.is_(None),
            SlaClock.segment_started_at.is_not(None),
        )
        .order_by(SlaClock.id)
    ).all()
    for clock, ticket in rows:
        old = _calendar_for(previous_definition, ticket.workflow_version_id)
        _reschedule([clock], old, calendar_for_ticket(ticket), now)
    return len(rows)
