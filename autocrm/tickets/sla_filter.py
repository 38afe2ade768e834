"""The SLA filter in SQL: tickets whose running clocks are breached, due soon, on track, or
that have none running (``TicketFilters.sla``, views such as "SLA at risk").

A ticket is "at risk" when any running clock is breached or inside its warning window (its
``warn_at``, or the last ``queue.DUE_SOON`` before its due time when it has none): a count in
the sidebar and the list it opens agree, whatever the page size.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, and_, exists, or_

from autocrm.sla.models import SlaClock
from autocrm.tickets.models import Ticket
from autocrm.tickets.queue import DUE_SOON


def _running(*conditions: ColumnElement[bool]) -> ColumnElement[bool]:
    return exists().where(
        SlaClock.ticket_id == Ticket.id,
        SlaClock.stopped_at.is_(None),
        SlaClock.due_at.is_not(None),
        *conditions,
    )


def sla_state_is(state: str, now: datetime) -> ColumnElement[bool]:
    """A WHERE clause: the ticket's running clocks are in ``state`` (one of SLA_FILTERS)."""
    breached = _running(SlaClock.due_at <= now)
    warning = or_(
        and_(SlaClock.warn_at.is_not(None), SlaClock.warn_at <= now),
        and_(SlaClock.warn_at.is_(None), SlaClock.due_at <= now + DUE_SOON),
        SlaClock.due_at <= now,
    )
    at_risk = _running(warning)
    clauses: dict[str, ColumnElement[bool]] = {
        "at_risk": at_risk,
        "breached": breached,
        "due_soon": and_(at_risk, ~breached),
        "on_track": and_(_running(), ~at_risk),
        "none": ~_running(),
    }
    return clauses[state]
