"""SLA clocks: starting, pausing, resuming, retargeting and stopping them as a ticket moves.

A ticket's workflow version carries its SLA policy: targets per priority in business minutes,
a business-hours calendar, the categories that pause the clocks, and the share of the target
after which to warn. Deadlines are stored on ``SlaClock`` rows (indexed); the beat sweep in
``autocrm.services.automation`` fires warnings and breaches when they fall due.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import select

from autocrm.extensions import db
from autocrm.models import Priority, SlaClock, Ticket
from autocrm.services.workflows import engine_for_version
from workflows.calendar import BusinessCalendar, add_business_time, business_seconds_between

METRICS = ("first_response", "next_reply", "resolution")
DONE_CATEGORIES = ("solved", "closed")


def policy_of(version_id: int) -> dict[str, Any] | None:
    return engine_for_version(version_id).definition["sla"]


@lru_cache(maxsize=256)
def calendar_of(version_id: int) -> BusinessCalendar:
    """Versions are immutable, so their calendars can be cached forever."""
    policy = policy_of(version_id)
    return BusinessCalendar.from_definition(policy["calendar"] if policy else None)


def _target_seconds(ticket: Ticket, metric: str) -> float | None:
    policy = policy_of(ticket.workflow_version_id)
    if policy is None:
        return None
    targets = policy["targets"].get(Priority(ticket.priority).label) or {}
    minutes = targets.get(metric)
    return None if minutes is None else minutes * 60


def _paused_in(ticket: Ticket) -> bool:
    policy = policy_of(ticket.workflow_version_id)
    return bool(policy) and ticket.category in policy["pause_in"]


def _schedule(clock: SlaClock, now: datetime) -> None:
    """Set the deadlines of a clock that runs from ``now``."""
    policy = policy_of(clock.workflow_version_id)
    calendar = calendar_of(clock.workflow_version_id)
    clock.segment_started_at = now
    remaining = max(clock.target_seconds - clock.consumed_seconds, 0.0)
    clock.due_at = add_business_time(now, remaining, calendar)
    warn_after = clock.target_seconds * policy["warning_at"] - clock.consumed_seconds
    clock.warn_at = (
        add_business_time(now, max(warn_after, 0.0), calendar)
        if clock.warned_at is None and clock.breached_at is None
        else None
    )


def _pause(clock: SlaClock, now: datetime) -> None:
    if clock.segment_started_at is not None:
        calendar = calendar_of(clock.workflow_version_id)
        clock.consumed_seconds += business_seconds_between(clock.segment_started_at, now, calendar)
    clock.segment_started_at = clock.due_at = clock.warn_at = None


def clocks_of(ticket: Ticket) -> dict[str, SlaClock]:
    rows = db.session.scalars(select(SlaClock).where(SlaClock.ticket_id == ticket.id))
    return {clock.metric: clock for clock in rows}


def start(ticket: Ticket, metric: str, now: datetime) -> SlaClock | None:
    """(Re)start a metric's clock from zero, if the policy has a target for it."""
    target = _target_seconds(ticket, metric)
    if target is None:
        return None
    clock = clocks_of(ticket).get(metric)
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
        _schedule(clock, now)
    return clock


def stop(ticket: Ticket, metric: str, now: datetime) -> None:
    clock = clocks_of(ticket).get(metric)
    if clock is not None and clock.stopped_at is None:
        _pause(clock, now)
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
    for clock in open_clocks:
        if _paused_in(ticket):
            _pause(clock, now)
        elif clock.due_at is None:
            _schedule(clock, now)


def on_priority_change(ticket: Ticket, now: datetime) -> None:
    """Running and paused clocks take the new priority's targets."""
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
            _pause(clock, now)
        clock.target_seconds = target
        if running:
            _schedule(clock, now)


def on_public_reply(ticket: Ticket, by_staff: bool, now: datetime) -> None:
    """Staff replying meets first response and next reply; a customer writing again after
    staff replied starts the next-reply clock."""
    clocks = clocks_of(ticket)
    if by_staff:
        stop(ticket, "first_response", now)
        stop(ticket, "next_reply", now)
        return
    first = clocks.get("first_response")
    if (first is None or first.stopped_at is not None) and ticket.category not in DONE_CATEGORIES:
        start(ticket, "next_reply", now)
