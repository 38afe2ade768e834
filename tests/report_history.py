"""Ticket history planted by hand for the report tests: timestamps, category and assignee set by
an UPDATE, SLA clocks and ratings put in place, so that every figure a report gives can be worked
out by hand from the test's own table."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, update

from autocrm.people.models import User
from autocrm.sla.models import SlaClock
from autocrm.tickets.models import Feedback, Ticket

# Per ticket: (created, first response, solved, category, assignee).
History = dict[str, tuple[datetime, datetime | None, datetime | None, str, User | None]]
# Per SLA clock: (ticket, metric, stopped, breached).
Clocks = list[tuple[str, str, datetime | None, datetime | None]]


def at(day: int, hour: int, minute: int = 0, month: int = 3) -> datetime:
    """A moment in 2026 (in March unless told), UTC."""
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def wall_clock_seconds(start: datetime, end: datetime | None) -> float | None:
    return None if end is None else (end - start).total_seconds()


def plant_history(
    session: Any,
    tickets: dict[str, Ticket],
    history: History,
    *,
    clocks: Clocks,
    clocks_started: datetime,
    ratings: dict[str, int],
    rater: User,
    also: dict[str, dict[str, Any]] | None = None,
) -> None:
    """Gives each ticket named in ``history`` that history, its business durations being the
    wall-clock spans, and sets the columns ``also`` names for it; replaces the SLA clocks of
    ``tickets`` by ``clocks`` (each started at ``clocks_started``, with a one-hour target); adds
    ``ratings`` (ticket: stars) by ``rater``. The session is flushed and expired."""
    also = also or {}
    for name, (created, responded, solved, category, assignee) in history.items():
        session.execute(
            update(Ticket)
            .where(Ticket.id == tickets[name].id)
            .values(
                created_at=created,
                first_responded_at=responded,
                solved_at=solved,
                category=category,
                assignee_id=assignee.id if assignee else None,
                first_response_business_seconds=wall_clock_seconds(created, responded),
                resolution_business_seconds=wall_clock_seconds(created, solved),
                **also.get(name, {}),
            )
        )
    ids = [ticket.id for ticket in tickets.values()]
    session.execute(delete(SlaClock).where(SlaClock.ticket_id.in_(ids)))
    for name, metric, stopped, breached in clocks:
        session.add(
            SlaClock(
                ticket_id=tickets[name].id,
                metric=metric,
                workflow_version_id=tickets[name].workflow_version_id,
                target_seconds=3600,
                started_at=clocks_started,
                stopped_at=stopped,
                breached_at=breached,
            )
        )
    for name, stars in ratings.items():
        session.add(Feedback(ticket_id=tickets[name].id, author_id=rater.id, rating=stars))
    session.flush()
    session.expire_all()
